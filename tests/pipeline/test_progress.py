"""Progress lines: rate, ETA and a total that reading more rows than the scan counted
(bytes that are no record become a row each) never turns into "5/4" or a negative ETA.
The clock is a fake one: no test here depends on how fast it runs."""

from __future__ import annotations

import pytest

from pipeline import progress as progress_module
from pipeline.progress import Progress


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    return now


def test_line_counts_up_to_the_total_with_an_eta(clock):
    progress = Progress("documents phase", 400, "records", log=lambda line: None)
    clock[0] += 10.0
    assert progress.line(100, "1/4 chunks") == (
        "  documents phase: 100/400 records, 1/4 chunks, 10.0 records/s, elapsed 10s, ETA 30s"
    )


def test_more_rows_than_the_scan_counted_raise_the_total_not_a_negative_eta(clock):
    progress = Progress("documents phase", 4, "records", log=lambda line: None)
    empty = Progress("documents phase", 0, "records", log=lambda line: None)
    clock[0] += 2.0
    assert progress.line(5) == "  documents phase: 5/5 records, 2.5 records/s, elapsed 2s, ETA 0s"
    assert empty.line(1) == "  documents phase: 1/1 records, 0.5 records/s, elapsed 2s, ETA 0s"
