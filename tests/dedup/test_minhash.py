"""Signatures equal datasketch 2.0's MinHash (affine32, sha1_hash32) for the same shingles."""

from __future__ import annotations

import numpy as np
import pytest

import dedup.minhash as minhash
from dedup.normalize import shingles
from tests.dedup.texts import edited, hanzi_text, words_text

datasketch = pytest.importorskip("datasketch", minversion="2.0")


@pytest.mark.parametrize("num_perm, seed", [(128, 1), (64, 7), (256, 42)])
def test_signatures_equal_datasketch(num_perm, seed, monkeypatch):
    docs = [
        shingles(words_text(1), "en"),
        shingles(edited(words_text(1), 5, 2), "en"),
        shingles(hanzi_text(3), "zh"),
        shingles("short", "en"),
        [],  # no shingles: datasketch's empty MinHash
    ]
    monkeypatch.setattr(minhash, "BLOCK_SHINGLES", 37)  # blocks cut through documents
    ours = minhash.signatures(docs, num_perm, seed)
    for row, doc in zip(ours, docs, strict=True):
        reference = datasketch.MinHash(num_perm=num_perm, seed=seed)
        reference.update_batch(doc)
        assert reference.scheme == "affine32"
        np.testing.assert_array_equal(row, reference.hashvalues)


def test_permutations_and_jaccard_equal_datasketch():
    reference = datasketch.MinHash(num_perm=128, seed=1)
    a, b = minhash.permutations(128, 1)
    np.testing.assert_array_equal(a, reference.permutations[0])
    np.testing.assert_array_equal(b, reference.permutations[1])
    x, y = shingles(words_text(5), "en"), shingles(edited(words_text(5), 10, 6), "en")
    mx, my = datasketch.MinHash(), datasketch.MinHash()
    mx.update_batch(x)
    my.update_batch(y)
    sx, sy = minhash.signatures([x, y])
    assert minhash.estimated_jaccard(sx, sy) == mx.jaccard(my)
