"""Connected components of the duplicate graph, distributed: alternating large-star and
small-star rounds over hash-partitioned edges (Kiveris et al., "Connected Components in
MapReduce and Beyond", SoCC 2014; the algorithm BigCode's Spark dedup uses).

Why not union-find in one process: datatrove's clustering step does exactly that (one task
reads every candidate pair), and users report it running for hours or exhausting a 1 TB
machine (datatrove #106, #222). Here no task ever holds more than its partition.

Nodes are uint64 document keys (dedup/barrier.py: part ordinal << 32 | row). A node's
partition is `fmix64(node) % n`. An undirected edge {u, v} is stored as records (x, y),
x the node whose task sees it. One round = one task per partition, each reading only its
partition from every file of the previous round (dedup/shuffle.py):

- **large-star** (input: both directions of every edge, so task(x) sees all of x's
  neighbours): m = min(x, neighbours); every neighbour y > x is re-linked to m, emitted
  as (y, m) for the small-star round, routed to y's partition.
- **small-star** (input: each edge once, at its larger end x, so task(x) sees x's smaller
  neighbours): m = min of them; x and every smaller neighbour other than m are re-linked
  to m, emitted both ways for the next large-star round.

Both steps keep every component connected and never join two components; Kiveris et al.
prove convergence to one star per component, centred on its smallest node, in O(log^2 n)
rounds (a few in practice: duplicate clusters are already near-stars). A large-star task
also checks, locally, whether its input is already a star forest: no node has a smaller
neighbour *and* a second neighbour. When no partition finds such a node, every component
is a star around its minimum, and that round's output, (member, root) for every non-root
member routed to the member's partition, is the answer.

Memory per task: its partition's records, 16 bytes each (two uint64), x ~3 while sorting:
with E edges and n partitions, ~2E/n records in a large-star round. Rounds are
deterministic functions of the edge set, so the result does not depend on n or on the
number of workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dedup.lsh import fmix64
from dedup.shuffle import column, read_partition, write_partitioned

MAX_ROUNDS = 200  # Kiveris et al.: O(log^2 n); 2**64 nodes would need < 4,100. A guard.


def node_partition(nodes: np.ndarray, n: int) -> np.ndarray:
    """Partition of each node: a mixed hash, so consecutive keys spread evenly."""
    with np.errstate(over="ignore"):
        return (fmix64(nodes.astype(np.uint64)) % np.uint64(n)).astype(np.int64)


def write_edges_both_ways(path: str | Path, u: np.ndarray, v: np.ndarray, n: int) -> int:
    """Edges {u, v} as large-star input: (u, v) to u's partition, (v, u) to v's."""
    x = np.concatenate([u, v]).astype(np.uint64)
    y = np.concatenate([v, u]).astype(np.uint64)
    return write_partitioned(path, {"x": x, "y": y}, node_partition(x, n), n)


def _sorted_unique(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Records sorted by (x, y), duplicates and self-loops removed."""
    keep = x != y
    x, y = x[keep], y[keep]
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    if len(x):
        first = np.ones(len(x), dtype=bool)
        first[1:] = (x[1:] != x[:-1]) | (y[1:] != y[:-1])
        x, y = x[first], y[first]
    return x, y


def _groups(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and size of each run of equal values in sorted x."""
    starts = (
        np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]])) if len(x) else np.empty(0, int)
    )
    sizes = np.diff(np.append(starts, len(x)))
    return starts, sizes


def _read_edges(paths: list[str], partition: int) -> tuple[np.ndarray, np.ndarray]:
    table = read_partition(paths, partition)
    if table is None:
        return np.empty(0, np.uint64), np.empty(0, np.uint64)
    return column(table, "x", np.uint64), column(table, "y", np.uint64)


def large_star_task(partition: int, inputs: list[str], output: str, n: int) -> dict:
    """One large-star task (see the module docstring)."""
    x, y = _sorted_unique(*_read_edges(inputs, partition))
    starts, sizes = _groups(x)
    group_node, smallest_neighbour = x[starts], y[starts]
    root = np.minimum(group_node, smallest_neighbour)
    not_star = bool(np.any((smallest_neighbour < group_node) & (sizes >= 2)))
    root_per_record = np.repeat(root, sizes)
    relink = y > x
    out_x, out_y = y[relink], root_per_record[relink]
    write_partitioned(output, {"x": out_x, "y": out_y}, node_partition(out_x, n), n)
    return {"records_in": int(len(x)), "edges_out": int(len(out_x)), "star": not not_star}


def small_star_task(partition: int, inputs: list[str], output: str, n: int) -> dict:
    """One small-star task (see the module docstring)."""
    x, y = _sorted_unique(*_read_edges(inputs, partition))
    starts, sizes = _groups(x)
    group_node, root = x[starts], y[starts]  # y < x in every record; sorted, so y[start] is min
    root_per_record = np.repeat(root, sizes)
    others = y != root_per_record
    u = np.concatenate([y[others], group_node])
    v = np.concatenate([root_per_record[others], root])
    write_edges_both_ways(output, u, v, n)
    return {"records_in": int(len(x)), "edges_out": int(len(u))}


def connected_components(
    edge_files: list[str], work_dir: str | Path, n: int, executor
) -> tuple[list[str], dict]:
    """Components of the graph whose edges are in `edge_files` (large-star input, written
    by `write_edges_both_ways` with the same n). Returns the files of (x = member,
    y = root) records, one per non-root member, routed to the member's partition, and
    counts: rounds, records per round, and every task's result."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    inputs = list(map(str, edge_files))
    stats = {"rounds": 0, "large_star_records": [], "small_star_records": [], "tasks": []}
    for round_index in range(MAX_ROUNDS):
        large = [str(work_dir / f"large-{round_index:03d}-{p:05d}.arrow") for p in range(n)]
        results = executor.map(large_star_task, [(p, inputs, large[p], n) for p in range(n)])
        stats["rounds"] = round_index + 1
        stats["large_star_records"].append(sum(r["records_in"] for r in results))
        stats["tasks"] += results
        if all(r["star"] for r in results):
            return large, stats
        small = [str(work_dir / f"small-{round_index:03d}-{p:05d}.arrow") for p in range(n)]
        results = executor.map(small_star_task, [(p, large, small[p], n) for p in range(n)])
        stats["small_star_records"].append(sum(r["records_in"] for r in results))
        stats["tasks"] += results
        inputs = small
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")


def union_find_roots(edges: Iterable[tuple]) -> dict:
    """In one process, for tests and benchmarks: node -> smallest node of its component,
    for every node of an edge (nodes: any orderable values)."""
    parent: dict = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {a: find(a) for a in list(parent)}
