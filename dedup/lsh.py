"""LSH banding: bands x rows from a Jaccard threshold, and one 64-bit key per band.

A signature of `num_perm` values is cut into `bands` bands of `rows` values; two documents
become a candidate pair when all `rows` values of at least one band are equal. For two
documents of Jaccard similarity s that happens with probability

    P(s) = 1 - (1 - s**rows) ** bands                          (Leskovec et al., MMDS ch. 3)

`optimal_params` picks (bands, rows) the way datasketch's `MinHashLSH` does
(datasketch/lsh.py `_optimal_param`): the pair minimising

    fp_weight * integral_0^t P(s) ds  +  fn_weight * integral_t^1 (1 - P(s)) ds

over all bands * rows <= num_perm. datasketch integrates with scipy's `quad`; here a
128-node Gauss-Legendre rule does it, exact for these integrands (polynomials of degree
rows * bands <= num_perm) up to num_perm 255, so the same pair comes out
(tests/dedup/test_lsh.py checks a grid of thresholds and weights against datasketch)
without importing scipy (113 MB). Above 255 (the config allows 1,024) it is an
approximation: on thresholds 0.5/0.8/0.9, both weightings and num_perm 512 and 1,024 it
picks the same pairs as an exact 513-node rule.

The weights matter. datasketch's default (0.5, 0.5) at t = 0.8 and 128 permutations gives
9 x 13, whose P(0.85) is only 0.69: a third of the pairs just above the threshold are
never even compared. Because candidates are verified afterwards (estimated Jaccard from
the full signatures, `dedup.near.verify`), a false positive costs one comparison while a
false negative is a missed duplicate, so the recipe weights false negatives 0.9: 14 x 9,
P(0.85) = 0.975, P(0.7) = 0.44 (then rejected by verification), P(0.5) = 0.027.

A band's key is a 64-bit hash of its band index and its `rows` values, so all bands share
one key space (one shuffle) and two documents share a key exactly when they share a band
(up to a 2**-64 chance per pair of bands). datasketch keys its per-band hash tables by
the values' bytes: the same buckets.
"""

from __future__ import annotations

import functools

import numpy as np

_LEGENDRE_NODES = 128
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_BAND_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd


def collision_probability(similarity, bands: int, rows: int):
    """Probability that two documents of this Jaccard similarity share a band."""
    s = np.asarray(similarity, dtype=np.float64)
    return 1.0 - (1.0 - s ** float(rows)) ** float(bands)


@functools.cache
def _legendre():
    return np.polynomial.legendre.leggauss(_LEGENDRE_NODES)


def _integral(f, low: float, high: float) -> float:
    nodes, weights = _legendre()
    half = (high - low) / 2.0
    return float(half * np.sum(weights * f(half * nodes + (high + low) / 2.0)))


def false_positive_area(threshold: float, bands: int, rows: int) -> float:
    """datasketch's `_false_positive_probability`: area under P(s) for s in [0, t]."""
    return _integral(lambda s: collision_probability(s, bands, rows), 0.0, threshold)


def false_negative_area(threshold: float, bands: int, rows: int) -> float:
    """datasketch's `_false_negative_probability`: area under 1 - P(s) for s in [t, 1]."""
    return _integral(lambda s: 1.0 - collision_probability(s, bands, rows), threshold, 1.0)


@functools.cache
def optimal_params(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted error areas, as datasketch's MinHashLSH."""
    best_error, best = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            error = false_positive_weight * false_positive_area(
                threshold, bands, rows
            ) + false_negative_weight * false_negative_area(threshold, bands, rows)
            if error < best_error:
                best_error, best = error, (bands, rows)
    return best


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer on a uint64 array: a bijection that mixes all bits."""
    shift, m1, m2 = _FMIX64
    h = h ^ (h >> shift)
    h = h * m1
    h = h ^ (h >> shift)
    h = h * m2
    return h ^ (h >> shift)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 array (n_docs, bands): the key of each band of each signature."""
    n_docs = signatures.shape[0]
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm {signatures.shape[1]}")
    keys = np.empty((n_docs, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(n_docs, fmix64(np.uint64(band + 1)), dtype=np.uint64)
            for column in range(band * rows, (band + 1) * rows):
                h = fmix64((h ^ signatures[:, column].astype(np.uint64)) * _BAND_MULTIPLIER)
            keys[:, band] = h
    return keys
