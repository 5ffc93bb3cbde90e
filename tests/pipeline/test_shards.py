"""Shard writer and trainer-side reader: boundaries, determinism, zero-copy memory mapping."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline import schema as S
from pipeline.shards import ShardReader, ShardWriter, file_sha256


def make_docs(lengths: list[int], seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    tokens = [rng.integers(0, 151_643, n, dtype=np.uint32).tolist() for n in lengths]
    return pa.table(
        {
            S.ID: [f"<urn:uuid:{i}>" for i in range(len(lengths))],
            S.URL: [f"http://example.com/{i}" for i in range(len(lengths))],
            S.CRAWL_DATE: ["2020-11-23T00:00:00Z"] * len(lengths),
            S.SOURCE: ["a.warc.gz"] * len(lengths),
            S.LANG: ["en"] * len(lengths),
            S.LANG_SCORE: pa.array([0.9] * len(lengths), pa.float32()),
            S.DOMAIN: ["other"] * len(lengths),
            S.DOMAIN_SCORE: pa.array([0.0] * len(lengths), pa.float32()),
            S.DOMAIN_SOURCE: ["none"] * len(lengths),
            S.N_TOKENS: pa.array(lengths, pa.int32()),
            S.TOKENS: pa.array(tokens, pa.list_(pa.uint32())),
        }
    )


def test_shards_cut_at_token_target_and_keep_every_document(tmp_path):
    lengths = [30, 50, 20, 70, 10, 10, 90, 5]
    docs = make_docs(lengths)
    writer = ShardWriter(tmp_path, shard_tokens=100, rows_per_batch=3)
    writer.add(docs.slice(0, 3))  # arrival in pieces must not matter
    writer.add(docs.slice(3))
    shards = writer.close()
    # a shard closes with the document that reaches 100 tokens
    assert [s["tokens"] for s in shards] == [100, 180, 5]
    assert [s["docs"] for s in shards] == [3, 4, 1]
    read_back = []
    for s in shards:
        reader = ShardReader(tmp_path / s["file"].split("/")[-1])
        read_back += [reader.tokens(i).tolist() for i in range(len(reader))]
    assert read_back == docs[S.TOKENS].to_pylist()


def test_same_rows_in_different_pieces_give_identical_bytes(tmp_path):
    docs = make_docs([17] * 50)
    shas = []
    for n, pieces in enumerate([[docs], [docs.slice(i, 7) for i in range(0, 50, 7)]]):
        writer = ShardWriter(tmp_path / str(n), shard_tokens=300, rows_per_batch=4)
        for piece in pieces:
            writer.add(piece)
        shas.append([s["sha256"] for s in writer.close()])
    assert shas[0] == shas[1]
    assert len(shas[0]) == 3


def test_memory_mapped_document_read_is_zero_copy(tmp_path):
    lengths = [1000] * 2000  # 8 MB of token ids
    docs = make_docs(lengths, seed=1)
    writer = ShardWriter(tmp_path, shard_tokens=10**9, rows_per_batch=256)
    writer.add(docs)
    (shard,) = writer.close()
    path = tmp_path / "shard-00000.arrow"
    assert shard["sha256"] == file_sha256(path)

    before = pa.total_allocated_bytes()
    reader = ShardReader(path)
    tokens = reader.tokens(1234)
    # nothing was copied into Arrow's heap: the array views the mapped file
    assert pa.total_allocated_bytes() == before
    assert tokens.dtype == np.uint32
    assert not tokens.flags.owndata
    assert tokens.tolist() == docs[S.TOKENS][1234].as_py()
    assert reader.row(1234)[S.ID] == "<urn:uuid:1234>"
    with pytest.raises(IndexError):
        reader.tokens(2000)
