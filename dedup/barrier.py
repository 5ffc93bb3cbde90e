"""The global dedup step: a barrier between the documents phase and the write phase.

`run_dedup` reads the parts the documents phase wrote (`_work/docs/FFFFF-CCCCC.parquet`,
only the columns it needs), finds exact and near duplicates across the whole run, and
writes a side table of decisions, `_work/dedup/drops-RRRRR.parquet`: one row per dropped
document, keyed by (file_index, chunk_index, row), with `drop_reason` (exact_duplicate /
near_duplicate), `dup_cluster_id` (the id of the document kept in its place) and
`dup_cluster_size`. The parts are never rewritten; the write phase applies the side table
as it reads them (`DedupDecisions`). `_work/dedup/done.json` (written last, with the
stats) marks the step as done: a rerun skips it, and a crash before it reruns it whole
(the step is short next to extraction: docs/DEDUP.md).

A document's key is `part ordinal << 32 | row`; parts are grouped into *ranges* of
consecutive parts, and keys are hash-partitioned into `n` *partitions*. Every round below
is one Ray task per range or partition, exchanging files (dedup/shuffle.py):

1. scan (per range): alive rows -> exact records (routed by text hash), survivor
   attributes (routed by key), and the range's signature store (`.npy`, memory-mapped by
   later rounds);
2. exact (per partition): groups of equal text hash -> exact drops (routed to ranges);
3. bands (per range): signatures of documents not dropped by the exact pass -> one
   record per LSH band, (band key, document key), routed by band key;
4. candidates (per partition): documents sharing a band key -> pairs (smallest key of the
   bucket, each other member), verified by estimated Jaccard read from the signature
   stores -> edges;
5. connected components (dedup/components.py): large-star / small-star rounds -> (member,
   root) for every non-root member of a near-duplicate cluster;
6. survivors (per partition, two rounds): members joined with their attributes, grouped
   by root; the best member by `dedup.survivor` is kept, the others are near drops;
7. resolve (per partition, when both passes run): an exact drop whose survivor was then
   near-dropped names the near cluster's kept document instead (exact drops routed by
   their survivor, near drops by their own key, joined), so every `dup_cluster_id`
   names a document that is in the shards; then, when the pass before extraction ran
   (dedup/pre.py), its drops are turned into (key, survivor key) refs and joined the same
   way with the final ids of this step's drops (a survivor of that pass that this step
   dropped: its duplicates name the document finally kept);
8. finalize (per range): exact + near drops of the range -> `drops-RRRRR.parquet`.

No task holds more than its range or partition (memory figures: docs/DEDUP.md), and
every decision is a deterministic function of the data, so the side table is identical
whatever the number of partitions, ranges or workers (tests/dedup/test_barrier.py).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dedup.components import connected_components, node_partition, write_edges_both_ways
from dedup.executor import SerialExecutor
from dedup.lsh import band_keys, optimal_params
from dedup.minhash import estimated_jaccard
from dedup.pre import PRE_DIR, pre_enabled
from dedup.shuffle import column, read_partition, write_partitioned
from dedup.stage import document_keys
from pipeline import schema as S
from pipeline.config import DedupConfig, NearDedupConfig
from pipeline.io import crash_point, finished_files, read_parquet
from pipeline.stage import mark_dropped

DEDUP_DIR = "dedup"  # under the run's _work/
DONE_FILE = "done.json"
DROP_STAGE = "dedup"
# Sizing (docs/DEDUP.md): ~50,000 documents per range keep a scan task's growth under
# ~200 MB (measured 192 MiB); a candidates task peaks at ~140 bytes per band record
# (measured: 598 MiB for 4.4 M records, 144 MiB for 1.1 M), so 2 M records per partition
# keep it near 300 MB.
DOCS_PER_RANGE = 50_000
BAND_RECORDS_PER_PARTITION = 2_000_000
# Runs of at most this many rows (kept + dropped) dedup in the driver, without Ray tasks:
# each Ray round has a fixed cost (scheduling, worker imports) that small runs never earn
# back. Measured on 1,200 rows of real pages (bench/side_by_side.py's settings, 2 busy
# cores): 1.7 s in the driver against 13.7 s as Ray tasks. The rows of one partition
# (~2 M band records, above) fit one process comfortably at this size.
IN_DRIVER_MAX_ROWS = 50_000
ROW_BITS = 32  # key = part ordinal << 32 | row


class DedupConfigError(ValueError):
    """An inconsistent dedup config (reported before any work, naming the key)."""


def lsh_params(near: NearDedupConfig) -> tuple[int, int]:
    """(bands, rows): as configured, or derived from the threshold and weights."""
    if (near.bands == 0) != (near.rows == 0):
        raise DedupConfigError(
            "dedup.near.bands, dedup.near.rows: give both (or neither, to derive them), "
            f"got bands={near.bands}, rows={near.rows}"
        )
    if near.bands:
        if near.bands * near.rows > near.num_perm:
            raise DedupConfigError(
                f"dedup.near.bands x dedup.near.rows: {near.bands} x {near.rows} exceeds "
                f"dedup.near.num_perm = {near.num_perm}"
            )
        return near.bands, near.rows
    if near.false_positive_weight == 0 and near.false_negative_weight == 0:
        raise DedupConfigError(  # every (bands, rows) would score 0: the search took 1 x 1
            "dedup.near.false_positive_weight, dedup.near.false_negative_weight: both 0, so "
            "no bands x rows is better than another; give one a weight above 0, or set "
            "dedup.near.bands and dedup.near.rows"
        )
    return optimal_params(
        near.threshold, near.num_perm, near.false_positive_weight, near.false_negative_weight
    )


@dataclass
class Plan:
    """Everything a task needs; sent to every task (small: paths and numbers)."""

    cfg: DedupConfig
    parts: list[str]  # part paths in (file, chunk) order; index = part ordinal
    part_ids: list[tuple[int, int]]  # (file_index, chunk_index) of each part
    parts_per_range: int
    n_ranges: int
    n_partitions: int
    bands: int
    rows: int
    tmp: str  # scratch directory of this step
    out: str  # where drops-*.parquet and done.json go
    # drops-GGGGG.parquet of the pass before extraction (dedup/pre.py): their survivors
    # may be dropped here, their cluster ids are then resolved (round 7)
    pre_drops: list[str] = field(default_factory=list)

    @property
    def resolve_exact(self) -> bool:
        return self.cfg.exact and self.cfg.near.enabled

    @property
    def resolve_pre(self) -> bool:
        return bool(self.pre_drops) and (self.cfg.exact or self.cfg.near.enabled)

    def path(self, name: str) -> str:
        return str(Path(self.tmp) / name)

    def range_paths(self, prefix: str) -> list[str]:
        return [self.path(f"{prefix}-{r:05d}.arrow") for r in range(self.n_ranges)]

    def partition_paths(self, prefix: str) -> list[str]:
        return [self.path(f"{prefix}-{p:05d}.arrow") for p in range(self.n_partitions)]

    def range_of(self, keys: np.ndarray) -> np.ndarray:
        return ((keys >> np.uint64(ROW_BITS)) // np.uint64(self.parts_per_range)).astype(np.int64)


# --- reading the parts --------------------------------------------------------------------


def _alive_rows(plan: Plan, ordinal: int) -> dict:
    """The alive rows of one part: keys, ids, exact keys, lengths, quality, signatures."""
    path = plan.parts[ordinal]
    names = set(pq.read_schema(path).names)
    has_keys = {S.TEXT_HASH, S.TEXT_CHARS, S.MINHASH} <= names
    wanted = [S.ID, S.DROP_REASON]
    wanted += [S.TEXT_HASH, S.TEXT_CHARS, S.MINHASH] if has_keys else [S.TEXT, S.LANG]
    if S.QUALITY_SCORE in names:
        wanted.append(S.QUALITY_SCORE)
    table = read_parquet(path, columns=wanted)
    rows = np.flatnonzero(np.asarray(pc.is_null(table[S.DROP_REASON]), dtype=bool))
    table = table.take(pa.array(rows))
    if has_keys and rows.size and table[S.TEXT_CHARS].null_count == rows.size:
        # the columns exist but dedup's stage was off (text_chars is set for every alive
        # row when it is on): compute the keys from the text instead
        has_keys = False
        extra = read_parquet(path, columns=[S.TEXT, S.LANG]).take(pa.array(rows))
        table = table.append_column(S.TEXT, extra[S.TEXT]).append_column(S.LANG, extra[S.LANG])
    num_perm = plan.cfg.near.num_perm
    if has_keys:
        hashes = table[S.TEXT_HASH].combine_chunks()
        chars = table[S.TEXT_CHARS].combine_chunks()
        sig_column = table[S.MINHASH].combine_chunks()
        present = np.asarray(sig_column.is_valid(), dtype=bool)
        values = np.asarray(sig_column.filter(pa.array(present)).flatten(), dtype=np.uint32)
        if values.size != present.sum() * num_perm:
            raise ValueError(
                f"{path}: minhash signatures are not {num_perm} values long "
                "(dedup.near.num_perm changed since the documents phase?)"
            )
        sigs = values.reshape(-1, num_perm)
    else:  # parts written without dedup's stage: compute the same keys from the text
        texts = table[S.TEXT].to_pylist()
        hash_list, all_sigs, present = document_keys(texts, table[S.LANG].to_pylist(), plan.cfg)
        hashes = pa.array(hash_list, pa.binary(16))
        chars = pc.utf8_length(table[S.TEXT].combine_chunks()).cast(pa.int32())
        sigs = all_sigs[present]
    quality = (
        table[S.QUALITY_SCORE].combine_chunks().cast(pa.float32())
        if S.QUALITY_SCORE in table.schema.names
        else pa.nulls(table.num_rows, pa.float32())
    )
    keys = (np.uint64(ordinal) << np.uint64(ROW_BITS)) | rows.astype(np.uint64)
    return {
        "key": keys,
        "id": table[S.ID].combine_chunks(),
        "text_hash": hashes,
        "chars": chars.cast(pa.int64()),
        "quality": quality,
        "sigs": sigs,
        "sig_present": present,
    }


def scan_task(plan: Plan, range_index: int) -> dict:
    """Round 1: read a range of parts, write exact records, attributes, signature store."""
    first = range_index * plan.parts_per_range
    ordinals = range(first, min(first + plan.parts_per_range, len(plan.parts)))
    pieces = [_alive_rows(plan, ordinal) for ordinal in ordinals]
    keys = np.concatenate([p["key"] for p in pieces]) if pieces else np.empty(0, np.uint64)
    ids = pa.concat_arrays([p["id"] for p in pieces]) if pieces else pa.array([], pa.string())
    hashes = (
        pa.concat_arrays([p["text_hash"] for p in pieces])
        if pieces
        else pa.array([], pa.binary(16))
    )
    chars = pa.concat_arrays([p["chars"] for p in pieces]) if pieces else pa.array([], pa.int64())
    quality = (
        pa.concat_arrays([p["quality"] for p in pieces]) if pieces else pa.array([], pa.float32())
    )
    num_perm = plan.cfg.near.num_perm
    sigs = (
        np.concatenate([p["sigs"] for p in pieces])
        if pieces
        else np.empty((0, num_perm), np.uint32)
    )
    present = np.concatenate([p["sig_present"] for p in pieces]) if pieces else np.empty(0, bool)
    n = plan.n_partitions
    attributes = {"key": keys, "quality": quality, "chars": chars, "id": ids}
    result = {"alive": int(len(keys)), "with_text_hash": 0, "with_signature": int(present.sum())}
    if plan.cfg.exact:
        has_hash = np.asarray(hashes.is_valid(), dtype=bool)
        mask = pa.array(has_hash)
        hash_bytes = np.frombuffer(
            b"".join(h[:8] for h in hashes.filter(mask).to_pylist()), dtype="<u8"
        ).astype(np.uint64)
        exact = {name: _take(values, has_hash) for name, values in attributes.items()}
        exact["text_hash"] = hashes.filter(mask)
        dest = (hash_bytes % np.uint64(n)).astype(np.int64)
        write_partitioned(plan.path(f"exact-{range_index:05d}.arrow"), exact, dest, n)
        result["with_text_hash"] = int(has_hash.sum())
    if plan.cfg.near.enabled:
        signed = {name: _take(values, present) for name, values in attributes.items()}
        write_partitioned(
            plan.path(f"attrs-{range_index:05d}.arrow"),
            signed,
            node_partition(signed["key"], n),
            n,
        )
        np.save(plan.path(f"store-keys-{range_index:05d}.npy"), keys[present])
        np.save(plan.path(f"store-sigs-{range_index:05d}.npy"), sigs)
    return result


def _take(values, mask: np.ndarray):
    if isinstance(values, np.ndarray):
        return values[mask]
    return values.filter(pa.array(mask))


# --- choosing survivors -----------------------------------------------------------------


def _survivor_sort_keys(criteria: list[str]) -> list[tuple[str, str]]:
    """Arrow sort keys after the group column: the first row of a group is kept."""
    keys = []
    for criterion in criteria:
        if criterion == "quality":
            keys.append(("quality", "descending"))  # null (no score) is -inf: last
        elif criterion == "length":
            keys.append(("chars", "descending"))
        elif criterion == "id":
            keys.append(("id", "ascending"))
        elif criterion == "first":
            keys.append(("key", "ascending"))
    keys.append(("key", "ascending"))  # input order breaks the last tie: a total order
    return keys


def _decide_groups(table: pa.Table, group: str, criteria: list[str], reason: str):
    """Sort members by (group, survivor criteria), keep each group's first row, and return
    the others as drop records, plus a histogram of group sizes and the group count."""
    quality = pc.fill_null(table["quality"], float("-inf"))  # no score: last
    table = table.set_column(table.schema.get_field_index("quality"), "quality", quality)
    sort_keys = [(group, "ascending"), *_survivor_sort_keys(criteria)]
    table = table.take(pc.sort_indices(table, sort_keys=sort_keys)).combine_chunks()
    n = table.num_rows
    first_of_group = np.ones(n, dtype=bool)
    if n > 1:
        values = table[group].chunk(0)
        same = pc.equal(values.slice(1), values.slice(0, n - 1))
        first_of_group[1:] = ~np.asarray(same, dtype=bool)
    starts = np.flatnonzero(first_of_group)
    sizes = np.diff(np.append(starts, n))
    group_of_row = np.cumsum(first_of_group) - 1
    dropped = ~first_of_group  # every row after its group's first: groups of >= 2
    ids = table["id"].chunk(0) if n else pa.array([], pa.string())
    survivor_of_row = pa.array(starts[group_of_row]) if n else pa.array([], pa.int64())
    keys = column(table, "key", np.uint64)
    drops = {
        "key": keys[dropped],
        "survivor": keys[starts[group_of_row]][dropped] if n else keys,
        "cluster_id": ids.take(survivor_of_row).filter(pa.array(dropped)),
        "cluster_size": sizes[group_of_row][dropped].astype(np.int32),
        "reason": pa.array([reason] * int(dropped.sum()), pa.string()),
    }
    histogram = Counter(size_bin(int(s)) for s in sizes[sizes >= 2])
    return drops, histogram, int((sizes >= 2).sum())


def size_bin(size: int) -> str:
    """Cluster-size histogram bin: "2", "3-4", "5-8", "9-16", ... (powers of two)."""
    if size <= 2:
        return str(size)
    upper = 1 << math.ceil(math.log2(size))
    return f"{upper // 2 + 1}-{upper}"


def exact_task(plan: Plan, partition: int) -> dict:
    """Round 2: documents with equal text hash -> all but the survivor dropped."""
    table = read_partition(plan.range_paths("exact"), partition)
    drops, histogram, clusters = _decide_groups(
        table, "text_hash", plan.cfg.survivor, S.Reason.EXACT_DUPLICATE
    )
    write_partitioned(
        plan.path(f"exactdrops-{partition:05d}.arrow"),
        drops,
        plan.range_of(drops["key"]),
        plan.n_ranges,
    )
    if plan.resolve_exact:  # the survivor may be near-dropped later: resolve (round 7)
        write_partitioned(
            plan.path(f"exactrefs-{partition:05d}.arrow"),
            drops,
            node_partition(drops["survivor"], plan.n_partitions),
            plan.n_partitions,
        )
    elif plan.resolve_pre:  # final already: by key, for the pass before extraction's drops
        _write_final_by_key(plan, "exactfinal", partition, drops["key"], drops["cluster_id"])
    return {"removed": int(len(drops["key"])), "clusters": clusters, "histogram": dict(histogram)}


# --- LSH candidates -----------------------------------------------------------------------


def bands_task(plan: Plan, range_index: int) -> dict:
    """Round 3: one (band key, document key) record per band of every signature left."""
    keys = np.load(plan.path(f"store-keys-{range_index:05d}.npy"))
    sigs = np.load(plan.path(f"store-sigs-{range_index:05d}.npy"), mmap_mode="r")
    keep = np.ones(len(keys), dtype=bool)
    if plan.cfg.exact:
        drops = read_partition(plan.partition_paths("exactdrops"), range_index)
        if drops is not None and drops.num_rows:
            keep = ~np.isin(keys, column(drops, "key", np.uint64))
    band = band_keys(np.asarray(sigs[keep]), plan.bands, plan.rows)  # (docs, bands)
    nodes = np.repeat(keys[keep], plan.bands)
    band = band.reshape(-1)
    dest = (band % np.uint64(plan.n_partitions)).astype(np.int64)
    write_partitioned(
        plan.path(f"bands-{range_index:05d}.arrow"),
        {"band": band, "node": nodes},
        dest,
        plan.n_partitions,
    )
    return {"documents": int(keep.sum()), "records": int(len(band))}


def gather_signatures(plan: Plan, nodes: np.ndarray) -> np.ndarray:
    """Signatures of `nodes` from the memory-mapped stores of their ranges."""
    out = np.empty((len(nodes), plan.cfg.near.num_perm), dtype=np.uint32)
    ranges = plan.range_of(nodes)
    for range_index in np.unique(ranges).tolist():
        where = np.flatnonzero(ranges == range_index)
        keys = np.load(plan.path(f"store-keys-{range_index:05d}.npy"), mmap_mode="r")
        sigs = np.load(plan.path(f"store-sigs-{range_index:05d}.npy"), mmap_mode="r")
        positions = np.searchsorted(keys, nodes[where])
        order = np.argsort(positions, kind="stable")  # read the store front to back
        out[where[order]] = sigs[positions[order]]
    return out


def candidates_task(plan: Plan, partition: int) -> dict:
    """Round 4: buckets of a band key -> star pairs -> verified edges."""
    table = read_partition(plan.range_paths("bands"), partition)
    band = column(table, "band", np.uint64)
    node = column(table, "node", np.uint64)
    order = np.lexsort((node, band))
    band, node = band[order], node[order]
    new_bucket = np.concatenate([[True], band[1:] != band[:-1]]) if len(band) else np.empty(0, bool)
    bucket_start = np.flatnonzero(new_bucket)
    bucket_of = np.cumsum(new_bucket) - 1
    first_node = node[bucket_start][bucket_of] if len(band) else node
    is_pair = ~new_bucket & (node != first_node)
    u, v = first_node[is_pair], node[is_pair]  # u < v: nodes sorted within a bucket
    pair_key = np.stack([u, v], axis=1)
    unique_pairs, inverse = (
        np.unique(pair_key, axis=0, return_inverse=True)
        if len(u)
        else (np.empty((0, 2), np.uint64), np.empty(0, np.int64))
    )
    inverse = np.asarray(inverse).reshape(-1)
    keep = np.ones(len(unique_pairs), dtype=bool)
    if plan.cfg.near.verify and len(unique_pairs):
        similarity = estimated_jaccard(
            gather_signatures(plan, unique_pairs[:, 0]), gather_signatures(plan, unique_pairs[:, 1])
        )
        keep = similarity >= plan.cfg.near.threshold
    edges = unique_pairs[keep]
    write_edges_both_ways(
        plan.path(f"edges-{partition:05d}.arrow"), edges[:, 0], edges[:, 1], plan.n_partitions
    )
    return {
        "band_records": int(len(band)),
        "bucket_pairs": int(len(u)),  # one per (bucket, non-first member): deterministic
        "bucket_pairs_verified": int(keep[inverse].sum()) if len(u) else 0,
    }


# --- survivors of near-duplicate clusters ---------------------------------------------------


def _lookup(attrs: pa.Table, keys: np.ndarray) -> pa.Table:
    """Rows of `attrs` (key, quality, chars, id) for `keys` (every key is present)."""
    attr_keys = column(attrs, "key", np.uint64)
    order = np.argsort(attr_keys, kind="stable")
    positions = order[np.searchsorted(attr_keys[order], keys)]
    return attrs.take(pa.array(positions))


def members_task(plan: Plan, partition: int, member_files: list[str]) -> dict:
    """Round 6a: (member, root) records + the member's attributes, routed to the root."""
    members = read_partition(member_files, partition)
    member = column(members, "x", np.uint64) if members is not None else np.empty(0, np.uint64)
    root = column(members, "y", np.uint64) if members is not None else np.empty(0, np.uint64)
    attrs = read_partition(plan.range_paths("attrs"), partition)
    found = _lookup(attrs, member)
    write_partitioned(
        plan.path(f"members-{partition:05d}.arrow"),
        {
            "root": root,
            "key": member,
            "quality": found["quality"].combine_chunks(),
            "chars": found["chars"].combine_chunks(),
            "id": found["id"].combine_chunks(),
        },
        node_partition(root, plan.n_partitions),
        plan.n_partitions,
    )
    return {"members": int(len(member))}


