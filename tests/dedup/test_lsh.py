"""LSH parameters equal datasketch's optimum; band keys collide exactly on equal bands."""

from __future__ import annotations

import numpy as np
import pytest

from dedup.lsh import band_keys, collision_probability, optimal_params


def test_recipe_parameters():
    assert optimal_params(0.8, 128, 0.1, 0.9) == (14, 9)
    assert optimal_params(0.8, 128) == (9, 13)  # datasketch's default weights
    assert collision_probability(0.85, 14, 9) > 0.97
    assert collision_probability(0.5, 14, 9) < 0.03


@pytest.mark.parametrize("num_perm", [64, 128])
def test_optimal_params_equal_datasketch(num_perm):
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold in (0.5, 0.7, 0.8, 0.9):
        for weights in ((0.5, 0.5), (0.1, 0.9), (0.3, 0.7)):
            assert optimal_params(threshold, num_perm, *weights) == lsh._optimal_param(
                threshold, num_perm, *weights
            )


def test_band_keys_collide_on_equal_bands_only():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, (3, 128), dtype=np.uint32)
    sigs[1] = sigs[0]
    sigs[1, 9:] += 1  # same first band (rows 0-8), every other band different
    keys = band_keys(sigs, 14, 9)
    assert keys[0, 0] == keys[1, 0]
    assert not np.any(keys[0, 1:] == keys[1, 1:])
    assert not np.any(keys[2] == keys[0])
    # the same values in another band give another key: bands share one key space
    same_values = np.tile(sigs[2, :9], 14)[None, :]
    assert len(set(band_keys(same_values, 14, 9)[0].tolist())) == 14
