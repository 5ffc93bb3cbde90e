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
    """A real local Ray with 2 CPUs, started once for the whole session, as the CLI
    starts it: always the embedded local instance, never a cluster RAY_ADDRESS names
    (neither here nor in the CLI runs the tests start)."""
    import ray

    from pipeline.runner import init_ray

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(None, 2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sample_run(ray_local, tmp_path_factory):
    """One run of the default recipe over the bundled sample, shared by every test that
    only reads a run's outputs (run, inspect, report): (output dir, RunSummary, Config).
    engine.chunk_records=64 cuts each file into several chunks."""
    from pipeline.config import load_config
    from pipeline.runner import run

    out = tmp_path_factory.mktemp("run") / "out"
    cfg = load_config(None, ["engine.chunk_records=64"])
    summary = run(cfg, [str(SAMPLE_DIR)], out, num_cpus=2, log=lambda *a: None)
    return out, summary, cfg
