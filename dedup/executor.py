"""Where the global dedup step's tasks run: on Ray (the pipeline) or in this process (tests,
and a run's dedup of at most `IN_DRIVER_MAX_ROWS` rows, dedup/barrier.py).

A round of the global step is a list of independent task calls `fn(*args)` whose inputs
and outputs are files (dedup/shuffle.py); a call returns a small dict of counts. Two
executors with one method, `map(fn, calls) -> results in call order`:

- `RayExecutor`: one Ray task per call (1 CPU each), so a round uses every worker of the
  local machine or the cluster. `isolate=True` gives each task a fresh worker process
  (`max_calls=1`; a process start costs ~1 s), for platforms where a task's own peak RSS
  cannot be measured inside a reused worker (see `measured`).
- `SerialExecutor`: the same calls one after another in this process, with no Ray at all.

Results are identical: tasks read and write only their own files, and every decision
inside them is a deterministic function of their inputs.

Every task result gets `seconds`, `max_rss_bytes` (the task's peak RSS) and
`rss_start_bytes` added.
"""

from __future__ import annotations

import functools
import resource
import sys
import time
from collections.abc import Callable, Sequence

import pyarrow as pa


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0: "5" into /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_bytes(field: str) -> int | None:
    """VmHWM (peak) or VmRSS (now) from /proc/self/status, in bytes; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measured(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Wrap a task so its result also says how long it took and its peak RSS.

    On Linux the process's peak is reset when the task starts, so `max_rss_bytes` is this
    task's own peak even in a reused Ray worker (`rss_start_bytes`: the worker's RSS
    before it, imports included). Elsewhere it is the process's lifetime peak."""

    @functools.wraps(fn)
    def wrapper(*args):
        reset = _reset_peak_rss()
        rss_start = _rss_bytes("VmRSS") or 0
        start = time.perf_counter()
        result = dict(fn(*args))
        result["seconds"] = time.perf_counter() - start
        peak = _rss_bytes("VmHWM") if reset else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
            peak = peak if sys.platform == "darwin" else peak * 1024
        result["max_rss_bytes"] = peak
        result["rss_start_bytes"] = rss_start
        # hand Arrow's freed pool memory back, so the next task in this worker starts low
        pa.default_memory_pool().release_unused()
        return result

    return wrapper


class SerialExecutor:
    """Run every call in this process, in order."""

    workers = 1

    def map(self, fn: Callable[..., dict], calls: Sequence[tuple]) -> list[dict]:
        task = measured(fn)
        return [task(*args) for args in calls]


class RayExecutor:
    """Run every call as a Ray task on the current Ray instance (ray.init() done before)."""

    def __init__(self, isolate: bool = False):
        import ray

        self._ray = ray
        self.isolate = isolate
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[..., dict], calls: Sequence[tuple]) -> list[dict]:
        options = {"num_cpus": 1, "max_retries": 3}
        if self.isolate:
            options["max_calls"] = 1
        remote = self._ray.remote(**options)(measured(fn))
        return self._ray.get([remote.remote(*args) for args in calls])
