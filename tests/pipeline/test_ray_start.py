"""The embedded local Ray gets crawlmill's start-up settings (pipeline/runner.py
LOCAL_RAY_ENV): they must reach the raylet, the process that reads them; and it runs
without the head-node processes a run does not use (LOCAL_RAY_SKIPPED)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.runner import LOCAL_RAY_ENV, LOCAL_RAY_SKIPPED


def environment_of(pid: int) -> dict[str, str]:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in environ if b"=" in item)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_local_raylet_runs_with_the_start_up_settings(ray_local):
    from ray._private import ray_constants, worker

    node = worker._global_node
    raylets = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET]
    settings = environment_of(raylets[0].process.pid)
    for key, value in LOCAL_RAY_ENV.items():
        assert settings.get(key) == value, key


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_local_ray_sends_no_usage_statistics(ray_local):
    # Ray's dashboard process is the one that would report usage to Ray's server; the
    # embedded Ray does not start it (LOCAL_RAY_SKIPPED). Should it ever start (Ray's
    # private API changed), it would read RAY_USAGE_STATS_ENABLED, which ray.init sets
    # to 0 for the local instance it starts and which every Ray process inherits: no run
    # of crawlmill may send anything anywhere.
    from ray._private import ray_constants, worker

    node = worker._global_node
    assert not node.all_processes.get(ray_constants.PROCESS_TYPE_DASHBOARD)
    raylets = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET]
    assert environment_of(raylets[0].process.pid)["RAY_USAGE_STATS_ENABLED"] == "0"


def test_the_local_ray_starts_no_monitor_log_monitor_or_api_server(ray_local):
    # lean_local_ray: ray.init 1.31-1.36 -> 0.80-0.81 s here, and 0.9 CPU s less.
    from ray._private import ray_constants, worker
    from ray._private.node import Node

    node = worker._global_node
    for kind in ("MONITOR", "LOG_MONITOR", "DASHBOARD"):
        assert not node.all_processes.get(getattr(ray_constants, f"PROCESS_TYPE_{kind}")), kind
    assert node.all_processes[ray_constants.PROCESS_TYPE_RAYLET]  # the node itself runs
    for name in LOCAL_RAY_SKIPPED:  # and the Node class is as Ray ships it again
        assert "lean_local_ray" not in getattr(Node, name).__qualname__, name


def test_the_scan_tasks_give_each_file_s_chunks_in_input_order(ray_local, sample_dir):
    from pipeline.runner import scan_all
    from pipeline.warc import scan_chunks

    files = sorted(str(path) for path in sample_dir.glob("*.gz"))
    by_tasks = scan_all(files, 16)
    assert len(files) == 4 and len(by_tasks) > 8
    assert by_tasks == [c for i, f in enumerate(files) for c in scan_chunks(f, i, 16)]


def test_a_scan_error_reaches_the_driver(ray_local, tmp_path):
    from pipeline.runner import scan_all

    with pytest.raises(IsADirectoryError):  # a directory: scanning it fails in its task
        scan_all([str(tmp_path)], 16)


def test_the_raylet_wait_sees_the_running_node_and_not_an_unknown_one(ray_local):
    # runner.quick_raylet_wait asks the GCS for the new node before Ray's get_node does
    # (which sleeps 1 s after a miss); this is the question it asks, on the session's Ray.
    from ray._private import worker

    from pipeline.runner import raylet_registered

    gcs_address = worker._global_node.gcs_address
    node_id = ray_local.get_runtime_context().get_node_id()
    assert raylet_registered(gcs_address, node_id, timeout=5)
    assert not raylet_registered(gcs_address, "ff" * 28, timeout=0.1)


def test_ray_get_node_answers_the_same_through_the_raylet_wait_and_is_restored(ray_local):
    from ray._private import services, worker

    from pipeline.runner import quick_raylet_wait

    gcs_address = worker._global_node.gcs_address
    node_id = ray_local.get_runtime_context().get_node_id()
    ray_get_node = services.get_node
    with quick_raylet_wait():
        assert services.get_node is not ray_get_node
        through_wait = services.get_node(gcs_address, node_id)
    assert services.get_node is ray_get_node
    assert through_wait == ray_get_node(gcs_address, node_id)
    assert through_wait["node_id"] == node_id


def test_a_run_stops_the_embedded_ray_it_started_and_writes_every_shard(tmp_path, sample_dir):
    # runner.run stops the local Ray it started while it writes the shards (nothing in the
    # write phase uses Ray): a fresh process, so that run() is the one starting it.
    out = tmp_path / "out"
    script = (
        "import json, sys, ray\n"
        "from pipeline.config import load_config\n"
        "from pipeline.runner import run\n"
        "summary = run(load_config(None, []), [sys.argv[1]], sys.argv[2], num_cpus=1,\n"
        "              log=lambda *a: None)\n"
        "print(json.dumps({'ray_running': ray.is_initialized(), 'docs': summary.docs}))\n"
    )
    sample = str(sample_dir / "chatnoir-cc-main-2020-34.warc.gz")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-c", script, sample, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["ray_running"] is False
    manifest = json.loads((out / "manifest.json").read_text())
    assert answer["docs"] > 0 and manifest["totals"]["docs"] == answer["docs"]
    assert sum(shard["docs"] for shard in manifest["shards"]) == answer["docs"]
    assert all((out / shard["file"]).is_file() for shard in manifest["shards"])


def test_a_run_leaves_a_ray_it_did_not_start_running(sample_run, ray_local):
    # the session's Ray was up before the run: the run joined it and must not stop it
    assert ray_local.is_initialized()
    assert ray_local.cluster_resources().get("CPU") == 2
