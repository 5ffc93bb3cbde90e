"""`crawlmill inspect DIR`: what a run's shards hold, before anyone spends GPU weeks on them.

    crawlmill inspect DIR                          manifest summary, docs/tokens/chars per
                                                   language, domain, source; length percentiles
    crawlmill inspect DIR --where lang=zh --where 'quality_score>0.5'
                                                   the same for the kept documents that match
    crawlmill inspect DIR --sample 3               3 documents decoded from their tokens
    crawlmill inspect DIR --rejected gopher_stop_words -n 5
                                                   5 rejected rows of that reason, with scores
    crawlmill inspect DIR --json                   any of the above as JSON

Everything is computed from the outputs (pipeline/stats.py), so it is right after a
resumed run. Manifests of every format_version crawlmill shipped are read (1, 2); a newer
one is refused naming the version (pipeline/shards.py). Sampling is deterministic: rows
are ordered by a hash of (id, --seed), never by global random state.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.cli import positive_int
from pipeline.shards import ShardReader, read_manifest
from pipeline.stats import (
    SHARD_ROW,
    describe,
    drop_reasons,
    kept_table,
    rejected_table,
)


class InspectError(ValueError):
    """A --where, --rejected or --sample request this run cannot answer."""


# --- --where -----------------------------------------------------------------------------

_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|>|<|=)\s*(.*?)\s*$")
_ARROW_OPS = {
    ">=": pc.greater_equal,
    "<=": pc.less_equal,
    "!=": pc.not_equal,
    ">": pc.greater,
    "<": pc.less,
    "=": pc.equal,
}


def parse_where(expression: str) -> tuple[str, str, str]:
    """'lang=zh' -> ("lang", "=", "zh"); 'quality_score>0.5' -> (..., ">", "0.5").
    `=` and `!=` take a comma-separated list: lang=zh,ja."""
    match = _WHERE.match(expression)
    if not match:
        raise InspectError(
            f"--where {expression!r}: expected COLUMN OP VALUE with OP one of "
            "= != > >= < <= (e.g. lang=zh, quality_score>0.5)"
        )
    return match.group(1), match.group(2), match.group(3)


def where_mask(table: pa.Table, expressions: list[str]) -> pa.ChunkedArray | pa.Array:
    """Rows matching every expression (rows where the column is null never match)."""
    mask = pa.array([True] * table.num_rows)
    for expression in expressions:
        column, op, raw = parse_where(expression)
        if column not in table.schema.names or column in SHARD_ROW:
            known = ", ".join(n for n in table.schema.names if n not in SHARD_ROW)
            raise InspectError(
                f"--where {expression!r}: no column {column!r} here (columns: {known})"
            )
        values = table[column]
        numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
        try:
            items = [float(v) if numeric else v for v in raw.split(",")]
        except ValueError:
            raise InspectError(
                f"--where {expression!r}: {column} is numeric, {raw!r} is not"
            ) from None
        if op in ("=", "!=") and len(items) > 1:
            matched = pc.is_in(values, value_set=pa.array(items, values.type))
            matched = pc.invert(matched) if op == "!=" else matched
        elif len(items) > 1:
            raise InspectError(f"--where {expression!r}: a list of values needs = or !=")
        else:
            matched = _ARROW_OPS[op](values, pa.scalar(items[0], values.type))
        mask = pc.and_kleene(mask, pc.fill_null(matched, False))
    return mask


# --- samples --------------------------------------------------------------------------------


def sample_order(ids: list[str], seed: int) -> list[int]:
    """Row indices ordered by BLAKE2b(seed, id): the same rows for the same seed, whatever
    the shard layout."""
    key = str(seed).encode()
    return sorted(
        range(len(ids)),
        key=lambda i: hashlib.blake2b(ids[i].encode(), digest_size=8, key=key).digest(),
    )


def load_decoder(manifest: dict):
    """The run's tokenizer, checked against the manifest's sha256 (a tokenizer.json that
    changed since the run would decode to the wrong text)."""
    from pipeline.config import TokenizerConfig
    from pipeline.tokenize import load_tokenizer

    info = manifest["tokenizer"]
    section = manifest.get("config", {}).get("tokenizer", {})
    cfg = TokenizerConfig(name=info["name"], eos_token=section.get("eos_token", "<|endoftext|>"))
    try:
        tokenizer = load_tokenizer(cfg)
    except (FileNotFoundError, ValueError) as exc:
        raise InspectError(f"--sample: cannot load the run's tokenizer: {exc}") from None
    if tokenizer.sha256 != info["sha256"]:
        raise InspectError(
            f"--sample: tokenizer {info['name']!r} here (sha256 {tokenizer.sha256[:12]}...) is "
            f"not the one the run used ({info['sha256'][:12]}...)"
        )
    return tokenizer


def sample_documents(directory: Path, manifest: dict, kept: pa.Table, n: int, seed: int) -> list:
    """n kept documents (of `kept`, possibly filtered), decoded, with their metadata."""
    if n <= 0 or kept.num_rows == 0:
        return []
    tokenizer = load_decoder(manifest)
    eos = tokenizer.eos_id if manifest["tokenizer"].get("append_eos", True) else None
    chosen = sample_order(kept[S.ID].to_pylist(), seed)[:n]
    readers: dict[int, ShardReader] = {}
    out = []
    for row in kept.take(pa.array(chosen, pa.int64())).to_pylist():
        shard = row.pop(SHARD_ROW[0])
        index = row.pop(SHARD_ROW[1])
        if shard not in readers:
            readers[shard] = ShardReader(directory / manifest["shards"][shard]["file"])
        tokens = readers[shard].tokens(index)
        if eos is not None and len(tokens) and tokens[-1] == eos:
            tokens = tokens[:-1]
        row["shard"] = manifest["shards"][shard]["file"]
        row["text"] = tokenizer.decode(tokens.tolist())
        out.append(row)
    for reader in readers.values():
        reader.close()
    return out


def rejected_rows(rejected: pa.Table, reason: str, n: int, seed: int) -> list[dict]:
    """n rejected rows of `reason` ("all": any), with every score that is not null."""
    known = sorted(set(rejected[S.DROP_REASON].to_pylist())) if rejected.num_rows else []
    if reason != "all":
        if reason not in known:
            raise InspectError(
                f"--rejected {reason!r}: no rejected row has this reason in this run "
                f"(reasons here: {', '.join(known) or 'none'})"
            )
        rejected = rejected.filter(pc.equal(rejected[S.DROP_REASON], reason))
    chosen = sample_order(rejected[S.ID].to_pylist(), seed)[:n]
    rows = rejected.take(pa.array(chosen, pa.int64())).to_pylist()  # only those rows
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


# --- the command -------------------------------------------------------------------------------


def inspect_run(
    directory: str | Path,
    where: list[str] | None = None,
    sample: int = 0,
    rejected: str | None = None,
    n: int = 5,
    seed: int = 0,
) -> dict:
    """What `crawlmill inspect` shows, as data (what --json prints)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    kept = kept_table(directory, manifest)
    if where:
        kept = kept.filter(where_mask(kept, where))
    described = describe(kept)
    described.pop("token_histogram")
    info = {
        "directory": str(directory),
        "format_version": manifest["format_version"],
        "crawlmill_version": manifest.get("crawlmill_version"),
        "tokenizer": manifest["tokenizer"],
        "shards": len(manifest["shards"]),
        "totals": manifest["totals"],
        "where": where or [],
        "kept": described,
    }
    rejected_rows_table = rejected_table(directory, manifest)
    if where:  # the same filter on rejected rows, where their columns allow it
        try:
            rejected_rows_table = rejected_rows_table.filter(where_mask(rejected_rows_table, where))
        except InspectError:
            rejected_rows_table = rejected_rows_table.slice(0, 0)
    info["rejected"] = {
        "rows": rejected_rows_table.num_rows,
        "by_reason": drop_reasons(rejected_rows_table),
    }
    if sample:
        info["sample"] = sample_documents(directory, manifest, kept, sample, seed)
    if rejected:
        info["rejected_sample"] = rejected_rows(rejected_rows_table, rejected, n, seed)
    return info


