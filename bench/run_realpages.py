"""Measure a full `crawlmill run` and extraction alone on the same real pages.

    python bench/run_realpages.py [WARC] [--extractor trafilatura|resiliparse] [--num-cpus N]

Prints, for the whole run: wall seconds, input pages/s per core, documents kept, and the
peak resident memory of the whole process tree (driver + Ray's processes + extractor
children, sampled every 0.2 s: /usr/bin/time would see only the driver). For extraction
alone: the same extractor on the same HTML pages in one process, no time limit, no Ray:
the floor a pipeline with this extractor cannot beat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO.parent / "shared" / "data" / "bench" / "realpages.warc.gz"


def tree_rss(root: psutil.Process) -> tuple[int, int]:
    """(sum of RSS over root and all descendants, largest single RSS)."""
    total = largest = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            rss = proc.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def run_pipeline(warc: Path, extractor: str, num_cpus: int | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="crawlmill-bench-")) / "out"
    cmd = [
        str(REPO / ".venv" / "bin" / "crawlmill"),
        "run",
        "--input",
        str(warc),
        "--output",
        str(out),
    ]
    cmd += ["--set", f"extract.extractor={extractor}"]
    if num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    peak = {"total": 0, "largest": 0}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(proc.pid)

    def sample():
        while proc.poll() is None:
            total, largest = tree_rss(root)
            peak["total"] = max(peak["total"], total)
            peak["largest"] = max(peak["largest"], largest)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    wall = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"crawlmill run failed:\n{output}")
    manifest = json.loads((out / "manifest.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    timings = json.loads((out / "timings.json").read_text())
    return {
        "output": str(out),
        "wall_seconds": wall,
        "workers": timings["workers"],
        "records": manifest["totals"]["records"],
        "docs": manifest["totals"]["docs"],
        "tokens": manifest["totals"]["tokens"],
        "rejected_by_reason": stats["rejected_by_reason"],
        "stage_cpu_seconds": timings["stage_cpu_seconds"],
        "peak_rss_tree_mb": peak["total"] / 2**20,
        "peak_rss_largest_process_mb": peak["largest"] / 2**20,
        "log": output,
    }


def extraction_alone(warc: Path, extractor: str, tuned: bool = False) -> dict:
    """Decode + extract every alive HTML page in this process, timed around extraction;
    the extractor as it ships, or with `tuned` as crawlmill's extractor child runs it."""
    from pipeline.config import ExtractConfig
    from pipeline.decode import decode_html
    from pipeline.extract import time_extractor
    from pipeline.warc import read_file

    table = read_file(str(warc), 5_000_000)
    pages = []
    for row in table.to_pylist():
        if row["drop_reason"] is None and row["record_type"] != "conversion":
            html, _ = decode_html(row["payload"], row["content_type"])
            if html is not None:
                pages.append(html)
    timed = time_extractor(ExtractConfig(extractor=extractor), pages, tuned)
    return {**timed, "pages": len(pages), "pages_per_s": len(pages) / timed["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("warc", nargs="?", default=str(DEFAULT_WARC))
    parser.add_argument(
        "--extractor", default="trafilatura", choices=["trafilatura", "resiliparse"]
    )
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--skip-extraction-alone", action="store_true")
    args = parser.parse_args()
    warc = Path(args.warc)
    if not warc.is_file():
        sys.exit(f"{warc}: not found (the bench corpus lives in ../shared/data/bench/)")

    run = run_pipeline(warc, args.extractor, args.num_cpus)
    print(run.pop("log"))
    cores = run["workers"]
    print(f"whole run ({args.extractor}, {cores} workers):")
    counts = f"{run['records']:,} records, {run['docs']:,} docs kept, {run['tokens']:,} tokens"
    print(f"  wall {run['wall_seconds']:.1f} s, {counts}")
    print(f"  {run['records'] / run['wall_seconds'] / cores:.1f} input records/s per core")
    print(f"  rejected by reason: {run['rejected_by_reason']}")
    print(
        f"  CPU seconds by stage: { {k: round(v, 1) for k, v in run['stage_cpu_seconds'].items()} }"
    )
    largest = f"largest process {run['peak_rss_largest_process_mb']:,.0f} MB"
    print(f"  peak RSS, process tree: {run['peak_rss_tree_mb']:,.0f} MB ({largest})")
    if not args.skip_extraction_alone:
        alone = extraction_alone(warc, args.extractor)
        print(f"extraction alone ({args.extractor}, 1 process, no time limit):")
        rate = f"{alone['pages_per_s']:.1f} pages/s per core"
        print(f"  {alone['pages']:,} pages in {alone['seconds']:.1f} s = {rate}")
        overhead = (run["records"] / alone["pages_per_s"] / cores) / run["wall_seconds"]
        print(f"  whole run reaches {overhead:.0%} of the extraction-alone rate per core")


if __name__ == "__main__":
    main()
