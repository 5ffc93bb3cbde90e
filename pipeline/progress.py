"""Progress lines during a run, and the summary table printed when it ends.

A run over a crawl segment takes hours (extraction: ~100 pages/s per core with
trafilatura on realpages, docs/BENCH.md), so the user needs a rate and an ETA per phase. Lines
go to stderr, at most one per `every` seconds per phase plus one when the phase ends, so
a log file of a long run stays readable and stdout holds only the summary. Plain lines,
not bars: they survive `2>run.log`, CI logs and Ray worker interleaving.
"""

from __future__ import annotations

import sys
import time


def log_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN: no rate yet
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Rate and ETA of one phase: `update(done)` with the units done so far."""

    def __init__(self, phase: str, total: int, unit: str, log=log_stderr, every: float = 5.0):
        self.phase, self.total, self.unit, self.log, self.every = phase, total, unit, log, every
        self.start = self.last = time.perf_counter()

    def line(self, done: int, detail: str = "") -> str:
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        # The total is the scan's count of records; reading can find more rows (bytes that
        # are no record become a read_error row each): never "5/4", never a negative ETA.
        total = max(self.total, done)
        eta = (total - done) / rate if rate > 0 else float("nan")
        tail = f", {detail}" if detail else ""
        return (
            f"  {self.phase}: {done:,}/{total:,} {self.unit}{tail}, "
            f"{rate:,.1f} {self.unit}/s, elapsed {_duration(elapsed)}, ETA {_duration(eta)}"
        )

    def update(self, done: int, detail: str = "") -> None:
        now = time.perf_counter()
        if now - self.last >= self.every or done >= self.total:
            self.log(self.line(done, detail))
            self.last = now


def summary_table(summary, phase_seconds: dict | None = None) -> str:
    """Records read, docs kept, tokens, and seconds per phase, as an aligned table."""
    rows = [
        ("records read", f"{summary.records:,}"),
        ("docs kept", f"{summary.docs:,}"),
        *([("  of them repeats", f"{summary.repeats:,}")] if summary.repeats else []),
        ("docs rejected", f"{summary.rejected:,}"),
        ("tokens", f"{summary.tokens:,}"),
        ("shards", f"{summary.shards:,}"),
    ]
    seconds = phase_seconds or {}
    total = seconds.get("total")
    for phase in (
        "scan",
        "dedup_pre_phase",
        "documents_phase",
        "dedup_phase",
        "rebalance_phase",
        "write_phase",
    ):
        if phase in seconds:
            share = f"  ({seconds[phase] / total:.0%})" if total else ""
            rows.append((f"{phase.replace('_', ' ')} s", f"{seconds[phase]:,.1f}{share}"))
    if total:
        rows.append(("total s", f"{total:,.1f}  ({summary.records / total:,.1f} records/s)"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
