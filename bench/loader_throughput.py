"""Measure packing and the trainer-side loader on synthetic shards of realistic size.

    python bench/loader_throughput.py [--tokens 100000000] [--seq-len 4096] [--batch-size 8]

Builds a run directory of `--tokens` tokens (documents with web-like log-normal lengths,
median ~1,100 tokens, random ids + EOS) with `ShardWriter` in a temporary directory, packs
it (`pipeline.pack.pack`), then reads one epoch with `TokenLoader` and prints sequences/s
and tokens/s: uint32 as stored, int64 (what torch embeddings take), one rank of two, and
with document starts. The packed files were just written, so they are in the page cache:
these are warm-cache figures (reading from disk is bounded by the disk instead).
Also prints one JSON line with every figure. ~10 s and ~1 GB of temporary disk at 1e8 tokens.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import schema as S  # noqa: E402
from pipeline.loader import TokenLoader  # noqa: E402
from pipeline.pack import pack, parse_mix  # noqa: E402
from pipeline.shards import FORMAT_NAME, FORMAT_VERSION, ShardWriter, write_manifest  # noqa: E402

EOS = 151_643


def build_run(directory: Path, total_tokens: int, seed: int = 0) -> dict:
    """A run directory of ~total_tokens tokens in 100 M-token shards (the pipeline default)."""
    rng = np.random.default_rng(seed)
    writer = ShardWriter(directory / "shards", shard_tokens=100_000_000, rows_per_batch=1024)
    docs = written = 0
    while written < total_tokens:
        lengths = np.clip(rng.lognormal(7.0, 1.2, 2_000), 16, 200_000).astype(np.int64)
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = rng.integers(0, EOS, int(offsets[-1]), dtype=np.uint32)
        values[offsets[1:] - 1] = EOS
        n = len(lengths)
        writer.add(
            pa.table(
                {
                    S.ID: [f"<urn:uuid:bench-{docs + i}>" for i in range(n)],
                    S.URL: pa.array([""] * n),
                    S.CRAWL_DATE: pa.array([""] * n),
                    S.SOURCE: pa.array([""] * n),
                    S.LANG: pa.array(["en"] * n),
                    S.LANG_SCORE: pa.array(np.ones(n, np.float32)),
                    S.N_TOKENS: pa.array(lengths.astype(np.int32)),
                    S.TOKENS: pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values),
                }
            )
        )
        docs += n
        written += int(offsets[-1])
    shards = writer.close()
    tokenizer = {"name": "qwen2.5", "sha256": "", "eos_id": EOS, "vocab_size": 151_665}
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "crawlmill_version": "bench",
        "tokenizer": {**tokenizer, "append_eos": True},
        "totals": {"docs": docs, "tokens": written},
        "shards": shards,
    }
    write_manifest(directory, manifest)
    return manifest


def read_epoch(packed: Path, batch_size: int, **kwargs) -> dict:
    loader = TokenLoader(packed, batch_size, seed=0, **kwargs)
    start = time.perf_counter()
    batches = tokens = 0
    for batch in loader:
        tokens_batch = batch[0] if kwargs.get("return_doc_starts") else batch
        tokens += tokens_batch.size
        batches += 1
    seconds = time.perf_counter() - start
    return {
        "batches": batches,
        "sequences": batches * batch_size,
        "seconds": round(seconds, 3),
        "sequences_per_s": round(batches * batch_size / seconds),
        "tokens_per_s": round(tokens / seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000_000, help="tokens to build")
    parser.add_argument("--seq-len", type=int, default=4096, help="packed sequence length")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per batch per rank")
    parser.add_argument("--keep", metavar="DIR", help="build in DIR and keep it")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crawlmill-loader-"))
    results: dict = {"tokens_requested": args.tokens, "seq_len": args.seq_len}
    try:
        start = time.perf_counter()
        source = build_run(root / "run", args.tokens)
        results["build_seconds"] = round(time.perf_counter() - start, 2)
        results["docs"] = source["totals"]["docs"]
        results["tokens"] = source["totals"]["tokens"]
        print(
            f"built {results['docs']:,} documents, {results['tokens']:,} tokens in "
            f"{len(source['shards'])} shard(s), {results['build_seconds']:.1f}s"
        )

        start = time.perf_counter()
        manifest = pack(root / "run", root / "packed", seq_len=args.seq_len, log=lambda *a: None)
        seconds = time.perf_counter() - start
        results["pack"] = {
            "seconds": round(seconds, 2),
            "tokens_per_s": round(results["tokens"] / seconds),
            "sequences": manifest["counts"]["sequences"],
        }
        print(
            f"pack:    {seconds:6.2f}s  {results['tokens'] / seconds / 1e6:8.1f} M tokens/s "
            f"({manifest['counts']['sequences']:,} sequences of {args.seq_len + 1})"
        )

        start = time.perf_counter()
        long = pack(
            root / "run",
            root / "packed-long",
            seq_len=32_768,
            mix=parse_mix("qwen3-long"),
            log=lambda *a: None,
        )
        seconds = time.perf_counter() - start
        mix = long["mix"]
        results["pack_qwen3_long_32k"] = {
            "seconds": round(seconds, 2),
            "tokens_selected": mix["selected_tokens"],
            "achieved_shares": {b["range"]: b["achieved_share"] for b in mix["buckets"]},
        }
        shares = ", ".join(f"{b['range']} {b['achieved_share']:.2%}" for b in mix["buckets"])
        print(
            f"pack --mix qwen3-long --seq-len 32768: {seconds:.2f}s, "
            f"{mix['selected_tokens']:,} tokens selected ({shares})"
        )
        shutil.rmtree(root / "packed-long")

        runs = {
            "uint32": {},
            "int64": {"dtype": np.int64},
            "rank 0 of 2": {"rank": 0, "world_size": 2},
            "with doc_starts": {"return_doc_starts": True},
        }
        results["loader"] = {}
        for name, kwargs in runs.items():
            figures = read_epoch(root / "packed", args.batch_size, **kwargs)
            results["loader"][name] = figures
            print(
                f"loader {name:<16} batch {args.batch_size}: {figures['sequences_per_s']:>9,} "
                f"sequences/s  {figures['tokens_per_s'] / 1e6:8.1f} M tokens/s  "
                f"({figures['batches']:,} batches in {figures['seconds']:.2f}s)"
            )
        print(json.dumps(results, sort_keys=True))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
