"""Measure the exact-dedup pass that runs before extraction (dedup/pre.py).

    python bench/dedup_pre.py [WARC] [--copies 2] [--num-cpus 2] [--keys payload_digest,url]
                              [--serial]

Writes one input file holding WARC's records `--copies` times over (gzip members
concatenated: every page of the second copy is an exact duplicate of one of the first),
cuts it into chunks of 200 records as the runner does, and runs the pass on a local Ray
with `--num-cpus` CPUs (`--serial`: every task in this process, no Ray: the per-core
rate). Prints: wall seconds of the pass (after the chunk scan), records/s
and pages checked/s over those seconds, records removed, the largest task's peak RSS and
RSS growth (dedup/executor.py measures each task), and the extraction time the removed
pages no longer cost at the measured trafilatura rate (~29 pages/s per core,
../shared/DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_WARC = REPO.parent / "shared" / "data" / "bench" / "realpages.warc.gz"
TRAFILATURA_PAGES_PER_S = 29.0  # per core, ../shared/DESIGN.md "Measured here"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warc", nargs="?", default=str(DEFAULT_WARC))
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--keys", default="payload_digest")
    parser.add_argument("--chunk-records", type=int, default=200)
    parser.add_argument("--serial", action="store_true", help="no Ray: one core")
    args = parser.parse_args()
    warc = Path(args.warc)
    if not warc.is_file():
        sys.exit(f"{warc} not found (it sits beside the clone only in the dev workspace)")

    import ray

    from dedup.executor import RayExecutor, SerialExecutor
    from dedup.pre import run_pre_dedup
    from pipeline.warc import scan_chunks

    work = Path(tempfile.mkdtemp(prefix="crawlmill-bench-pre-"))
    try:
        doubled = work / "input.warc.gz"
        data = warc.read_bytes()
        doubled.write_bytes(data * args.copies)
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if not args.serial:
            ray.init(
                address="local",
                num_cpus=args.num_cpus,
                include_dashboard=False,
                log_to_driver=False,
            )
        start = time.perf_counter()
        chunks = scan_chunks(str(doubled), 0, args.chunk_records)
        scan_seconds = time.perf_counter() - start
        records = sum(c.n_records for c in chunks)
        start = time.perf_counter()
        result = run_pre_dedup(
            chunks,
            args.keys.split(","),
            work / "dedup_pre",
            max_payload_bytes=10 << 20,
            executor=SerialExecutor() if args.serial else RayExecutor(),
            log=lambda line: None,
        )
        seconds = time.perf_counter() - start
        rounds = result.timings["rounds"]
        removed = result.stats["removed"]
        figures = {
            "executor": "serial (1 process)" if args.serial else f"Ray, {args.num_cpus} CPUs",
            "input_bytes": len(data) * args.copies,
            "records": records,
            "chunks": len(chunks),
            "scan_seconds": round(scan_seconds, 2),
            "pass_seconds": round(seconds, 2),
            "records_per_s": round(records / seconds),
            "checked": result.stats["checked"],
            "checked_per_s": round(result.stats["checked"] / seconds),
            "removed": removed,
            "removed_by_reason": result.stats["removed_by_reason"],
            "rounds_seconds": {name: round(r["seconds"], 2) for name, r in rounds.items()},
            "max_task_peak_rss_mib": round(
                max(r["max_task_rss_bytes"] for r in rounds.values()) / 2**20
            ),
            "max_task_rss_growth_mib": round(
                max(r["max_task_rss_growth_bytes"] for r in rounds.values()) / 2**20
            ),
            "extraction_saved_cpu_seconds": round(removed / TRAFILATURA_PAGES_PER_S),
            "load_average": os.getloadavg(),
        }
        print(json.dumps(figures, indent=1))
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