def survivors_task(plan: Plan, partition: int) -> dict:
    """Round 6b: each cluster (root + members) keeps its best document."""
    members = read_partition(plan.partition_paths("members"), partition)
    roots = np.unique(column(members, "root", np.uint64))
    attrs = read_partition(plan.range_paths("attrs"), partition)
    root_rows = _lookup(attrs, roots)
    root_table = pa.table(
        {
            "root": roots,
            "key": roots,
            "quality": root_rows["quality"].combine_chunks(),
            "chars": root_rows["chars"].combine_chunks(),
            "id": root_rows["id"].combine_chunks(),
        }
    )
    table = pa.concat_tables([members.cast(root_table.schema), root_table])
    drops, histogram, clusters = _decide_groups(
        table, "root", plan.cfg.survivor, S.Reason.NEAR_DUPLICATE
    )
    write_partitioned(
        plan.path(f"neardrops-{partition:05d}.arrow"),
        drops,
        plan.range_of(drops["key"]),
        plan.n_ranges,
    )
    if plan.resolve_exact or plan.resolve_pre:  # by the dropped key: drops naming it (7)
        _write_final_by_key(plan, "nearfinal", partition, drops["key"], drops["cluster_id"])
    return {"removed": int(len(drops["key"])), "clusters": clusters, "histogram": dict(histogram)}


