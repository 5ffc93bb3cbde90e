"""Exact dedup BEFORE extraction: repeated pages never reach the extractor.

Extraction costs ~10 ms a page (trafilatura on realpages, docs/BENCH.md), an order of
magnitude above any other step, so a page whose bytes were already seen should skip it.
This is a global pass that runs after the chunk scan and before the documents phase
(`dedup.pre_extraction`, default `[payload_digest]`):

- **keys** (one Ray task per run of `CHUNKS_PER_TASK` consecutive chunks): `read_chunk`
  gives the records exactly as the documents phase will see them (same rows, same row
  numbers); every row still alive after reading gets one key per configured kind:
  `payload_digest` = SHA-1 of the HTTP body as the extractor would get it (chunked
  transfer coding and gzip/deflate/br content coding undone by pipeline/warc.py) plus the
  HTTP `charset=` parameter (the same bytes under another declared charset decode to
  another text); `url` = SHA-1 of the normalised target URI. We compute the digest
  ourselves: the WARC-Payload-Digest header is of the *encoded* body (two captures of one
  page, one gzipped by the server, differ) and is missing or wrong in some crawls.
  Keys are hash-partitioned (first 8 bytes of the SHA-1) into files (dedup/shuffle.py).
- **decide** (one task per partition): records with the same (kind, key) form a group;
  the survivor (below) is kept, the others are dropped
  (`payload_duplicate` / `url_duplicate`, `dup_cluster_id` = the kept record's id,
  `dup_cluster_size` = the group's size). Drops are routed to file groups.
- **finalize** (one task per file group): one decision per record (a record dropped by
  two kinds keeps the first kind of `dedup.pre_extraction`), sorted by (file, chunk,
  row) -> `_work/dedup_pre/drops-GGGGG.parquet`; `done.json` (stats, grouping) last.

The documents phase marks the dropped rows before its first stage (drop_stage
`dedup_pre`), so they are never extracted, and the write phase fills their dup_* columns;
they are rows like any other (records read == kept + rejected). Each drop also records
where its survivor is, so the dedup barrier can rename it when it drops that survivor
(dedup/barrier.py, round 7): `dup_cluster_id` names a document in the shards. A rerun
after done.json skips the pass; a crash inside it reruns it from scratch (tmp wiped).
Decisions depend only on the input, never on the number of tasks or workers.

Survivor rule: `dedup.survivor` as far as it can be known before extraction. Equal
payloads make equal texts, so quality and length tie and the first of `id` / `first` in
the list decides (default [quality, length, id]: the smallest WARC-Record-ID, then input
order), exactly the record the text-level exact pass would keep: with the default keys
the shards are byte-identical with the pass on or off (tests/dedup/test_pre.py), it only
saves the extraction. For `url` it keeps that record whatever the other captures hold.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dedup.executor import SerialExecutor
from dedup.shuffle import column, read_partition, write_partitioned
from pipeline import schema as S
from pipeline.decode import http_charset
from pipeline.io import crash_point, read_parquet
from pipeline.stage import mark_dropped
from pipeline.warc import Chunk, read_chunk

PRE_DIR = "dedup_pre"  # under the run's _work/
DONE_FILE = "done.json"
DROP_STAGE = "dedup_pre"
REASONS = {"payload_digest": S.Reason.PAYLOAD_DUPLICATE, "url": S.Reason.URL_DUPLICATE}
# Sizing: a keys task reads up to 16 x 200 records (~1-2 s of reading); a
# key record is ~60 bytes, so 4 M per partition keep a decide task near 500 MB at most;
# a file group holds the drops of ~100,000 records, which each documents-phase worker
# reads (cached) for its chunks.
CHUNKS_PER_TASK = 16
KEYS_PER_PARTITION = 4_000_000
RECORDS_PER_GROUP = 100_000
DEFAULT_PORTS = {"http": 80, "https": 443}

DROPS_SCHEMA = pa.schema(
    [
        *S.DEDUP_DROP_FIELDS,
        # where the survivor is: the dedup barrier follows it (its cluster id is resolved
        # to the document finally kept when a later pass drops the survivor)
        ("survivor_file", pa.int32()),
        ("survivor_chunk", pa.int32()),
        ("survivor_row", pa.int32()),
    ]
)


# --- the keys -------------------------------------------------------------------------------


def payload_key(payload: bytes, content_type: str | None) -> bytes:
    """SHA-1 of the decoded body and its declared HTTP charset (lowercased)."""
    digest = hashlib.sha1(payload)
    charset = (http_charset(content_type) or "").strip().lower()
    digest.update(b"\x00charset=" + charset.encode("ascii", "replace"))
    return digest.digest()


def normalize_url(url: str) -> str:
    """Scheme and host lowercased, default port, userinfo and fragment dropped, empty path
    -> "/". Query strings stay as they are (their order can matter to the server)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is not a number: compare the URI as written
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_key(url: str) -> bytes:
    return hashlib.sha1(normalize_url(url).encode("utf-8", "surrogatepass")).digest()


