"""Synthetic crawlmill run directories for the packing and loader tests: real shards
written by `ShardWriter` and a manifest, with documents of chosen lengths whose tokens are
random ids ending with EOS (so every document is unique and can be found again)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import schema as S
from pipeline.shards import FORMAT_NAME, FORMAT_VERSION, ShardWriter, write_manifest

EOS = 151_643  # Qwen2.5's <|endoftext|>


def documents_table(lengths, seed: int = 0, first_id: int = 0) -> pa.Table:
    """Rows in SHARD_SCHEMA: document i has lengths[i] tokens, the last one EOS."""
    lengths = np.asarray(lengths, np.int64)
    rng = np.random.default_rng(seed)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = rng.integers(0, EOS, int(offsets[-1]), dtype=np.uint32)
    values[offsets[1:] - 1] = EOS
    n = len(lengths)
    ids = [f"<urn:uuid:synthetic-{first_id + i}>" for i in range(n)]
    return pa.table(
        {
            S.ID: ids,
            S.URL: [f"http://example.com/{first_id + i}" for i in range(n)],
            S.CRAWL_DATE: pa.array(["2024-05-01T00:00:00Z"] * n),
            S.SOURCE: pa.array(["synthetic.warc.gz"] * n),
            S.LANG: pa.array(["en"] * n),
            S.LANG_SCORE: pa.array(np.full(n, 0.9, np.float32)),
            S.DOMAIN: pa.array(["other"] * n),
            S.DOMAIN_SCORE: pa.array(np.zeros(n, np.float32)),
            S.DOMAIN_SOURCE: pa.array(["none"] * n),
            S.N_TOKENS: pa.array(lengths.astype(np.int32)),
            S.TOKENS: pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values),
        }
    )


def write_run(
    directory: str | Path,
    lengths,
    seed: int = 0,
    shard_tokens: int = 1_000_000,
    rows_per_batch: int = 256,
    append_eos: bool = True,
) -> Path:
    """A run directory (manifest.json + shards/) holding documents of `lengths` tokens."""
    directory = Path(directory)
    writer = ShardWriter(directory / "shards", shard_tokens, rows_per_batch)
    step = 50_000  # rows per table handed to the writer
    for start in range(0, len(lengths), step):
        writer.add(documents_table(lengths[start : start + step], seed + start, start))
    shards = writer.close()
    write_manifest(
        directory,
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "crawlmill_version": "test",
            "tokenizer": {
                "name": "qwen2.5",
                "sha256": "synthetic",
                "eos_id": EOS,
                "vocab_size": 151_665,
                "append_eos": append_eos,
            },
            "totals": {"docs": int(len(lengths)), "tokens": int(np.sum(lengths))},
            "shards": shards,
        },
    )
    return directory


def lengths_summing_to(total: int, n_docs: int, seed: int = 0) -> np.ndarray:
    """n_docs random lengths (>= 2) that add up to exactly `total` tokens."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0, 1, n_docs)
    lengths = np.maximum(2, np.floor(weights / weights.sum() * total)).astype(np.int64)
    lengths[-1] += total - lengths.sum()
    assert lengths[-1] >= 2 and lengths.sum() == total
    return lengths
