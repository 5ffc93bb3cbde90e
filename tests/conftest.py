"""Shared fixtures: repo paths, the optional ../shared data, and one local Ray per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "tests" / "data" / "sample"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (third-party data beside the clone). Absent in a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"{SHARED_DATA} is absent (it sits beside the clone only in the dev workspace and CI)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray with 2 CPUs, started once for the whole session."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
