"""Bounded memory: peak RSS per process of a whole `crawlmill run` at two input sizes.

    python bench/memory_scale.py                       # 250 MB and 1 GB (`make bench-memory`)
    python bench/memory_scale.py --sizes-mb 100,400 --extractor trafilatura

The inputs are built by repeating the real pages of ../shared/data/bench/realpages.warc.gz
(3,913 pages, 319 MB uncompressed) as one uncompressed WARC of the asked size: every copy
after the first gets a new WARC-Record-ID (uuid5 of copy + old id) and a new target URI
("?crawlmill-copy=K"), so each record is a distinct record to the reader. Sizes are bytes
of that uncompressed file (1 GB of it is ~230 MB as .warc.gz). Dedup before extraction is
off (it would drop the copies unread, by payload digest); the dedup barrier stays on, as
in production: the copies' texts are exact duplicates, so it drops them there, after the
documents phase (read, extract, filters, tokenize) did every page.

The run uses resiliparse (about 10x faster than trafilatura, same memory shape) to keep it
short, and `--num-cpus 2`. A sampler thread reads the RSS of every process of the run's
tree every 0.5 s (the driver, Ray's daemons, the actors, the extractor children) and keeps
each process's peak; processes are grouped by role. Streaming end to end means the
per-process peaks stay flat while the input grows 4x; only the count of work done grows.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import psutil
from fastwarc import ArchiveIterator

REPO = Path(__file__).resolve().parents[1]
REALPAGES = REPO.parent / "shared" / "data" / "bench" / "realpages.warc.gz"
MB = 1 << 20
SAMPLE_SECONDS = 0.5

_RECORD_ID = re.compile(rb"(?im)^(WARC-Record-ID:[ \t]*)<urn:uuid:([^>]+)>")
# WARC/1.1 writes the URI bare; some writers (WARC/1.0's grammar) wrap it in <>
_TARGET_URI = re.compile(rb"(?im)^(WARC-Target-URI:[ \t]*)(<?)([^\s<>]+)(>?)")


# --- Inputs -------------------------------------------------------------------------------


def real_records(path: Path) -> list[bytes]:
    """The raw bytes of every record of `path`, uncompressed."""
    with gzip.open(path) as stream:  # gzip.decompress is quadratic in the member count
        data = stream.read()
    starts = [r.stream_pos for r in ArchiveIterator(io.BytesIO(data), parse_http=False)]
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def renamed(record: bytes, copy: int) -> bytes:
    """The record with a new id and target URI for copy `copy` (copy 0 is unchanged)."""
    if copy == 0:
        return record
    head_end = record.find(b"\r\n\r\n")
    head, rest = record[:head_end], record[head_end:]

    def new_id(match: re.Match) -> bytes:
        fresh = uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}:{match.group(2).decode()}")
        return match.group(1) + f"<urn:uuid:{fresh}>".encode()

    def new_uri(match: re.Match) -> bytes:
        field, open_, uri, close = match.groups()
        sep = b"&" if b"?" in uri else b"?"
        return field + open_ + uri + sep + f"crawlmill-copy={copy}".encode() + close

    head = _RECORD_ID.sub(new_id, head, count=1)
    head = _TARGET_URI.sub(new_uri, head, count=1)
    return head + rest


def build_input(records: list[bytes], size_mb: int, path: Path) -> dict:
    """Write records, copy after copy, until the file holds `size_mb` MB."""
    target = size_mb * MB
    written = n = 0
    with open(path, "wb") as out:
        copy = 0
        while written < target:
            for record in records:
                data = renamed(record, copy)
                out.write(data)
                written += len(data)
                n += 1
                if written >= target:
                    break
            copy += 1
    return {"bytes": written, "records": n, "copies": copy}


# --- Measuring a run ----------------------------------------------------------------------


def role(proc: psutil.Process) -> str:
    """What a process of the run is, from its command line."""
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return "gone"
    line = " ".join(cmdline)
    if "pipeline.extract" in line:
        return "extractor child"
    if cmdline and cmdline[0].startswith("ray::"):
        name = cmdline[0][5:]
        if "ChunkWorker" in name:
            return "Ray actor (ChunkWorker)"
        return "Ray idle worker" if name == "IDLE" else "Ray task worker"
    for daemon in ("raylet", "gcs_server", "dashboard", "log_monitor", "runtime_env", "monitor"):
        if daemon in line:
            return f"Ray daemon ({daemon})"
    if "pipeline.cli" in line or "crawlmill" in line:
        return "driver (crawlmill run)"
    return "other: " + os.path.basename(cmdline[0]) if cmdline else "other"


def measure_run(warc: Path, out: Path, extractor: str, num_cpus: int) -> dict:
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(warc)]
    cmd += ["--output", str(out), "--num-cpus", str(num_cpus)]
    cmd += ["--set", f"extract.extractor={extractor}"]
    # The copies share their payloads: dedup before extraction would drop them unread.
    # Off, so the documents phase streams every page, which is what is measured here.
    cmd += ["--set", "dedup.pre_extraction=[]"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    peaks: dict[int, int] = {}  # pid -> peak RSS
    roles: dict[int, str] = {}  # pid -> the role it had at its peak
    tree_peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    root = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal tree_peak
        while not done.is_set():
            total = 0
            try:
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                family = []
            for p in family:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if rss > peaks.get(p.pid, -1):
                    peaks[p.pid] = rss
                    roles[p.pid] = role(p)
            tree_peak = max(tree_peak, total)
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"crawlmill run failed:\n{output}")
    by_role: dict[str, list[int]] = defaultdict(list)
    for pid, rss in peaks.items():
        by_role[roles[pid]].append(rss)
    return {"seconds": seconds, "by_role": dict(by_role), "tree_peak": tree_peak, "log": output}


# --- Main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="250,1024", help="input sizes, MB (uncompressed)")
    parser.add_argument("--extractor", default="resiliparse")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep inputs and outputs")
    args = parser.parse_args(argv)
    if not REALPAGES.exists():
        print(f"{REALPAGES} is absent (it sits beside the clone in the dev workspace)")
        return 1

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crawlmill-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; work dir {workdir}")
    records = real_records(REALPAGES)
    results = {}
    try:
        for size in sizes:
            warc = workdir / f"input-{size}mb.warc"
            built = build_input(records, size, warc)
            print(
                f"{size} MB input: {built['records']:,} records ({built['bytes'] / MB:,.0f} MB, "
                f"{built['copies']} pass(es) over the real pages); running ...",
                flush=True,
            )
            result = measure_run(warc, workdir / f"out-{size}mb", args.extractor, args.num_cpus)
            result.update(built)
            results[size] = result
            print(
                f"  {result['seconds']:.0f}s, {built['records'] / result['seconds']:.1f} "
                f"records/s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if not args.keep:
                warc.unlink()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    roles = sorted({r for result in results.values() for r in result["by_role"]})
    header = f"{'peak RSS per process, MB':34s}" + "".join(
        f"{f'{size} MB input':>22s}" for size in sizes
    )
    print("\n" + header)
    print(f"{'(role: largest process [n processes])':34s}")
    for name in roles:
        cells = []
        for size in sizes:
            values = results[size]["by_role"].get(name, [])
            cells.append(f"{max(values) / MB:,.0f} [{len(values)}]" if values else "-")
        print(f"{name:34s}" + "".join(f"{c:>22s}" for c in cells))
    print(
        f"{'whole tree, sum at one moment':34s}"
        + "".join(f"{results[s]['tree_peak'] / MB:>22,.0f}" for s in sizes)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