# --- cluster ids that name the kept document ------------------------------------------------


def resolve_task(plan: Plan, partition: int) -> dict:
    """Round 7: an exact drop names its group's survivor S; when S was itself near-dropped,
    name the document kept in S's near cluster instead (a near survivor is never dropped,
    so one hop ends every chain). The exact drops come routed by S, the near drops by
    their own key: a join inside the partition."""
    refs = read_partition(plan.partition_paths("exactrefs"), partition)
    near = read_partition(plan.partition_paths("nearfinal"), partition)
    found, cluster_id = _resolve(refs, near)
    keys = column(refs, "key", np.uint64)
    if plan.resolve_pre:  # final now: by key, for the pass before extraction's drops
        _write_final_by_key(plan, "exactfinal", partition, keys, cluster_id)
    write_partitioned(
        plan.path(f"exactresolved-{partition:05d}.arrow"),
        {
            "key": keys,
            "survivor": column(refs, "survivor", np.uint64),
            "cluster_id": cluster_id,
            "cluster_size": refs["cluster_size"].combine_chunks(),
            "reason": refs["reason"].combine_chunks(),
        },
        plan.range_of(keys),
        plan.n_ranges,
    )
    return {"resolved": int(found.sum())}


def _write_final_by_key(plan: Plan, prefix: str, partition: int, keys, cluster_ids) -> None:
    """(dropped key, id of the document finally kept), routed by the dropped key."""
    write_partitioned(
        plan.path(f"{prefix}-{partition:05d}.arrow"),
        {"key": np.asarray(keys, np.uint64), "cluster_id": cluster_ids},
        node_partition(np.asarray(keys, np.uint64), plan.n_partitions),
        plan.n_partitions,
    )


