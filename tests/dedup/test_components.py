"""Distributed connected components equal union-find, whatever the partition count."""

from __future__ import annotations

import numpy as np
import pytest

from dedup.components import connected_components, union_find_roots, write_edges_both_ways
from dedup.executor import SerialExecutor
from dedup.shuffle import column, read_partition


def components(u, v, n, tmp_path):
    write_edges_both_ways(tmp_path / "edges.arrow", u, v, n)
    files, stats = connected_components(
        [str(tmp_path / "edges.arrow")], tmp_path / "cc", n, SerialExecutor()
    )
    roots = {}
    for p in range(n):
        table = read_partition(files, p)
        for member, root in zip(
            column(table, "x", np.uint64).tolist(),
            column(table, "y", np.uint64).tolist(),
            strict=True,
        ):
            assert member not in roots  # each member once
            roots[member] = root
    return roots, stats


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("shape", ["random", "chain", "star", "empty"])
def test_equal_to_union_find(shape, n, tmp_path):
    rng = np.random.default_rng(len(shape) * 10 + n)
    # keys shaped like document keys: part ordinal << 32 | row
    nodes = (rng.integers(0, 50, 300).astype(np.uint64) << np.uint64(32)) | rng.integers(
        0, 200, 300
    ).astype(np.uint64)
    nodes = np.unique(nodes)
    if shape == "random":
        u, v = rng.choice(nodes, 250), rng.choice(nodes, 250)
    elif shape == "chain":  # the worst case for label propagation: a long path
        order = rng.permutation(nodes)
        u, v = order[:-1], order[1:]
    elif shape == "star":
        u, v = np.full(len(nodes) - 1, nodes[-1]), nodes[:-1]
    else:
        u = v = np.empty(0, np.uint64)
    roots, stats = components(u, v, n, tmp_path)
    reference = union_find_roots(zip(u.tolist(), v.tolist(), strict=True))
    expected = {a: r for a, r in reference.items() if a != r}
    assert roots == expected
    assert stats["rounds"] <= 20
