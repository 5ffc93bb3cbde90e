"""The embedded local Ray gets crawlmill's start-up settings (pipeline/runner.py
LOCAL_RAY_ENV): they must reach the raylet, the process that reads them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.runner import LOCAL_RAY_ENV


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_local_raylet_runs_with_the_start_up_settings(ray_local):
    from ray._private import ray_constants, worker

    node = worker._global_node
    raylets = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET]
    environ = Path(f"/proc/{raylets[0].process.pid}/environ").read_bytes().split(b"\0")
    settings = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    for key, value in LOCAL_RAY_ENV.items():
        assert settings.get(key) == value, key
