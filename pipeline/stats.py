"""Run statistics computed from a run's outputs: the manifest, the shards' metadata
columns and the rows of `rejected/`. Never from counters kept in memory during the run.

Why from the outputs: a run that was killed and resumed (pipeline/runner.py) processes
each chunk once, but counters held by the process that died are gone, and counters
summed over both processes count some work twice. datatrove #360 is that bug: its stats
are wrong after a restart. The outputs are what a trainer will read, so numbers computed
from them are right by construction, resumed or not, and `inspect` and `report` agree.

Every record read is one row, kept (a shard row) or rejected (a `rejected/` row with its
`drop_stage` and `drop_reason`), so the funnel below is exact: it starts at the records
read and subtracts each stage's and each rule's rows, in pipeline order, down to the kept
documents. Characters and tokens are those of each row's text as the pipeline last held
it (C4's line cleaning shortens text before the later rules; pipeline/tokenize.py counts
the tokens of dropped rows too). Rows dropped before extraction have no text: 0 chars.

Manifest format_version 1 runs have no text_chars / n_tokens for rejected rows and no
text_chars in shards: those figures are None, the rest is computed the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.io import read_parquet
from pipeline.shards import read_manifest

TIMINGS_FILE = "timings.json"  # written by pipeline/runner.py
REPEAT_ID_PATTERN = r"#r[0-9]+$"  # mixers.rebalance.REPEAT_SEPARATOR + copy number
REBALANCE_FILE = "rebalance.json"  # written by domain rebalancing, when a run has it
DOMAIN = S.DOMAIN  # the domain label column (mixers/domains.py), when a run has it
PERCENTILES = (0, 1, 10, 25, 50, 75, 90, 99, 100)
SHARD_ROW = "_shard", "_row"  # where a kept row lives: shard index, row in the shard


def stage_order() -> list[str]:
    """`drop_stage` values in the order the pipeline applies them (pipeline/runner.py's
    build_stages, the rule groups of filters/rules.py, then the barriers)."""
    from filters.rules import TEXT_FILTERS

    return [
        "read",
        "dedup_pre",
        "url_filter",
        "extract",
        "langid",
        *[text_filter.name for text_filter in TEXT_FILTERS],
        "quality_classifier",
        "dedup",
        "rebalance",
    ]


# --- Reading the outputs -------------------------------------------------------------------


def kept_table(directory: str | Path, manifest: dict | None = None) -> pa.Table:
    """Every kept document's metadata (all shard columns but the tokens), in shard order,
    plus `_shard` and `_row` to find its tokens again. Shards are memory-mapped: the token
    bytes are never read."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    tables = []
    for index, shard in enumerate(manifest["shards"]):
        with pa.memory_map(str(directory / shard["file"]), "r") as source:
            table = pa.ipc.open_file(source).read_all()
            names = [name for name in table.schema.names if name != S.TOKENS]
            table = table.select(names)
            table = table.append_column(
                SHARD_ROW[0], pa.array([index] * table.num_rows, pa.int32())
            )
            table = table.append_column(
                SHARD_ROW[1], pa.array(np.arange(table.num_rows, dtype=np.int32))
            )
            # one contiguous copy of the small columns; Arrow keeps the mapping alive for
            # any buffer still pointing into it
            tables.append(pa.Table.from_batches(table.combine_chunks().to_batches()))
    if not tables:
        return pa.table({S.ID: pa.array([], pa.string())})
    return pa.concat_tables(tables, promote_options="default")