def _resolve(refs: pa.Table, finals: pa.Table) -> tuple[np.ndarray, pa.Array]:
    """For each ref (a drop naming `survivor`): was the survivor dropped (in `finals`:
    key -> final cluster id)? Returns (found mask, cluster ids with the found ones
    replaced by the survivor's final cluster id)."""
    survivor = column(refs, "survivor", np.uint64)
    cluster_id = refs["cluster_id"].combine_chunks()
    final_keys = column(finals, "key", np.uint64)
    found = np.zeros(len(survivor), dtype=bool)
    if len(survivor) and len(final_keys):
        order = np.argsort(final_keys, kind="stable")
        sorted_keys = final_keys[order]
        position = np.minimum(np.searchsorted(sorted_keys, survivor), len(sorted_keys) - 1)
        found = sorted_keys[position] == survivor
        final_ids = finals["cluster_id"].combine_chunks().take(pa.array(order[position]))
        cluster_id = pc.if_else(pa.array(found), final_ids, cluster_id)
    return found, cluster_id


def pre_refs_task(plan: Plan, group: int) -> dict:
    """Round 7b: the pass before extraction's drops of one file group, as (key, survivor
    key) in this step's keys, routed by the survivor's key."""
    ordinal = {part_id: i for i, part_id in enumerate(plan.part_ids)}
    drops = read_parquet(plan.pre_drops[group])

    def keys(files: str, chunks: str, rows: str) -> np.ndarray:
        pairs = zip(drops[files].to_pylist(), drops[chunks].to_pylist(), strict=True)
        ordinals = np.array([ordinal[pair] for pair in pairs], dtype=np.uint64)
        return (ordinals << np.uint64(ROW_BITS)) | column(drops, rows, np.uint64)

    survivor = keys("survivor_file", "survivor_chunk", "survivor_row")
    write_partitioned(
        plan.path(f"prerefs-{group:05d}.arrow"),
        {
            "key": keys("file_index", "chunk_index", "row"),
            "survivor": survivor,
            "cluster_id": drops[S.DUP_CLUSTER_ID].combine_chunks(),
            "cluster_size": drops[S.DUP_CLUSTER_SIZE].combine_chunks(),
            "reason": drops[S.DROP_REASON].combine_chunks(),
        },
        node_partition(survivor, plan.n_partitions),
        plan.n_partitions,
    )
    return {"refs": drops.num_rows}


