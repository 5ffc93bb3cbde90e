"""Resume after kill -9: real `crawlmill run` processes are killed mid-run, the same
command is run again, and the output must equal an uninterrupted run byte for byte, with
finished chunks not redone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.config import load_config
from pipeline.io import finished_files
from pipeline.runner import WORK_DIR, run
from tests.helpers import assert_same_output

SETTINGS = ["engine.chunk_records=16", "output.shard_tokens=20000"]  # many chunks, many shards


def crawlmill_run(
    sample_dir: Path,
    out: Path,
    crash_at: str | None = None,
    crash_once: Path | None = None,
    num_cpus: int = 2,
) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    if crash_at:
        env["CRAWLMILL_CRASH_AT"] = crash_at
    if crash_once:
        env["CRAWLMILL_CRASH_ONCE"] = str(crash_once)
    args = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(sample_dir)]
    args += ["--output", str(out), "--num-cpus", str(num_cpus)]
    for setting in SETTINGS:
        args += ["--set", setting]
    return subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run and every process it started (Ray's too), as a crash would."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    proc.wait(timeout=30)
    psutil.wait_procs(family, timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the run's session


@pytest.fixture(scope="module")
def reference(ray_local, sample_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "out"
    run(load_config(None, SETTINGS), [str(sample_dir)], out)
    assert len(json.loads((out / "manifest.json").read_text())["shards"]) > 3
    return out


def finish(sample_dir: Path, out: Path) -> dict:
    proc = crawlmill_run(sample_dir, out)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output
    return json.loads((out / "timings.json").read_text())


def test_kill_during_extraction_then_resume(reference, sample_dir, tmp_path):
    out = tmp_path / "out"
    parts = out / WORK_DIR / "docs"
    proc = crawlmill_run(sample_dir, out)
    deadline = time.monotonic() + 240
    # finished parts only: a part being written when the kill lands is a hidden .tmp-* file
    # (glob("*.parquet") matches it too, and the rerun rightly redoes its chunk)
    while time.monotonic() < deadline and len(finished_files(parts, "*.parquet")) < 3:
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    kill_tree(proc)
    # finished parts only: the kill may leave a half-written .tmp-* part behind
    done_before = len(finished_files(parts, "*.parquet"))
    total = len(json.loads((out / WORK_DIR / "chunks.json").read_text()))
    assert 3 <= done_before < total, "the kill must land mid-phase"
    assert not (out / "manifest.json").exists()

    timings = finish(sample_dir, out)
    assert timings["chunks_resumed"] == done_before  # finished chunks are not redone
    assert timings["chunks_processed"] == total - done_before
    assert_same_output(out, reference)


@pytest.mark.parametrize("crash_at", ["write_phase:shards", "write_phase:manifest"])
def test_kill_during_shard_writing_then_resume(reference, sample_dir, tmp_path, crash_at):
    out = tmp_path / "out"
    proc = crawlmill_run(sample_dir, out, crash_at=crash_at)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    kill_tree(proc)
    assert not (out / "manifest.json").exists()  # a reader never sees an unfinished run

    timings = finish(sample_dir, out)
    assert timings["chunks_processed"] == 0  # every chunk was done: only the writing is redone
    assert_same_output(out, reference)


def kill_at(sample_dir: Path, out: Path, crash_at: str) -> None:
    """Run until the crash point kills the run, then check the pass was left mid-way."""
    proc = crawlmill_run(sample_dir, out, crash_at=crash_at)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    kill_tree(proc)
    pass_dir = out / WORK_DIR / crash_at.split(":")[0]
    assert (pass_dir / "tmp").is_dir()  # killed mid-pass: its scratch files are there
    assert not (pass_dir / "done.json").exists()
    assert not (out / "manifest.json").exists()


def test_kill_during_dedup_passes_then_resume(reference, sample_dir, tmp_path):
    """kill -9 mid-way through the pass before extraction; rerun, killed after the first
    round of the global dedup step; rerun, killed after its last round; rerun to the end.
    Each rerun wipes the killed pass's scratch files and runs it again from its first
    round; the output equals an uninterrupted run's, and no chunk is extracted twice.
    (One test, not three: only one of the four runs extracts the sample.)"""
    out = tmp_path / "out"
    kill_at(sample_dir, out, "dedup_pre:round:decide")
    assert not finished_files(out / WORK_DIR / "docs", "*.parquet")  # before documents phase

    kill_at(sample_dir, out, "dedup:round:scan")
    total = len(json.loads((out / WORK_DIR / "chunks.json").read_text()))
    assert len(finished_files(out / WORK_DIR / "docs", "*.parquet")) == total
    assert (out / WORK_DIR / "dedup_pre" / "done.json").exists()
    kill_at(sample_dir, out, "dedup:round:finalize")  # drops written, not yet published

    timings = finish(sample_dir, out)
    assert timings["chunks_processed"] == 0
    assert timings["dedup_pre_rounds"] == {}  # done before the kills: skipped
    assert_same_output(out, reference)


def test_a_worker_killed_mid_chunk_hands_its_chunk_to_another(reference, sample_dir, tmp_path):
    # One worker actor SIGKILLs itself as it starts a chunk: the driver gives that chunk
    # to the other actor and the run finishes on its own, no rerun, same output.
    out = tmp_path / "out"
    marker = tmp_path / "crashed"
    proc = crawlmill_run(sample_dir, out, crash_at="documents:chunk", crash_once=marker)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output
    assert marker.exists() and "a worker died" in output, output
    assert_same_output(out, reference)
    timings = json.loads((out / "timings.json").read_text())
    chunks = json.loads((out / WORK_DIR / "chunks.json").read_text())
    assert timings["chunks_processed"] == len(chunks) and timings["chunks_resumed"] == 0


def test_every_worker_killed_stops_the_run_and_the_rerun_resumes(reference, sample_dir, tmp_path):
    out = tmp_path / "out"
    proc = crawlmill_run(sample_dir, out, crash_at="documents:chunk")
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1 and "every worker died" in output, output  # 1: resumable
    finish(sample_dir, out)
    assert_same_output(out, reference)


def test_a_chunk_that_kills_two_workers_stops_the_run_naming_it(reference, sample_dir, tmp_path):
    # Chunk 3 of the first file kills whichever worker runs it: after the second death the
    # run stops and names the chunk, while the third worker is still alive.
    out = tmp_path / "out"
    proc = crawlmill_run(sample_dir, out, crash_at="documents:chunk:0-3", num_cpus=3)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, output
    assert "chunk 3 (bytes" in output and "killed 2 workers" in output, output
    finish(sample_dir, out)
    assert_same_output(out, reference)


def test_a_fresh_run_on_the_cli_s_own_ray_gives_the_same_output(reference, sample_dir, tmp_path):
    # The CLI starts its own lean local Ray (runner.lean_local_ray); the reference ran on
    # the session's Ray, already up.
    out = tmp_path / "out"
    timings = finish(sample_dir, out)
    assert timings["chunks_resumed"] == 0
    assert_same_output(out, reference)
