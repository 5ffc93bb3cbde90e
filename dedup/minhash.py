"""MinHash signatures, vectorised with numpy, equal to datasketch 2.0's `MinHash`.

datasketch (https://github.com/ekzhu/datasketch, MIT) is the reference users compare
against, so its semantics are reproduced exactly rather than approximated:

- shingle hash: `sha1_hash32` = the first 4 bytes of SHA-1, little-endian
  (datasketch/hashfunc.py);
- permutation scheme "affine32" (datasketch 2.0's default): the 32-bit hash is pre-mixed
  once with the MurmurHash3 finalizer `fmix32`, then each permutation k maps it to
  `a_k * h + b_k mod 2**32` (uint32 wrap-around is the modulo; `a_k` odd, so each map
  is a bijection);
- parameters drawn by `np.random.RandomState(seed)`: first `a = randint(0, 2**31, num_perm)
  * 2 + 1`, then `b = randint(0, 2**32, num_perm)`, both uint32 (datasketch/minhash.py,
  `_init_permutations`);
- a document's signature is the element-wise minimum over its shingles; with no shingles
  it stays at 2**32 - 1 everywhere (datasketch's "empty" MinHash).

What datasketch does per document in Python (`MinHash.bulk`: 4,420 docs/s for 2 KB
slices with their shingles given, against 6,280 here; docs/DEDUP.md) is done here per
*batch*: every shingle hash of the batch in one array, the permutations as one broadcast
product, and the per-document minimum as one `(shingles, num_perm)` product reduced over
its first axis, in blocks that bound memory (`BLOCK_SHINGLES` x num_perm x 4 bytes = 32 MiB at 128
permutations). Measured here on 2,000 documents of 304 shingles: this per-document
reduction takes 0.07 s, a whole-batch `np.minimum.reduceat` over rows 0.54 s (strided) and
over the transposed layout 0.11 s. SHA-1 per shingle stays in Python
(hashlib, ~0.3 us each): it dominates, and it is what makes the hashes datasketch's.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a document without shingles
# Shingles per broadcast block: 65,536 x 128 permutations x 4 bytes = 32 MiB.
BLOCK_SHINGLES = 1 << 16

# MurmurHash3 fmix32 constants (datasketch/minhash.py `_FMIX_CONSTANTS[32]`).
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


@functools.cache
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) uint32 arrays of datasketch's affine32 permutations for (num_perm, seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer on a uint32 array (wrapping arithmetic)."""
    s1, m1, s2, m2 = _FMIX32
    h = h ^ (h >> s1)
    h = h * m1
    h = h ^ (h >> s2)
    h = h * m2
    return h ^ (h >> s1)


def sha1_hash32_many(shingles: list[bytes]) -> np.ndarray:
    """datasketch's `sha1_hash32` of every shingle, as one uint32 array."""
    sha1 = hashlib.sha1
    # whole 20-byte digests joined, then every 5th little-endian uint32 (bytes 0-3 of each):
    # ~20% faster than slicing each digest in Python (measured: 0.14 s vs 0.18 s per 400k)
    digests = b"".join([sha1(s).digest() for s in shingles])
    return np.frombuffer(digests, dtype="<u4")[::5].astype(np.uint32)


def signatures(shingle_lists: list[list[bytes]], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signatures, one row per document: uint32 array (n_docs, num_perm)."""
    counts = np.fromiter((len(s) for s in shingle_lists), np.int64, len(shingle_lists))
    flat = [s for shingle_list in shingle_lists for s in shingle_list]
    return signatures_from_hashes(sha1_hash32_many(flat), counts, num_perm, seed)


def signatures_from_hashes(
    hashes: np.ndarray, counts: np.ndarray, num_perm: int = 128, seed: int = 1
) -> np.ndarray:
    """Signatures from the 32-bit shingle hashes of a batch: `hashes` holds document 0's
    `counts[0]` hashes, then document 1's, and so on."""
    a, b = permutations(num_perm, seed)
    out = np.full((len(counts), num_perm), EMPTY, dtype=np.uint32)
    mixed = fmix32(np.ascontiguousarray(hashes, dtype=np.uint32))
    start = 0
    for row, count in enumerate(counts.tolist()):
        for block in range(start, start + count, BLOCK_SHINGLES):
            shingle_hashes = mixed[block : min(block + BLOCK_SHINGLES, start + count)]
            permuted = shingle_hashes[:, None] * a + b  # uint32: wraps mod 2**32
            np.minimum(out[row], permuted.min(axis=0), out=out[row])
        start += count
    return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Share of equal signature positions (datasketch's `MinHash.jaccard`), row by row."""
    return np.count_nonzero(sig_a == sig_b, axis=-1) / sig_a.shape[-1]