def resolve_pre_task(plan: Plan, partition: int) -> dict:
    """Round 7c: a drop of the pass before extraction whose survivor this step dropped
    names the document finally kept instead (exact drops' ids are resolved already)."""
    refs = read_partition(
        [plan.path(f"prerefs-{g:05d}.arrow") for g in range(len(plan.pre_drops))], partition
    )
    finals = [
        read_partition(plan.partition_paths(prefix), partition)
        for prefix, on in (("exactfinal", plan.cfg.exact), ("nearfinal", plan.cfg.near.enabled))
        if on
    ]
    found, cluster_id = _resolve(refs, pa.concat_tables(finals))
    mask = pa.array(found)
    keys = column(refs, "key", np.uint64)[found]
    write_partitioned(
        plan.path(f"preresolved-{partition:05d}.arrow"),
        {
            "key": keys,
            "survivor": column(refs, "survivor", np.uint64)[found],
            "cluster_id": cluster_id.filter(mask),
            "cluster_size": refs["cluster_size"].combine_chunks().filter(mask),
            "reason": refs["reason"].combine_chunks().filter(mask),
        },
        plan.range_of(keys),
        plan.n_ranges,
    )
    return {"resolved": int(found.sum())}


# --- the side table -----------------------------------------------------------------------

DROPS_SCHEMA = pa.schema(S.DEDUP_DROP_FIELDS)