# --- the pass -------------------------------------------------------------------------------


@dataclass
class PrePlan:
    """What every task needs (small: numbers and paths; chunks go to their own task)."""

    kinds: list[str]
    by_id: bool  # survivor: smallest record id first (else input order only)
    max_payload_bytes: int
    n_tasks: int
    n_partitions: int
    n_files: int
    n_groups: int
    tmp: str

    def path(self, name: str) -> str:
        return str(Path(self.tmp) / name)

    def paths(self, prefix: str, n: int) -> list[str]:
        return [self.path(f"{prefix}-{i:05d}.arrow") for i in range(n)]


def group_of(file_index, n_files: int, n_groups: int):
    """File group of a file index (contiguous runs of files; works on numpy arrays too)."""
    return file_index * n_groups // n_files


def keys_task(plan: PrePlan, task_index: int, chunks: list[dict]) -> dict:
    """Round 1: read a run of chunks; one key record per (alive row, kind), partitioned."""
    kinds, keys, files, chunk_ids, rows, ids = [], [], [], [], [], []
    checked = 0
    for chunk in map(lambda c: Chunk(**c), chunks):
        raw = read_chunk(chunk, plan.max_payload_bytes)
        alive = pc.and_(pc.is_null(raw[S.DROP_REASON]), pc.is_valid(raw[S.PAYLOAD]))
        where = np.flatnonzero(np.asarray(alive, dtype=bool))
        if not where.size:
            continue
        checked += int(where.size)
        table = raw.take(pa.array(where))
        payloads = table[S.PAYLOAD].to_pylist()
        content_types = table[S.CONTENT_TYPE].to_pylist()
        urls = table[S.URL].to_pylist()
        row_ids = table[S.ID].to_pylist()
        for i, row in enumerate(where.tolist()):
            for kind_index, kind in enumerate(plan.kinds):
                if kind == "payload_digest":
                    key = payload_key(payloads[i], content_types[i])
                elif urls[i]:
                    key = url_key(urls[i])
                else:
                    continue  # no target URI: nothing to compare
                kinds.append(kind_index)
                keys.append(key)
                files.append(chunk.file_index)
                chunk_ids.append(chunk.chunk_index)
                rows.append(row)
                ids.append(row_ids[i])
    key_array = pa.array(keys, pa.binary(20))
    first8 = np.frombuffer(b"".join(k[:8] for k in keys), dtype="<u8").astype(np.uint64)
    write_partitioned(
        plan.path(f"keys-{task_index:05d}.arrow"),
        {
            "kind": np.array(kinds, np.int8),
            "key": key_array,
            "file": np.array(files, np.int32),
            "chunk": np.array(chunk_ids, np.int32),
            "row": np.array(rows, np.int32),
            "id": pa.array(ids, pa.string()),
        },
        (first8 % np.uint64(plan.n_partitions)).astype(np.int64),
        plan.n_partitions,
    )
    return {"checked": checked, "keys": len(keys)}