def _num(value) -> str:
    return "-" if value is None else f"{value:,}"


def _print_groups(title: str, groups: dict | None, total_tokens: int | None, top: int) -> None:
    if not groups:
        return
    print(f"{title}: {len(groups)}")
    width = max(8, min(60, max(len(k) for k in groups)))
    print(f"  {'':<{width}} {'docs':>9} {'tokens':>13} {'chars':>13} {'share':>7}")
    for key, c in list(groups.items())[:top]:
        share = (c["tokens"] or 0) / total_tokens if total_tokens else 0
        label = key if len(key) <= width else "..." + key[-(width - 3) :]
        print(
            f"  {label:<{width}} {c['docs']:>9,} {_num(c['tokens']):>13} "
            f"{_num(c['chars']):>13} {share:>7.1%}"
        )
    if len(groups) > top:
        print(f"  (+{len(groups) - top} more; --json lists all)")


def print_info(info: dict, top: int = 20) -> None:
    tok = info["tokenizer"]
    kept = info["kept"]
    totals = info["totals"]
    version = f"manifest v{info['format_version']}, crawlmill {info['crawlmill_version']}"
    print(f"directory:  {info['directory']}  ({version})")
    identity = f"vocab {tok['vocab_size']:,}, eos {tok['eos_id']}, sha256 {tok['sha256'][:16]}..."
    print(f"tokenizer:  {tok['name']}  ({identity})")
    print(f"shards:     {info['shards']}")
    print(f"records:    {totals['records']:,} read, {totals['rejected']:,} rejected")
    if info["where"]:
        print(f"where:      {' and '.join(info['where'])}")
    print(f"docs:       {kept['docs']:,}")
    print(f"tokens:     {_num(kept['tokens'])}")
    print(f"chars:      {_num(kept['chars'])}")
    for unit, p in kept["length_percentiles"].items():
        if p:
            points = "  ".join(f"{k} {v:,}" for k, v in p.items())
            print(f"length ({unit}): {points}")
    _print_groups("languages", kept["by_lang"], kept["tokens"], top)
    _print_groups("domains", kept["by_domain"], kept["tokens"], top)
    _print_groups("sources", kept["by_source"], kept["tokens"], top)
    drops = info["rejected"]["by_reason"]
    if drops:
        print(f"rejected:   {info['rejected']['rows']:,} rows (stage/reason, rows, tokens)")
        for d in drops:
            name = f"{d['stage']}/{d['reason']}"
            print(f"  {name:<44} {d['docs']:>9,} {_num(d['tokens']):>13}")
    for doc in info.get("sample", []):
        print("-" * 79)
        text = doc.pop("text")
        for key, value in doc.items():
            print(f"{key}: {value}")
        print(text if len(text) <= 2000 else text[:2000] + f"\n[... {len(text):,} chars]")
    for row in info.get("rejected_sample", []):
        print("-" * 79)
        text = row.pop(S.TEXT, None)
        for key, value in row.items():
            print(f"{key}: {value}")
        if text is None:
            print("(text not kept: the run had output.keep_rejected_text: false)")
        else:
            print(text if len(text) <= 2000 else text[:2000] + f"\n[... {len(text):,} chars]")


def cmd_inspect(args: argparse.Namespace) -> int:
    info = inspect_run(args.directory, args.where, args.sample, args.rejected, args.n, args.seed)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False, default=str))
    else:
        print_info(info)
    return 0


def add_command(sub) -> None:
    parser = sub.add_parser(
        "inspect",
        help="statistics of a run's shards and rejected rows; sample documents",
        description=__doc__.split("\n\n")[0],
        epilog="\n".join(__doc__.split("\n\n")[1].splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", metavar="DIR", help="a crawlmill run directory")
    parser.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="keep documents matching COLUMN OP VALUE, OP one of = != > >= < <= "
        "(lang=zh, lang=zh,ja, domain=science, 'quality_score>0.5'); repeatable, all must hold",
    )
    parser.add_argument(
        "--sample",
        type=positive_int,
        default=0,
        metavar="N",
        help="print N kept documents, decoded",
    )
    parser.add_argument(
        "--rejected",
        metavar="REASON",
        help="print rejected rows of this drop_reason ('all': any) with their scores",
    )
    parser.add_argument("-n", type=positive_int, default=5, help="rows for --rejected (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="which documents are sampled")
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    parser.set_defaults(func=cmd_inspect)
