"""timings.json's seconds per stage: CPU (the worker's and its extractor child's) apart from
wall (CPU plus waiting), measured by `process_chunk` on a real chunk of the bundled sample."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.runner import build_stages, process_chunk
from pipeline.warc import scan_chunks

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
# Two files: 38 pages extracted, ~0.45 CPU s of the extractor child (one file's 16 pages
# took ~0.3 s once the child stopped importing pyarrow and numpy).
WARCS = [SAMPLE / "chatnoir-cc-main-2020-34.warc.gz", SAMPLE / "dolma-sample-0000.warc.gz"]


class Sleeper:
    """A stage that waits without working: what a stage starved of a core looks like."""

    name = "sleeper"
    SECONDS = 0.2

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        time.sleep(self.SECONDS)
        return batch


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU times from /proc")
def test_stage_cpu_seconds_count_the_child_and_leave_out_waiting(tmp_path):
    cfg = load_config(None)
    chunks = [scan_chunks(str(warc), i, 1_000_000)[0] for i, warc in enumerate(WARCS)]
    stages = build_stages(cfg)
    extract = next(stage for stage in stages if stage.name == "extract")
    sleeper = Sleeper()
    stages.insert(stages.index(extract) + 1, sleeper)
    cpu, wall, extracted = Counter(), Counter(), 0  # summed over the chunks
    try:
        for chunk in chunks:
            stats = process_chunk(chunk, cfg, stages, tmp_path)
            cpu.update(json.loads(stats["cpu_seconds"]))
            wall.update(json.loads(stats["wall_seconds"]))
            extracted += stats["extracted"]
        children = extract.child_cpu_seconds()
    finally:
        extract.close()
    assert set(cpu) == set(wall) == {"read", "write_part", *(stage.name for stage in stages)}

    # waiting is wall time, not CPU
    assert wall["sleeper"] >= sleeper.calls * Sleeper.SECONDS
    assert cpu["sleeper"] < 0.25 * wall["sleeper"]
    # the extraction runs in the child: the stage's CPU holds all of the child's (started
    # inside the stage, so its start-up too), more than the worker's own share
    assert extracted >= 10
    assert children > 0
    assert cpu["extract"] >= children - 0.02  # /proc counts in 10 ms ticks
    assert cpu["extract"] > 2 * (cpu["extract"] - children)
    # the other stages work in this process, on one thread: their CPU is at most their wall
    # (not so for write_part: pyarrow may compress on several threads)
    others = [stage.name for stage in stages if stage is not extract]
    assert all(0 <= cpu[name] <= wall[name] + 0.05 for name in others)