def decide_task(plan: PrePlan, partition: int) -> dict:
    """Round 2: groups of equal (kind, key): the survivor (smallest id, then input
    order; or input order alone) is kept."""
    table = read_partition(plan.paths("keys", plan.n_tasks), partition)
    order = ["kind", "key", *(["id"] if plan.by_id else []), "file", "chunk", "row"]
    table = table.take(pc.sort_indices(table, [(c, "ascending") for c in order]))
    table = table.combine_chunks()
    n = table.num_rows
    first = np.ones(n, dtype=bool)
    if n > 1:
        same = np.asarray(
            pc.and_(
                pc.equal(table["key"].chunk(0).slice(1), table["key"].chunk(0).slice(0, n - 1)),
                pc.equal(table["kind"].chunk(0).slice(1), table["kind"].chunk(0).slice(0, n - 1)),
            ),
            dtype=bool,
        )
        first[1:] = ~same
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, n))
    group = np.cumsum(first) - 1
    dropped = ~first
    kind = column(table, "kind", np.int8)[dropped]
    reason_names = [REASONS[k] for k in plan.kinds]
    survivor_ids = table["id"].take(pa.array(starts[group])) if n else table["id"]
    survivor_rows = starts[group][dropped] if n else starts
    files = column(table, "file", np.int32)[dropped]
    drops = {
        "file": files,
        "chunk": column(table, "chunk", np.int32)[dropped],
        "row": column(table, "row", np.int32)[dropped],
        "kind": kind,
        "reason": pa.array([reason_names[k] for k in kind.tolist()], pa.string()),
        "cluster_id": survivor_ids.filter(pa.array(dropped)).combine_chunks(),
        "cluster_size": sizes[group][dropped].astype(np.int32),
        "survivor_file": column(table, "file", np.int32)[survivor_rows],
        "survivor_chunk": column(table, "chunk", np.int32)[survivor_rows],
        "survivor_row": column(table, "row", np.int32)[survivor_rows],
    }
    write_partitioned(
        plan.path(f"drops-{partition:05d}.arrow"),
        drops,
        group_of(files.astype(np.int64), plan.n_files, plan.n_groups),
        plan.n_groups,
    )
    return {"dropped_keys": int(dropped.sum()), "clusters": int((sizes >= 2).sum())}


def finalize_task(plan: PrePlan, group: int) -> dict:
    """Round 3: one decision per record, in (file, chunk, row) order -> drops-GGGGG.parquet."""
    table = read_partition(plan.paths("drops", plan.n_partitions), group)
    order = [("file", "ascending"), ("chunk", "ascending"), ("row", "ascending")]
    table = table.take(pc.sort_indices(table, [*order, ("kind", "ascending")]))
    location = np.stack(
        [column(table, c, np.int64) for c in ("file", "chunk", "row")], axis=1
    ).reshape(-1, 3)
    first = np.ones(len(location), dtype=bool)
    first[1:] = (location[1:] != location[:-1]).any(axis=1)
    table = table.filter(pa.array(first))
    out = pa.table(
        {
            "file_index": table["file"],
            "chunk_index": table["chunk"],
            "row": table["row"],
            S.DROP_REASON: table["reason"],
            S.DUP_CLUSTER_ID: table["cluster_id"],
            S.DUP_CLUSTER_SIZE: table["cluster_size"],
            "survivor_file": table["survivor_file"],
            "survivor_chunk": table["survivor_chunk"],
            "survivor_row": table["survivor_row"],
        },
        schema=DROPS_SCHEMA,
    )
    pq.write_table(out, plan.path(S.drops_name(group)), compression="zstd")
    return {"drops": out.num_rows, "by_reason": dict(Counter(out[S.DROP_REASON].to_pylist()))}


@dataclass
class PreResult:
    stats: dict  # deterministic: stats.json's dedup.pre_extraction
    timings: dict = field(default_factory=dict)
    skipped: bool = False


def survivor_by_id(survivor: list[str]) -> bool:
    """dedup.survivor for records not yet extracted: quality and length are unknown (and
    equal for equal payloads), so the first of id / first in the list decides."""
    decisive = [c for c in survivor if c in ("id", "first")]
    return bool(decisive) and decisive[0] == "id"