def rejected_table(directory: str | Path, manifest: dict | None = None) -> pa.Table:
    """Every rejected row (`rejected/*.parquet` as the manifest lists them)."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    tables = [read_parquet(directory / name) for name in manifest["rejected"]["files"]]
    if not tables:
        return pa.table({S.DROP_REASON: pa.array([], pa.string())})
    return pa.concat_tables(tables, promote_options="default")


def column_or_none(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    return table[name] if name in table.schema.names else None


def _sum(values: pa.ChunkedArray | None) -> int | None:
    if values is None:
        return None
    return int(pc.sum(values).as_py() or 0)


# --- Descriptions of a set of documents -------------------------------------------------------


def group_counts(table: pa.Table, key: str) -> dict | None:
    """{value: {"docs", "tokens", "chars"}} for one column, sorted by tokens then name;
    None when the column is absent (a run without domains). Null values count as "?"."""
    if key not in table.schema.names:
        return None
    aggregations = [(S.ID, "count")]
    for name in (S.N_TOKENS, S.TEXT_CHARS):
        if name in table.schema.names:
            aggregations.append((name, "sum"))
    keyed = table.set_column(
        table.schema.get_field_index(key), key, pc.fill_null(table[key].cast(pa.string()), "?")
    )
    grouped = keyed.group_by(key).aggregate(aggregations).to_pylist()
    out = {}
    for row in grouped:
        out[row[key]] = {
            "docs": row[f"{S.ID}_count"],
            "tokens": row.get(f"{S.N_TOKENS}_sum"),
            "chars": row.get(f"{S.TEXT_CHARS}_sum"),
        }
    return dict(
        sorted(out.items(), key=lambda kv: (-(kv[1]["tokens"] or 0), -kv[1]["docs"], kv[0]))
    )


def percentiles(values: pa.ChunkedArray | None) -> dict | None:
    """Length percentiles (nearest rank: every value is a real document's length)."""
    if values is None:
        return None
    array = values.drop_null().to_numpy()
    if array.size == 0:
        return None
    points = np.percentile(array, PERCENTILES, method="nearest")
    return {f"p{p}": int(v) for p, v in zip(PERCENTILES, points, strict=True)} | {
        "mean": round(float(array.mean()), 1)
    }


def log2_histogram(values: pa.ChunkedArray | None) -> list[dict]:
    """Documents per length bin [2^k, 2^(k+1)): document lengths span 1 to 10^5+ tokens,
    so equal-width bins would put almost everything in the first one."""
    if values is None:
        return []
    array = values.drop_null().to_numpy().astype(np.int64)
    if array.size == 0:
        return []
    exponents = np.floor(np.log2(np.maximum(array, 1))).astype(np.int64)
    counts = np.bincount(exponents)
    return [
        {"lo": 1 << k, "hi": (1 << (k + 1)) - 1, "docs": int(n)}
        for k, n in enumerate(counts)
        if k >= int(exponents.min())
    ]


def describe(kept: pa.Table) -> dict:
    """Docs, tokens and chars in total and per language, domain and source file; length
    percentiles and the token-length histogram. What `inspect` prints for any subset."""
    return {
        "docs": kept.num_rows,
        "tokens": _sum(column_or_none(kept, S.N_TOKENS)),
        "chars": _sum(column_or_none(kept, S.TEXT_CHARS))
        if S.TEXT_CHARS in kept.schema.names and kept[S.TEXT_CHARS].null_count == 0
        else None,
        "by_lang": group_counts(kept, S.LANG),
        "by_domain": group_counts(kept, DOMAIN),
        "by_source": group_counts(kept, S.SOURCE),
        "length_percentiles": {
            "tokens": percentiles(column_or_none(kept, S.N_TOKENS)),
            "chars": percentiles(column_or_none(kept, S.TEXT_CHARS)),
        },
        "token_histogram": log2_histogram(column_or_none(kept, S.N_TOKENS)),
    }


# --- The funnel and the drops ---------------------------------------------------------------


def drop_reasons(rejected: pa.Table) -> list[dict]:
    """One entry per (stage, reason) with its rows, chars and tokens, in pipeline order
    (stages by stage_order(), unknown stages after them by name; reasons by rows)."""
    if rejected.num_rows == 0:
        return []
    keys = [S.DROP_STAGE, S.DROP_REASON]
    aggregations = [(S.DROP_REASON, "count")]
    weighed = [name for name in (S.TEXT_CHARS, S.N_TOKENS) if name in rejected.schema.names]
    aggregations += [(name, "sum") for name in weighed]
    table = rejected.select(keys + weighed)
    table = table.set_column(0, S.DROP_STAGE, pc.fill_null(table[S.DROP_STAGE], "?"))
    rows = table.group_by(keys).aggregate(aggregations).to_pylist()
    order = {stage: i for i, stage in enumerate(stage_order())}
    out = [
        {
            "stage": row[S.DROP_STAGE],
            "reason": row[S.DROP_REASON],
            "docs": row[f"{S.DROP_REASON}_count"],
            "chars": (row.get(f"{S.TEXT_CHARS}_sum") or 0) if S.TEXT_CHARS in weighed else None,
            "tokens": (row.get(f"{S.N_TOKENS}_sum") or 0) if S.N_TOKENS in weighed else None,
        }
        for row in rows
    ]
    return sorted(
        out, key=lambda r: (order.get(r["stage"], len(order)), r["stage"], -r["docs"], r["reason"])
    )


def funnel(kept_totals: dict, drops: list[dict], repeats: dict | None = None) -> list[dict]:
    """What is left after each stage and each rule: docs, chars, tokens. The first step
    holds everything read (chars/tokens: every text the pipeline ever extracted), the last
    equals the kept documents. `kept_totals` counts original documents only; rebalancing's
    repeats (`repeats`: their docs, chars, tokens) are one last step that adds."""

    def total(name: str) -> int | None:
        if kept_totals.get(name) is None or any(d[name] is None for d in drops):
            return None
        return kept_totals[name] + sum(d[name] for d in drops)

    left = {name: total(name) for name in ("docs", "chars", "tokens")}
    steps = [{"stage": "input", "reason": "records read", **left} | {"dropped": None}]
    for drop in drops:
        for name in left:
            if left[name] is not None:
                left[name] -= drop[name]
        dropped = {name: drop[name] for name in ("docs", "chars", "tokens")}
        steps.append({"stage": drop["stage"], "reason": drop["reason"], **left, "dropped": dropped})
    if repeats and repeats["docs"]:
        for name in left:
            if left[name] is not None and repeats[name] is not None:
                left[name] += repeats[name]
        added = {name: repeats[name] for name in ("docs", "chars", "tokens")}
        steps.append(
            {"stage": "rebalance", "reason": "repeats added", **left, "dropped": None}
            | {"added": added}
        )
    return steps


def split_repeats(kept: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(original documents, rebalancing's repeats): a repeat's id is `<id>#r<k>`
    (mixers/rebalance.py). Records read = originals + rejected rows."""
    if kept.num_rows == 0:
        return kept, kept.slice(0, 0)
    is_repeat = pc.match_substring_regex(kept[S.ID], REPEAT_ID_PATTERN)
    return kept.filter(pc.invert(is_repeat)), kept.filter(is_repeat)


def totals(table: pa.Table) -> dict:
    return {
        "docs": table.num_rows,
        "tokens": _sum(column_or_none(table, S.N_TOKENS)),
        "chars": _sum(column_or_none(table, S.TEXT_CHARS)),
    }


def dedup_clusters(rejected: pa.Table) -> dict:
    """{reason: {cluster size: clusters}} from the rows dedup dropped. Each dropped row
    carries its cluster's kept document (dup_cluster_id) and size (dup_cluster_size)."""
    names = rejected.schema.names
    if S.DUP_CLUSTER_ID not in names or S.DUP_CLUSTER_SIZE not in names:
        return {}
    rows = rejected.filter(pc.is_valid(rejected[S.DUP_CLUSTER_ID]))
    out: dict[str, Counter] = {}
    seen = set()
    for reason, cluster, size in zip(
        rows[S.DROP_REASON].to_pylist(),
        rows[S.DUP_CLUSTER_ID].to_pylist(),
        rows[S.DUP_CLUSTER_SIZE].to_pylist(),
        strict=True,
    ):
        if (reason, cluster) not in seen:
            seen.add((reason, cluster))
            out.setdefault(reason, Counter())[size] += 1
    return {reason: dict(sorted(sizes.items())) for reason, sizes in sorted(out.items())}


def throughput(timings: dict | None, records: int) -> dict | None:
    """Seconds per phase and per stage from timings.json, with records per second. Stage
    seconds are summed over workers: CPU (the worker's and its extractor child's) and wall
    (CPU plus waiting for a core; None in runs made before it was recorded)."""
    if not timings:
        return None
    phases = {
        name: {"seconds": seconds, "records_per_s": records / seconds if seconds else None}
        for name, seconds in timings.get("seconds", {}).items()
    }
    walls = timings.get("stage_wall_seconds", {})
    stages = {
        name: {
            "cpu_seconds": seconds,
            "records_per_cpu_s": records / seconds if seconds else None,
            "wall_seconds": walls.get(name),
        }
        for name, seconds in timings.get("stage_cpu_seconds", {}).items()
    }
    return {"workers": timings.get("workers"), "phases": phases, "stages": stages}


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def run_stats(directory: str | Path) -> dict:
    """Everything `crawlmill report` draws and `crawlmill inspect` summarises."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    kept = kept_table(directory, manifest)
    rejected = rejected_table(directory, manifest)
    described = describe(kept)
    drops = drop_reasons(rejected)
    timings = _read_json(directory / TIMINGS_FILE)
    originals, repeats = split_repeats(kept)
    records = originals.num_rows + rejected.num_rows
    domain_before = None
    if DOMAIN in rejected.schema.names and DOMAIN in kept.schema.names:
        rebalanced = rejected.filter(pc.equal(rejected[S.DROP_STAGE], "rebalance"))
        if rebalanced.num_rows:
            common = [n for n in (S.ID, DOMAIN, S.N_TOKENS, S.TEXT_CHARS) if n in kept.schema.names]
            common = [n for n in common if n in rebalanced.schema.names]
            both = pa.concat_tables(
                [
                    originals.select(common),
                    rebalanced.select(common).cast(originals.select(common).schema),
                ]
            )
            domain_before = group_counts(both, DOMAIN)
    return {
        "directory": str(directory),
        "format_version": manifest["format_version"],
        "crawlmill_version": manifest.get("crawlmill_version"),
        "tokenizer": manifest.get("tokenizer"),
        "inputs": manifest.get("inputs", []),
        "shards": len(manifest["shards"]),
        "shard_bytes": sum(s.get("bytes", 0) for s in manifest["shards"]),
        "records": records,
        "rejected": rejected.num_rows,
        "kept": described,
        "rejected_by_lang": group_counts(rejected.filter(pc.is_valid(rejected[S.LANG])), S.LANG)
        if S.LANG in rejected.schema.names
        else None,
        "drop_reasons": drops,
        "repeats": repeats.num_rows,
        "funnel": funnel(
            described | totals(originals) if repeats.num_rows else described,
            drops,
            totals(repeats),
        ),
        "dedup_clusters": dedup_clusters(rejected),
        "domain_before_rebalance": domain_before,
        "rebalance": _read_json(directory / REBALANCE_FILE),
        "throughput": throughput(timings, records),
        "manifest_totals": manifest["totals"],
    }