def finalize_task(plan: Plan, range_index: int) -> dict:
    """Round 8: the range's exact and near drops -> drops-RRRRR.parquet, sorted by key."""
    tables = []
    if plan.cfg.exact:
        exact = "exactresolved" if plan.resolve_exact else "exactdrops"
        tables.append(read_partition(plan.partition_paths(exact), range_index))
    if plan.cfg.near.enabled:
        tables.append(read_partition(plan.partition_paths("neardrops"), range_index))
    removed = sum(t.num_rows for t in tables if t is not None)
    if plan.resolve_pre:  # rows dropped before extraction, their cluster ids resolved here
        tables.append(read_partition(plan.partition_paths("preresolved"), range_index))
    tables = [t for t in tables if t is not None and t.num_rows]
    if tables:
        drops = pa.concat_tables(tables)
        keys = column(drops, "key", np.uint64)
        order = np.argsort(keys, kind="stable")
        drops, keys = drops.take(pa.array(order)), keys[order]
    else:
        drops, keys = None, np.empty(0, np.uint64)
    ordinals = (keys >> np.uint64(ROW_BITS)).astype(np.int64)
    part_ids = np.array(plan.part_ids, dtype=np.int64).reshape(-1, 2)
    table = pa.table(
        {
            "file_index": part_ids[ordinals, 0].astype(np.int32),
            "chunk_index": part_ids[ordinals, 1].astype(np.int32),
            "row": (keys & np.uint64(0xFFFFFFFF)).astype(np.int32),
            S.DROP_REASON: drops["reason"] if drops is not None else pa.array([], pa.string()),
            S.DUP_CLUSTER_ID: drops["cluster_id"]
            if drops is not None
            else pa.array([], pa.string()),
            S.DUP_CLUSTER_SIZE: drops["cluster_size"]
            if drops is not None
            else pa.array([], pa.int32()),
        },
        schema=DROPS_SCHEMA,
    )
    pq.write_table(table, Path(plan.tmp) / S.drops_name(range_index), compression="zstd")
    return {"drops": removed}


# --- the step -----------------------------------------------------------------------------


@dataclass
class DedupResult:
    stats: dict  # deterministic: goes to stats.json
    timings: dict = field(default_factory=dict)  # seconds and memory: timings.json
    skipped: bool = False  # done.json was already there


def part_ids_from_names(parts: list[Path]) -> list[tuple[int, int]]:
    """(file_index, chunk_index) from part names FFFFF-CCCCC.parquet."""
    ids = []
    for part in parts:
        file_index, chunk_index = Path(part).stem.split("-")
        ids.append((int(file_index), int(chunk_index)))
    return ids