def run_pre_dedup(
    chunks: list[Chunk],
    kinds: list[str],
    out_dir: str | Path,
    *,
    max_payload_bytes: int,
    survivor: list[str] = ("quality", "length", "id"),
    executor=None,
    partitions: int = 0,
    chunks_per_task: int = 0,
    log=print,
) -> PreResult:
    """The pre-extraction pass over every chunk of the run (see the module docstring);
    writes `out_dir/drops-GGGGG.parquet` and `out_dir/done.json`. `chunks_per_task`: 0 =
    automatic (at most CHUNKS_PER_TASK, at least ~4 tasks per worker)."""
    out = Path(out_dir)
    done = out / DONE_FILE
    if done.exists():
        return PreResult(stats=json.loads(done.read_text())["stats"], skipped=True)
    executor = executor or SerialExecutor()
    chunks = sorted(chunks, key=lambda c: (c.file_index, c.chunk_index))
    records = sum(c.n_records for c in chunks)
    n_files = max((c.file_index for c in chunks), default=0) + 1
    if not chunks_per_task:  # at most 16, and at least ~4 tasks per worker to balance
        chunks_per_task = min(CHUNKS_PER_TASK, math.ceil(len(chunks) / (4 * executor.workers)))
        chunks_per_task = max(1, chunks_per_task)
    batches = [chunks[i : i + chunks_per_task] for i in range(0, len(chunks), chunks_per_task)]
    if not partitions:
        partitions = max(executor.workers, math.ceil(records * len(kinds) / KEYS_PER_PARTITION))
    tmp = out / "tmp"
    shutil.rmtree(out, ignore_errors=True)  # a crash inside the pass: start it over
    tmp.mkdir(parents=True)
    plan = PrePlan(
        kinds=list(kinds),
        by_id=survivor_by_id(survivor),
        max_payload_bytes=max_payload_bytes,
        n_tasks=max(1, len(batches)),
        n_partitions=partitions,
        n_files=n_files,
        n_groups=max(1, min(n_files, math.ceil(records / RECORDS_PER_GROUP))),
        tmp=str(tmp),
    )
    timings: dict = {"partitions": plan.n_partitions, "groups": plan.n_groups, "rounds": {}}

    def run_round(name: str, fn, calls) -> list[dict]:
        from dedup.barrier import round_timing

        start = time.perf_counter()
        results = executor.map(fn, calls)
        timings["rounds"][name] = round_timing(time.perf_counter() - start, results)
        crash_point(f"dedup_pre:round:{name}")
        return results

    log(
        f"  dedup before extraction ({', '.join(kinds)}): {records:,} records, "
        f"{plan.n_tasks} read tasks, {plan.n_partitions} partitions"
    )
    if batches:
        calls = [(plan, i, [asdict(c) for c in batch]) for i, batch in enumerate(batches)]
    else:  # no chunk at all: one empty keys file so the next rounds have input
        calls = [(plan, 0, [])]
    scanned = run_round("keys", keys_task, calls)
    decided = run_round("decide", decide_task, [(plan, p) for p in range(plan.n_partitions)])
    finals = run_round("finalize", finalize_task, [(plan, g) for g in range(plan.n_groups)])
    by_reason: Counter = Counter()
    for r in finals:
        by_reason.update(r["by_reason"])
    stats = {
        "keys": list(kinds),
        "checked": sum(r["checked"] for r in scanned),
        "removed": sum(r["drops"] for r in finals),
        "removed_by_reason": dict(sorted(by_reason.items())),
        "clusters": sum(r["clusters"] for r in decided),
    }
    for g in range(plan.n_groups):
        name = S.drops_name(g)
        (tmp / name).replace(out / name)
    shutil.rmtree(tmp)
    index = {"stats": stats, "n_files": plan.n_files, "n_groups": plan.n_groups}
    done_tmp = out / (DONE_FILE + ".tmp")
    done_tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    done_tmp.replace(done)
    crash_point("dedup_pre:done")
    return PreResult(stats=stats, timings=timings)


# --- applying the decisions -------------------------------------------------------------------


