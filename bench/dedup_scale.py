"""Dedup speed and memory: signatures per second per core, and the global step at scale.

    python bench/dedup_scale.py signatures [--docs 3000]
    python bench/dedup_scale.py global --rows 1000000 --partitions 4,16 [--work DIR]
        [--num-cpus 2] [--keep]

`signatures`: the streaming stage (`DedupSignatureStage`: normalise, shingle, SHA-1,
permute, minimum; exact key too) in one process on real text, the multilingual
CC-MAIN-2020-50 WET sample (../shared/data/warc/josephdviviano-whatsinthebox), whole
documents and 2 KB slices of them, in batches of 64 (the pipeline's engine.batch_rows);
then, shingles given, `dedup.minhash.signatures` alone and datasketch's `MinHash.bulk`
(when installed) on the same shingles.

`global`: synthetic parts shaped like the documents phase's output (id, drop_reason,
text_hash, text_chars, minhash: 128 uint32), 20,000 rows per part, with planted
duplicates: 10% of rows are near copies of one of rows/100 base signatures (each of their
128 values redrawn with probability 0.05: estimated Jaccard ~0.9 between two copies; the
bases themselves are not rows) and 2% share one of rows/200 text hashes. The global step then runs
on local Ray (`RayExecutor`) for each partition count, printing wall time per round and
the peak RSS of the largest task of each round (each task's own peak: dedup/executor.py),
next to the worker's RSS before the task. The run-to-run results (rows removed) must not
depend on the partition count.
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dedup.barrier import run_dedup  # noqa: E402
from dedup.executor import RayExecutor  # noqa: E402
from dedup.minhash import signatures  # noqa: E402
from dedup.normalize import shingles  # noqa: E402
from dedup.stage import DedupSignatureStage  # noqa: E402
from pipeline import schema as S  # noqa: E402
from pipeline.config import DedupConfig  # noqa: E402

WET = REPO.parent / "shared" / "data" / "warc" / "josephdviviano-whatsinthebox"
WET_FILE = WET / "test.fixed.warc.wet.gz"
ROWS_PER_PART = 20_000
NUM_PERM = 128
MIB = 1 << 20


# --- signatures per second ---------------------------------------------------------------------


def wet_texts() -> list[tuple[str, str]]:
    """(text, lid.176 language) of the WET sample's conversion records."""
    from filters.langid import LangIdStage
    from pipeline.config import LangIdConfig
    from pipeline.warc import read_file

    table = read_file(str(WET_FILE), 5_000_000)
    texts = [p.decode("utf-8", "replace") for p in table["payload"].to_pylist() if p]
    batch = pa.table(
        {
            S.TEXT: pa.array(texts, pa.large_string()),
            S.DROP_REASON: pa.nulls(len(texts), pa.string()),
            S.DROP_STAGE: pa.nulls(len(texts), pa.string()),
        }
    )
    langs = LangIdStage(LangIdConfig())(batch)[S.LANG].to_pylist()
    return list(zip(texts, langs, strict=True))


def time_stage(docs: list[tuple[str, str]], batch_rows: int = 64) -> tuple[float, int]:
    stage = DedupSignatureStage(DedupConfig())
    stage(
        pa.table(
            {
                S.TEXT: pa.array(["warm up"], pa.large_string()),
                S.LANG: ["en"],
                S.DROP_REASON: pa.nulls(1, pa.string()),
                S.DROP_STAGE: pa.nulls(1, pa.string()),
            }
        )
    )
    start = time.perf_counter()
    for i in range(0, len(docs), batch_rows):
        chunk = docs[i : i + batch_rows]
        stage(
            pa.table(
                {
                    S.TEXT: pa.array([t for t, _ in chunk], pa.large_string()),
                    S.LANG: [lang for _, lang in chunk],
                    S.DROP_REASON: pa.nulls(len(chunk), pa.string()),
                    S.DROP_STAGE: pa.nulls(len(chunk), pa.string()),
                }
            )
        )
    return time.perf_counter() - start, sum(len(t.encode()) for t, _ in docs)


def bench_signatures(n_docs: int) -> dict:
    base = wet_texts()
    whole = [base[i % len(base)] for i in range(n_docs)]
    slices = []
    for text, lang in base:
        data = text.encode()
        slices += [
            (data[i : i + 2048].decode("utf-8", "ignore"), lang) for i in range(0, len(data), 2048)
        ]
    slices = [slices[i % len(slices)] for i in range(n_docs)]
    out = {}
    for name, docs in (("whole WET documents", whole), ("2 KB slices", slices)):
        seconds, size = time_stage(docs)
        out[name] = {
            "docs": len(docs),
            "mean_kb": size / len(docs) / 1024,
            "docs_per_s": len(docs) / seconds,
            "mb_per_s": size / seconds / 1e6,
        }
        shingle_lists = [shingles(t, lang) for t, lang in docs]
        start = time.perf_counter()
        signatures(shingle_lists, NUM_PERM)
        out[name]["ours_signatures_docs_per_s_shingles_given"] = len(docs) / (
            time.perf_counter() - start
        )
        out[name]["shingles_per_doc"] = sum(map(len, shingle_lists)) / len(docs)
        try:
            from datasketch import MinHash

            start = time.perf_counter()
            MinHash.bulk(shingle_lists, num_perm=NUM_PERM)
            out[name]["datasketch_bulk_docs_per_s_shingles_given"] = len(docs) / (
                time.perf_counter() - start
            )
        except ImportError:
            pass
        print(f"{name}: {json.dumps(out[name])}")
    return out


