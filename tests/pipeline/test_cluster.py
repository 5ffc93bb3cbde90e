"""Past one machine: `crawlmill run --ray-address` against a multi-node Ray cluster.

The cluster is simulated on this machine with `ray.cluster_utils.Cluster`: a head node and
two worker nodes, one CPU each, every node its own raylet and object store (real separate
Ray nodes, only the host is shared). The run is a real `crawlmill run` process that joins
the cluster by address, exactly as a user's driver would. Its shards, manifest, stats and
rejected/ files must equal a local run's byte for byte, and every node must have processed
chunks (timings.json's `chunks_per_node`, filled from each actor's Ray node id).

The `long` variant (`make test-long`) SIGKILLs one worker node's processes mid-run: the
driver gives the lost actor's chunk to another actor, or, if the run dies, the same
command resumes it; either way the output equals the local run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.runner import WORK_DIR, run
from tests.helpers import assert_same_output

# 421 records of the sample in 28 chunks of 16: enough for every node to take several.
SETTINGS = ["engine.chunk_records=16", "output.shard_tokens=20000"]
OBJECT_STORE_BYTES = 100 << 20  # per node; Ray's minimum is 75 MB


@contextlib.contextmanager
def ray_cluster(worker_nodes: int = 2) -> Iterator:
    """Head + `worker_nodes` worker nodes, one CPU each; shut down at the end."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # inherited by the nodes and driver
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": OBJECT_STORE_BYTES,
            "include_dashboard": False,
        },
    )
    try:
        for _ in range(worker_nodes):
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def crawlmill_on_cluster(sample_dir: Path, out: Path, address: str) -> subprocess.Popen:
    """A `crawlmill run --ray-address ADDRESS` process (the driver joins, never starts, Ray)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    args = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(sample_dir)]
    args += ["--output", str(out), "--ray-address", address]
    for setting in SETTINGS:
        args += ["--set", setting]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finished_parts(parts: Path) -> int:
    """Parts renamed into place (atomic_path's hidden temp files do not count)."""
    return sum(1 for p in parts.glob("*.parquet") if not p.name.startswith("."))


def node_ids(cluster) -> set[str]:
    return {node.node_id for node in cluster.list_all_nodes()}


@pytest.fixture(scope="module")
def local_reference(ray_local, sample_dir, tmp_path_factory) -> Path:
    """The same run on the local (one-node) Ray: what the cluster run must reproduce."""
    out = tmp_path_factory.mktemp("local") / "out"
    run(load_config(None, SETTINGS), [str(sample_dir)], out, num_cpus=2, log=lambda *a: None)
    return out


def test_cluster_run_equals_local_run_and_uses_every_node(local_reference, sample_dir, tmp_path):
    out = tmp_path / "cluster"
    with ray_cluster(worker_nodes=2) as cluster:
        nodes = node_ids(cluster)
        proc = crawlmill_on_cluster(sample_dir, out, cluster.address)
        output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    assert "3 worker(s)" in output  # one per CPU of the cluster, not of the local machine

    assert_same_output(out, local_reference)
    timings = json.loads((out / "timings.json").read_text())
    per_node = timings["chunks_per_node"]
    chunks = json.loads((out / WORK_DIR / "chunks.json").read_text())
    assert len(nodes) == 3
    assert set(per_node) == nodes, (per_node, nodes)
    assert all(count >= 1 for count in per_node.values()), per_node
    assert sum(per_node.values()) == len(chunks) == timings["chunks_processed"]
    # node ids never reach the data files
    for name in ("manifest.json", "stats.json"):
        text = (out / name).read_text()
        assert not any(node in text for node in nodes)


@pytest.mark.long
def test_killing_a_worker_node_mid_run_loses_and_duplicates_nothing(
    local_reference, sample_dir, tmp_path
):
    out = tmp_path / "cluster"
    parts = out / WORK_DIR / "docs"
    with ray_cluster(worker_nodes=2) as cluster:
        victim = sorted(cluster.worker_nodes, key=lambda node: node.node_id)[0]
        proc = crawlmill_on_cluster(sample_dir, out, cluster.address)
        deadline = time.monotonic() + 300
        while finished_parts(parts) < 4:  # some chunks done, most still to do
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.1)
        total = len(json.loads((out / WORK_DIR / "chunks.json").read_text()))
        assert finished_parts(parts) < total
        cluster.remove_node(victim, allow_graceful=False)  # SIGKILL: raylet, store, workers

        try:
            output = proc.communicate(timeout=300)[0]
            resumed = False
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
            resumed = True
        if proc.returncode != 0 or resumed:
            # Ray gave up: the same command on the surviving nodes resumes the run.
            again = crawlmill_on_cluster(sample_dir, out, cluster.address)
            output += again.communicate(timeout=600)[0]
            assert again.returncode == 0, output
            assert json.loads((out / "timings.json").read_text())["chunks_resumed"] > 0
    assert_same_output(out, local_reference)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["records"] == sum(
        c["n_records"] for c in json.loads((out / WORK_DIR / "chunks.json").read_text())
    )