class PreDecisions:
    """The pass's drops, one file group at a time (the last one read stays cached)."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        index = json.loads((self.dir / DONE_FILE).read_text())
        self.stats = index["stats"]
        self.n_files = index["n_files"]
        self.n_groups = index["n_groups"]
        self._group = -1
        self._by_chunk: dict[tuple[int, int], pa.Table] = {}

    def for_chunk(self, file_index: int, chunk_index: int) -> pa.Table:
        """Drops (row, drop_reason, dup_cluster_id, dup_cluster_size) of one chunk."""
        if file_index >= self.n_files:
            return DROPS_SCHEMA.empty_table()
        group = group_of(file_index, self.n_files, self.n_groups)
        if group != self._group:
            table = read_parquet(self.dir / S.drops_name(group))
            self._by_chunk = {}
            files = column(table, "file_index", np.int64)
            chunks = column(table, "chunk_index", np.int64)
            new = np.ones(len(files), dtype=bool)
            new[1:] = (files[1:] != files[:-1]) | (chunks[1:] != chunks[:-1])
            starts = np.flatnonzero(new).tolist()
            ends = [*starts[1:], len(files)] if starts else []  # a group may have none
            for a, b in zip(starts, ends, strict=True):
                self._by_chunk[(int(files[a]), int(chunks[a]))] = table.slice(a, b - a)
            self._group = group
        return self._by_chunk.get((file_index, chunk_index), DROPS_SCHEMA.empty_table())

    def mark(self, raw: pa.Table, file_index: int, chunk_index: int) -> pa.Table:
        """Documents phase: the chunk's duplicate rows dropped before any stage runs."""
        drops = self.for_chunk(file_index, chunk_index)
        if not drops.num_rows:
            return raw
        rows = column(drops, "row", np.int64)
        if rows.max() >= raw.num_rows:
            raise RuntimeError(
                f"dedup_pre decisions name row {int(rows.max())} of chunk {file_index}/"
                f"{chunk_index}, which has {raw.num_rows} rows: the input changed since"
            )
        reasons = np.full(raw.num_rows, None, dtype=object)
        reasons[rows] = drops[S.DROP_REASON].to_pylist()
        for reason in sorted(set(reasons[rows].tolist())):
            raw = mark_dropped(raw, pa.array(reasons == reason), reason, DROP_STAGE)
        return raw

    def fill_clusters(self, docs: pa.Table, file_index: int, chunk_index: int) -> pa.Table:
        """Write phase: dup_cluster_id/size of the chunk's pre-extraction drops (the
        columns exist already: the dedup barrier's apply_decisions adds them, and has set
        them already where it resolved a survivor that a later pass dropped)."""
        drops = self.for_chunk(file_index, chunk_index)
        if not drops.num_rows:
            return docs
        ids = docs[S.DUP_CLUSTER_ID].to_pylist()
        sizes = docs[S.DUP_CLUSTER_SIZE].to_pylist()
        for row, cluster_id, size in zip(
            drops["row"].to_pylist(),
            drops[S.DUP_CLUSTER_ID].to_pylist(),
            drops[S.DUP_CLUSTER_SIZE].to_pylist(),
            strict=True,
        ):
            if ids[row] is None:
                ids[row], sizes[row] = cluster_id, size
        docs = docs.set_column(
            docs.schema.get_field_index(S.DUP_CLUSTER_ID),
            S.DUP_CLUSTER_ID,
            pa.array(ids, pa.string()),
        )
        return docs.set_column(
            docs.schema.get_field_index(S.DUP_CLUSTER_SIZE),
            S.DUP_CLUSTER_SIZE,
            pa.array(sizes, pa.int32()),
        )


# --- what the runner calls --------------------------------------------------------------------


def pre_enabled(cfg) -> bool:
    return bool(cfg.dedup.enabled and cfg.dedup.pre_extraction)


def pre_dedup_phase(cfg, work_dir: str | Path, chunks: list[Chunk], log=print) -> PreResult | None:
    """The pipeline's pre-extraction pass on Ray (ray.init() done); None when off."""
    if not pre_enabled(cfg):
        return None
    from dedup.executor import RayExecutor

    return run_pre_dedup(
        chunks,
        cfg.dedup.pre_extraction,
        Path(work_dir) / PRE_DIR,
        max_payload_bytes=cfg.read.max_payload_bytes,
        survivor=cfg.dedup.survivor,
        executor=RayExecutor(),
        partitions=cfg.engine.dedup_partitions,
        log=log,
    )


def pre_decisions(cfg, work_dir: str | Path) -> PreDecisions | None:
    return PreDecisions(Path(work_dir) / PRE_DIR) if pre_enabled(cfg) else None