# --- the global step -----------------------------------------------------------------------


def write_synthetic_parts(parts_dir: Path, rows: int, seed: int = 0) -> dict:
    parts_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_bases = max(1, rows // 100)
    bases = rng.integers(0, 2**32, (n_bases, NUM_PERM), dtype=np.uint32)
    n_hashes = max(1, rows // 200)
    shared_hashes = rng.integers(0, 256, (n_hashes, 16), dtype=np.uint8)
    planted_near = planted_exact = 0
    for part, start in enumerate(range(0, rows, ROWS_PER_PART)):
        n = min(ROWS_PER_PART, rows - start)
        sigs = rng.integers(0, 2**32, (n, NUM_PERM), dtype=np.uint32)
        near = rng.random(n) < 0.10
        copies = bases[rng.integers(0, n_bases, int(near.sum()))]
        redraw = rng.random(copies.shape) < 0.05
        copies[redraw] = rng.integers(0, 2**32, int(redraw.sum()), dtype=np.uint32)
        sigs[near] = copies
        hashes = rng.integers(0, 256, (n, 16), dtype=np.uint8)
        exact = rng.random(n) < 0.02
        hashes[exact] = shared_hashes[rng.integers(0, n_hashes, int(exact.sum()))]
        planted_near += int(near.sum())
        planted_exact += int(exact.sum())
        table = pa.table(
            {
                S.ID: [f"<urn:uuid:{start + i:032x}>" for i in range(n)],
                S.DROP_REASON: pa.nulls(n, pa.string()),
                S.TEXT_HASH: pa.array(list(map(bytes, hashes)), pa.binary(16)),
                S.TEXT_CHARS: pa.array(rng.integers(200, 20_000, n).astype(np.int32)),
                S.MINHASH: pa.ListArray.from_arrays(
                    pa.array(np.arange(0, (n + 1) * NUM_PERM, NUM_PERM, dtype=np.int32)),
                    pa.array(sigs.reshape(-1)),
                ),
            }
        )
        pq.write_table(table, parts_dir / f"00000-{part:05d}.parquet", compression="none")
    return {
        "rows": rows,
        "planted_near_copies": planted_near,
        "planted_exact_copies": planted_exact,
    }


def bench_global(rows: int, partitions: list[int], work: Path, num_cpus: int) -> dict:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    parts = work / "docs"
    start = time.perf_counter()
    planted = write_synthetic_parts(parts, rows)
    print(f"wrote {rows:,} synthetic rows in {time.perf_counter() - start:.0f}s: {planted}")
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    results = {"planted": planted, "runs": {}}
    for n in partitions:
        out = work / f"dedup-p{n}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        result = run_dedup(parts, DedupConfig(), out, executor=RayExecutor(), partitions=n)
        wall = time.perf_counter() - start
        rounds = result.timings["rounds"]
        print(
            f"partitions {n}: {wall:.0f}s wall, removed exact {result.stats['exact']['removed']:,}"
            f" near {result.stats['near']['removed']:,}, components rounds "
            f"{result.stats['near']['components_rounds']}"
        )
        for name, r in rounds.items():
            if r.get("tasks"):
                print(
                    f"    {name:<11} {r['seconds']:7.1f}s {r['tasks']:>4} tasks; task peak RSS "
                    f"max {r['max_task_rss_bytes'] / MIB:5.0f} MiB, max growth over the "
                    f"worker's RSS before it {r['max_task_rss_growth_bytes'] / MIB:5.0f} MiB "
                    f"(before: {r['min_task_rss_start_bytes'] / MIB:.0f}-"
                    f"{r['max_task_rss_start_bytes'] / MIB:.0f} MiB)"
                )
            else:
                print(f"    {name:<11} {r['seconds']:7.1f}s")
        results["runs"][n] = {
            "wall_seconds": wall,
            "stats": result.stats,
            "timings": result.timings,
        }
        shutil.rmtree(out, ignore_errors=True)
    removed = {n: r["stats"]["removed"] for n, r in results["runs"].items()}
    print(f"removed per partition count (must be equal): {removed}")
    ray.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sig = sub.add_parser("signatures")
    sig.add_argument("--docs", type=int, default=3000)
    glob = sub.add_parser("global")
    glob.add_argument("--rows", type=int, default=1_000_000)
    glob.add_argument("--partitions", default="4,16")
    glob.add_argument("--num-cpus", type=int, default=2)
    glob.add_argument("--work", type=Path, default=None)
    glob.add_argument("--keep", action="store_true", help="keep the synthetic parts")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.what == "signatures":
        result = bench_signatures(args.docs)
    else:
        work = args.work or Path(tempfile.mkdtemp(prefix="crawlmill-dedup-scale-"))
        try:
            result = bench_global(
                args.rows, [int(p) for p in args.partitions.split(",")], work, args.num_cpus
            )
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
