"""The fuzzer itself (bench/fuzz.py), tested: a few dozen seeded cases on the real sample
WARCs and through the real ExtractStage pass; its invariant checks catch a lost record;
its sandbox reports a hanging case instead of hanging.

The long fuzz runs are `make fuzz` (figures in docs/RELIABILITY.md); these cases are
seeded (hypothesis seeds 0 and 1), so they are the same every run.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.helpers import load_bench_script


@pytest.fixture(scope="module")
def fuzz():
    return load_bench_script("fuzz")


@pytest.fixture(scope="module")
def seeds(fuzz):
    seeds = fuzz.load_seeds(fuzz.seed_files(shared=False))  # tests/data/sample only
    assert len(seeds) >= 6 and all(seed.extents for seed in seeds)
    return seeds


@pytest.fixture
def sandbox(fuzz):
    box = fuzz.Sandbox(case_seconds=120)
    yield box
    box.close()


def test_seeded_warc_cases_hold_every_invariant(fuzz, seeds, sandbox):
    tally = fuzz.fuzz("warc", sandbox, rounds=2, examples=20, seeds=seeds)
    assert tally.failures == []
    assert tally.cases == 40
    assert tally.rows > 40 and tally.reasons["read_error"] > 0  # damage was really done


def test_seeded_html_cases_keep_one_row_per_page(fuzz, sandbox):
    tally = fuzz.fuzz("html", sandbox, rounds=1, examples=8, extractor="resiliparse")
    assert tally.failures == []
    assert tally.cases == 8 and tally.rows >= 8


def test_a_lost_record_is_caught(fuzz, seeds, tmp_path):
    from pipeline.warc import read_file

    seed = next(s for s in seeds if s.plain and len(s.extents) >= 3)
    path = tmp_path / "seed.warc"
    path.write_bytes(seed.data)
    table = read_file(str(path), fuzz.MAX_PAYLOAD)
    rows = table.to_pylist()
    fuzz.check_survivors(rows, seed, (0, 0, 0), table)  # nothing damaged, nothing lost
    without_second = pa.Table.from_pylist(rows[:1] + rows[2:], schema=table.schema)
    with pytest.raises(fuzz.InvariantError, match="lies outside the damage"):
        fuzz.check_survivors(rows, seed, (0, 0, 0), without_second)
    with pytest.raises(fuzz.InvariantError, match="differs from whole-file read"):
        fuzz.check_warc_rows(without_second, table, len(seed.data))


def test_a_hanging_case_is_reported_not_suffered(fuzz):
    box = fuzz.Sandbox(case_seconds=2)
    try:
        status, _, seconds = box.run("sleep", 600)
        assert status == "hang" and seconds < 600
        assert box.run("sleep", 0)[0] == "ok"  # a fresh child takes the next case
    finally:
        box.close()