def run_dedup(
    parts_dir: str | Path,
    cfg: DedupConfig,
    out_dir: str | Path | None = None,
    *,
    executor=None,
    partitions: int = 0,
    docs_per_range: int = DOCS_PER_RANGE,
    pre_dir: str | Path | None = None,
    log=print,
) -> DedupResult:
    """The global dedup step over every part in `parts_dir` (see the module docstring).

    `out_dir` (default: `parts_dir/../dedup`) receives drops-*.parquet and done.json.
    `executor`: dedup.executor.RayExecutor() in the pipeline; SerialExecutor() (default)
    runs every task in this process. `partitions`: 0 = automatic (enough that a partition
    holds ~2 M band records, at least one per worker). `pre_dir`: the finished pass before
    extraction (dedup/pre.py), whose drops' cluster ids are resolved through this step."""
    parts_dir = Path(parts_dir)
    out = Path(out_dir) if out_dir is not None else parts_dir.parent / DEDUP_DIR
    done = out / DONE_FILE
    if done.exists():
        return DedupResult(stats=json.loads(done.read_text())["stats"], skipped=True)
    executor = executor or SerialExecutor()
    bands, rows = lsh_params(cfg.near) if cfg.near.enabled else (0, 0)
    parts = finished_files(parts_dir, "*.parquet")
    total_rows = sum(pq.read_metadata(p).num_rows for p in parts)
    rows_per_part = max(1, total_rows // max(1, len(parts)))
    parts_per_range = max(1, docs_per_range // rows_per_part)
    if not partitions:
        records = total_rows * max(1, bands)
        partitions = max(executor.workers, math.ceil(records / BAND_RECORDS_PER_PARTITION))
    tmp = out / "tmp"
    shutil.rmtree(out, ignore_errors=True)
    tmp.mkdir(parents=True)
    plan = Plan(
        cfg=cfg,
        parts=[str(p) for p in parts],
        part_ids=part_ids_from_names(parts),
        parts_per_range=parts_per_range,
        n_ranges=max(1, math.ceil(len(parts) / parts_per_range)),
        n_partitions=partitions,
        bands=bands,
        rows=rows,
        tmp=str(tmp),
        out=str(out),
        pre_drops=[str(p) for p in finished_files(pre_dir, "drops-*.parquet")] if pre_dir else [],
    )
    timings: dict = {"partitions": plan.n_partitions, "ranges": plan.n_ranges, "rounds": {}}
    ranges = [(plan, r) for r in range(plan.n_ranges)]
    by_partition = [(plan, p) for p in range(plan.n_partitions)]

    def run_round(name: str, fn, calls) -> list[dict]:
        start = time.perf_counter()
        results = executor.map(fn, calls)
        timings["rounds"][name] = round_timing(time.perf_counter() - start, results)
        crash_point(f"dedup:round:{name}")  # resume tests: kill -9 between two rounds
        return results

    log(
        f"  dedup: {len(parts)} parts, {total_rows:,} rows, {plan.n_ranges} ranges, "
        f"{plan.n_partitions} partitions"
        + (f", LSH {bands} bands x {rows} rows" if cfg.near.enabled else "")
    )
    scanned = run_round("scan", scan_task, ranges)
    stats: dict = {
        "docs_in": sum(r["alive"] for r in scanned),
        "exact": {"enabled": cfg.exact},
        "near": {"enabled": cfg.near.enabled},
    }
    if cfg.exact:
        results = run_round("exact", exact_task, by_partition)
        stats["exact"].update(_cluster_stats(results))
        stats["exact"]["docs_with_text"] = sum(r["with_text_hash"] for r in scanned)
    if cfg.near.enabled:
        banded = run_round("bands", bands_task, ranges)
        candidates = run_round("candidates", candidates_task, by_partition)
        edge_files = plan.partition_paths("edges")
        start = time.perf_counter()
        member_files, cc_stats = connected_components(
            edge_files, tmp / "cc", plan.n_partitions, executor
        )
        tasks = cc_stats.pop("tasks")
        timings["rounds"]["components"] = round_timing(time.perf_counter() - start, tasks)
        crash_point("dedup:round:components")
        run_round("members", members_task, [(plan, p, member_files) for p in range(partitions)])
        survivors = run_round("survivors", survivors_task, by_partition)
        if plan.resolve_exact:
            resolved = run_round("resolve", resolve_task, by_partition)
            stats["exact"]["cluster_ids_resolved"] = sum(r["resolved"] for r in resolved)
        stats["near"].update(
            {
                "bands": bands,
                "rows": rows,
                "threshold": cfg.near.threshold,
                "verify": cfg.near.verify,
                "docs_with_signature": sum(r["with_signature"] for r in scanned),
                "docs_banded": sum(r["documents"] for r in banded),
                "bucket_pairs": sum(r["bucket_pairs"] for r in candidates),
                "bucket_pairs_verified": sum(r["bucket_pairs_verified"] for r in candidates),
                "components_rounds": cc_stats["rounds"],
                **_cluster_stats(survivors),
            }
        )
    if plan.resolve_pre:
        groups = [(plan, g) for g in range(len(plan.pre_drops))]
        run_round("pre_refs", pre_refs_task, groups)
        resolved = run_round("resolve_pre", resolve_pre_task, by_partition)
        stats["pre_extraction_cluster_ids_resolved"] = sum(r["resolved"] for r in resolved)
    finals = run_round("finalize", finalize_task, ranges)
    removed = sum(r["drops"] for r in finals)
    stats["removed"] = removed
    stats["docs_out"] = stats["docs_in"] - removed
    for r in range(plan.n_ranges):
        name = S.drops_name(r)
        (tmp / name).replace(out / name)
    index = {
        "stats": stats,
        "ranges": plan.n_ranges,
        "parts": [Path(p).name for p in plan.parts],
        "parts_per_range": plan.parts_per_range,
    }
    shutil.rmtree(tmp)
    done_tmp = out / (DONE_FILE + ".tmp")
    done_tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    done_tmp.replace(done)
    return DedupResult(stats=stats, timings=timings)


def round_timing(seconds: float, results: list[dict]) -> dict:
    """Wall time of a round and the largest figures of its tasks (dedup/executor.py)."""
    return {
        "seconds": seconds,
        "tasks": len(results),
        "max_task_seconds": max((r["seconds"] for r in results), default=0.0),
        "max_task_rss_bytes": max((r["max_rss_bytes"] for r in results), default=0),
        "max_task_rss_growth_bytes": max(
            (r["max_rss_bytes"] - r["rss_start_bytes"] for r in results), default=0
        ),
        "min_task_rss_start_bytes": min((r["rss_start_bytes"] for r in results), default=0),
        "max_task_rss_start_bytes": max((r["rss_start_bytes"] for r in results), default=0),
    }


def _cluster_stats(results: list[dict]) -> dict:
    histogram: Counter = Counter()
    for r in results:
        histogram.update(r["histogram"])
    bins = sorted(histogram, key=lambda b: int(b.split("-")[0]))
    return {
        "removed": sum(r["removed"] for r in results),
        "clusters": sum(r["clusters"] for r in results),
        "cluster_size_histogram": {b: histogram[b] for b in bins},
    }


# --- applying the decisions in the write phase --------------------------------------------


class DedupDecisions:
    """The side table, read range by range as the write phase walks the parts in order
    (memory: one range's drops)."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        index = json.loads((self.dir / DONE_FILE).read_text())
        self.stats = index["stats"]
        self.parts_per_range = index["parts_per_range"]
        self.ordinal = {name: i for i, name in enumerate(index["parts"])}
        self._range = -1
        self._by_part: dict[tuple[int, int], pa.Table] = {}

    def for_part(self, file_index: int, chunk_index: int) -> pa.Table:
        """Drops (row, drop_reason, dup_cluster_id, dup_cluster_size) of one part."""
        ordinal = self.ordinal.get(S.part_name(file_index, chunk_index))
        if ordinal is None:
            return DROPS_SCHEMA.empty_table()
        range_index = ordinal // self.parts_per_range
        if range_index != self._range:
            table = read_parquet(self.dir / S.drops_name(range_index))
            # rows are sorted by key, i.e. by (file, chunk, row): one slice per part
            part = table["file_index"].to_numpy().astype(np.int64) << 32
            part |= table["chunk_index"].to_numpy().astype(np.int64)
            new_part = np.ones(len(part), dtype=bool)
            new_part[1:] = part[1:] != part[:-1]
            starts = np.flatnonzero(new_part)
            ends = np.append(starts[1:], len(part))[: len(starts)]
            self._by_part = {
                (int(part[a] >> 32), int(part[a] & 0xFFFFFFFF)): table.slice(a, b - a)
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
            }
            self._range = range_index
        return self._by_part.get((file_index, chunk_index), DROPS_SCHEMA.empty_table())

    def apply(self, docs: pa.Table, file_index: int, chunk_index: int) -> pa.Table:
        """The part's rows with dedup's drops applied and the two dup_* columns added."""
        return apply_drops(docs, self.for_part(file_index, chunk_index))


def apply_drops(docs: pa.Table, drops: pa.Table) -> pa.Table:
    """Set drop_reason/drop_stage (first reason wins) and dup_cluster_id/size on `docs`."""
    n = docs.num_rows
    rows = drops["row"].to_numpy() if drops.num_rows else np.empty(0, np.int64)
    cluster_id = np.full(n, None, dtype=object)
    cluster_size = np.zeros(n, dtype=np.int32)
    has = np.zeros(n, dtype=bool)
    cluster_id[rows] = drops[S.DUP_CLUSTER_ID].to_pylist()
    cluster_size[rows] = drops[S.DUP_CLUSTER_SIZE].to_numpy() if drops.num_rows else []
    has[rows] = True
    reasons = np.full(n, None, dtype=object)
    reasons[rows] = drops[S.DROP_REASON].to_pylist()
    for reason in (S.Reason.EXACT_DUPLICATE, S.Reason.NEAR_DUPLICATE):
        docs = mark_dropped(docs, pa.array(reasons == reason), reason, DROP_STAGE)
    docs = docs.append_column(S.DUP_CLUSTER_ID, pa.array(cluster_id.tolist(), pa.string()))
    return docs.append_column(S.DUP_CLUSTER_SIZE, pa.array(cluster_size, pa.int32(), mask=~has))


# --- what the runner calls ------------------------------------------------------------------


def dedup_phase(cfg, work_dir: str | Path, log=print) -> DedupResult | None:
    """The pipeline's dedup barrier: run_dedup over the run's parts into
    `work_dir/dedup`, as Ray tasks (ray.init() done), or in this process for runs of at
    most IN_DRIVER_MAX_ROWS rows (same decisions either way). None when dedup is off."""
    if not cfg.dedup.enabled:
        return None
    from dedup.executor import RayExecutor

    work_dir = Path(work_dir)
    parts = finished_files(work_dir / "docs", "*.parquet")
    rows = sum(pq.read_metadata(p).num_rows for p in parts)
    executor = SerialExecutor() if rows <= IN_DRIVER_MAX_ROWS else RayExecutor()
    return run_dedup(
        work_dir / "docs",
        cfg.dedup,
        work_dir / DEDUP_DIR,
        executor=executor,
        partitions=cfg.engine.dedup_partitions,
        pre_dir=work_dir / PRE_DIR if pre_enabled(cfg) else None,
        log=log,
    )


def run_decisions(cfg, work_dir: str | Path) -> DedupDecisions | None:
    """The finished dedup step's decisions for the write phase; None when dedup is off."""
    return DedupDecisions(Path(work_dir) / DEDUP_DIR) if cfg.dedup.enabled else None


def apply_decisions(
    docs: pa.Table, decisions: DedupDecisions | None, file_index: int, chunk_index: int
) -> pa.Table:
    """A part with dedup's drops applied; without dedup, the dup_* columns are null."""
    if decisions is None:
        return apply_drops(docs, DROPS_SCHEMA.empty_table())
    return decisions.apply(docs, file_index, chunk_index)
