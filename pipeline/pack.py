"""Packing: a run's document shards -> fixed-length training sequences (`crawlmill pack`).

A run's shards hold one row per document (tokens ending with EOS). A trainer wants rows of
one fixed length with no padding. Packing concatenates documents end to end into one token
stream and cuts it into rows of `seq_len + 1` tokens:

    stream:  [doc 7 ........ EOS][doc 2 .. EOS][doc 9 ..................... EOS][doc 4 ...
    rows:    |<------ row 0: seq_len + 1 ------>|<------ row 1: seq_len + 1 ------>| ...

**Why seq_len + 1 tokens per row, not overlapping.** A causal LM trains on
`inputs = row[:-1]`, `targets = row[1:]`, so a batch of sequence length L needs L + 1
tokens per row. We store exactly that, and rows do not share tokens. Each row is then
self-contained: the loader reads any row in any order, on any rank, as one zero-copy slice,
with no look-ahead into the next row (which after a shuffle lives elsewhere, possibly in
another file), and every token of the input is stored exactly once (tokens in = tokens
out, checked by the tests). The price: the pair (last token of row i, first token of
row i + 1) is never a training example, 1 of every L + 1 next-token pairs (0.024% at
L = 4096), the same loss as Hugging Face's `group_texts`. Megatron instead overlaps
samples by one token; that keeps the pair but ties each sample to its neighbour.

**Layout (for reading speed).** Each `seqs/seqs-NNNNN.arrow` is an uncompressed Arrow IPC
file of `packed_schema(row_len)`:

- `tokens`: fixed_size_list<uint32>[seq_len + 1]. A record batch's values are one
  contiguous uint32 buffer, so a memory-mapped batch is a zero-copy numpy array of shape
  [rows, seq_len + 1] and row i is a slice of it: no offsets to read, nothing to decode.
- `doc_starts`: list<int32>, the offsets inside the row where a document begins (0 is
  listed only when a document really begins at the row's first token; otherwise the row
  opens with the rest of a document started in an earlier row). For attention masks that
  stop at document boundaries and position ids that restart there
  (`pipeline.loader.position_ids`).

The stream's end that does not fill a whole row (fewer than seq_len + 1 tokens) is the
only partial sequence. It goes to `tail.arrow` (same columns, `tokens` as a variable
list), is counted in the manifest, and is not read by the loader.

**Shuffling, and why at two levels.** Documents are shuffled before concatenation, by
sorting on `blake2b(seed, document id)`: adjacent documents in a run's shards come from
the same WARC file, often the same site, and one row would otherwise hold several pages
of one site. The key depends on the document id and the seed only, not on which shard the
document is in. Rows are reshuffled again by the loader on every epoch by (seed, epoch),
so a second epoch does not repeat the first's order and nothing needs repacking.

**Long-context mix** (`--mix`). Qwen3's long-context stage (Qwen3 Technical Report,
2025, sec. 3.2) pre-trains at sequence length 32,768 on a corpus in which 75% of the text
is 16,384-32,768 tokens long and 25% is 4,096-16,384 (`--mix qwen3-long`). Qwen2.5
(Qwen2.5 Technical Report, 2024, sec. 3.3) extends Qwen2.5-Turbo's context in four stages
(32K, 64K, 128K, 256K) with 40% of each stage's sequences at the stage's maximum length
and 60% shorter, so it does not forget short text. A mix spec lists document-length
buckets with target token shares; `select_documents` picks documents per bucket, by
a second hash of (seed, id), so that the buckets land on their shares (within one
document's tokens), and the manifest reports the achieved shares. See `parse_mix`.

**Memory.** Token ids are never all in RAM. The shards are memory-mapped; packing keeps
36 bytes per document (length, location, two hash keys), up to ~100 while ordering, plus
the output record batch being filled and the one being written (2 x 32 MiB), and copies
each document's tokens from the mapped shard straight into the batch. Measured with
tracemalloc on 46,000 documents / 103 M tokens: 1.6 MB of per-document arrays, 100 MB
peak in all (imports and the two batches included). The documents are read in shuffled
order, so a run much larger than the page cache is read with random access (fine on
local SSDs, slow on network disks).

**Known limit.** Concatenation splits documents at row boundaries: a document of length n
that starts at a uniform offset in a row of L tokens is split with probability ~n / L, so
in a long-context mix many long documents are cut in two (the manifest counts
`docs_split`). Best-fit packing avoids most splits at the cost of some padding (Ding et
al., "Fewer Truncations Improve Language Modeling", ICML 2024); not done here.

Determinism: same source, seq_len, seed and mix -> byte-identical files and manifest
(record batches of a fixed number of rows, built in fresh buffers, no timestamps). Files
are written under temporary names and renamed; manifest.json is written last, so a
directory with a manifest holds complete files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from pipeline import __version__
from pipeline import schema as S
from pipeline.config import parse_yaml, yaml_problem
from pipeline.shards import MANIFEST, ManifestError, file_sha256, read_manifest, write_manifest

PACKED_FORMAT_NAME = "crawlmill-packed"
PACKED_FORMAT_VERSION = 1
SEQS_DIR = "seqs"
TAIL_FILE = "tail.arrow"
TOKENS = "tokens"
DOC_STARTS = "doc_starts"

# Output file and batch sizes, in tokens. 2**28 tokens = 1 GiB of uint32 per file; a
# record batch (what packing holds in RAM at once) is 2**23 tokens = 32 MiB.
DEFAULT_FILE_TOKENS = 1 << 28
BATCH_TOKENS = 1 << 23

MIX_PRESETS = {
    # Qwen3 Technical Report (2025), long-context stage: 75% of the text 16,384-32,768
    # tokens long, 25% 4,096-16,384, trained at sequence length 32,768.
    "qwen3-long": "4096-16384:0.25,16384-32768:0.75",
}


class PackError(ValueError):
    """Input or options that packing cannot work with; the message says what to change."""


def packed_schema(row_len: int) -> pa.Schema:
    return pa.schema([(TOKENS, pa.list_(pa.uint32(), row_len)), (DOC_STARTS, pa.list_(pa.int32()))])


TAIL_SCHEMA = pa.schema([(TOKENS, pa.list_(pa.uint32())), (DOC_STARTS, pa.list_(pa.int32()))])


# --- Deterministic keys ---------------------------------------------------------------------

GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array: a fixed bijective mix, stable across numpy
    versions (unlike a Generator's stream), vectorised. Used for per-epoch and per-copy
    keys derived from integers."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, np.uint64) + GOLDEN64
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def id_key(purpose: str, seed: int, doc_id: str) -> int:
    """A uint64 from (purpose, seed, document id): the same document gets the same key in
    any shard layout. `purpose` separates independent decisions (selection vs order)."""
    digest = hashlib.blake2b(f"{purpose}\0{seed}\0{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# --- The long-context mix -------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """Documents with lo <= n_tokens < hi (n_tokens counts the EOS; hi None = no limit)."""

    lo: int
    hi: int | None
    share: float  # target share of the packed tokens

    @property
    def label(self) -> str:
        return f"{self.lo}-{'' if self.hi is None else self.hi}"

    def mask(self, lengths: np.ndarray) -> np.ndarray:
        inside = lengths >= self.lo
        return inside if self.hi is None else inside & (lengths < self.hi)


def parse_mix(spec: str) -> list[Bucket]:
    """Parse a mix spec: a preset name, a YAML file, or 'LO-HI:SHARE,...'.

    'LO-HI' is a half-open range of document lengths in tokens (EOS included), 'LO-' has no
    upper limit; shares are fractions that must add up to 1, e.g. the Qwen3 long-context
    mix '4096-16384:0.25,16384-32768:0.75' (preset `qwen3-long`). A YAML file holds a
    mapping of the same ranges to shares ('4096-16384: 0.25'). Documents outside every
    bucket are left out of the packed output (and counted in the report).
    """
    spec = spec.strip()
    if spec in MIX_PRESETS:
        spec = MIX_PRESETS[spec]
    if Path(spec).is_file():
        try:
            data = parse_yaml(Path(spec).read_text())
        except yaml.YAMLError as exc:  # a syntax error, or a range given twice
            raise PackError(f"--mix {spec}: not valid YAML: {yaml_problem(exc)}") from None
        if not isinstance(data, dict):
            raise PackError(f"--mix {spec}: expected a YAML mapping 'LO-HI: SHARE'")
        items = [(str(k), v) for k, v in data.items()]
    else:
        items = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if ":" not in part:
                raise PackError(f"--mix: {part!r} is not LO-HI:SHARE (e.g. 4096-16384:0.25)")
            length_range, share = part.rsplit(":", 1)
            items.append((length_range, share))
    if not items:
        raise PackError(f"--mix: {spec!r} lists no bucket")
    buckets = []
    for length_range, share in items:
        lo, sep, hi = length_range.strip().partition("-")
        try:
            bucket = Bucket(int(lo), int(hi) if hi.strip() else None, float(share))
        except ValueError:
            raise PackError(
                f"--mix: {length_range}:{share} is not LO-HI:SHARE with integer token "
                "lengths and a fractional share (e.g. 4096-16384:0.25)"
            ) from None
        if not sep or bucket.lo < 0 or (bucket.hi is not None and bucket.hi <= bucket.lo):
            raise PackError(f"--mix: {length_range!r} is not a length range LO-HI with LO < HI")
        if not 0 < bucket.share <= 1:
            raise PackError(f"--mix: share {share} of {length_range} must be in (0, 1]")
        buckets.append(bucket)
    buckets.sort(key=lambda b: b.lo)
    for a, b in zip(buckets[:-1], buckets[1:], strict=True):
        if a.hi is None or a.hi > b.lo:
            raise PackError(f"--mix: buckets {a.label} and {b.label} overlap")
    total = sum(b.share for b in buckets)
    if abs(total - 1) > 1e-6:
        raise PackError(f"--mix: shares add up to {total:g}, not 1")
    return buckets


def _prefix_closest_to(cumulative: np.ndarray, budget: float) -> int:
    """How many leading items make a total closest to `budget` (cumulative = their sums)."""
    k = int(np.searchsorted(cumulative, budget, side="left"))  # cumulative[k] >= budget
    if k >= len(cumulative):
        return len(cumulative)
    below = budget - (cumulative[k - 1] if k > 0 else 0)
    return k if below <= cumulative[k] - budget else k + 1


def select_documents(
    lengths: np.ndarray,
    select_keys: np.ndarray,
    buckets: list[Bucket],
    target_tokens: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pick documents (and copies of them) so the buckets get their token shares.

    Returns (document index, copy number, report). The output size T is `target_tokens`
    if given, else the largest size no bucket needs repeats for: min over buckets of
    available_tokens / share (the scarcest bucket is taken whole). Each bucket's budget is
    share * T: it contributes floor(budget / available) full copies of all its documents,
    then the documents with the smallest selection keys until the budget is closest. That
    is a uniform random sample (the keys are hashes), exact to within one document, and
    the same document always wins or loses the same way for a given seed.
    """
    report: dict = {"buckets": []}
    in_some_bucket = np.zeros(len(lengths), bool)
    available = []
    for bucket in buckets:
        members = np.flatnonzero(bucket.mask(lengths))
        in_some_bucket[members] = True
        tokens = int(lengths[members].sum())
        if tokens == 0:
            raise PackError(f"--mix: no document has a length in {bucket.label}")
        available.append((members, tokens))
    if target_tokens is None:
        target_tokens = min(
            tokens / b.share for b, (_, tokens) in zip(buckets, available, strict=True)
        )
    docs, copies = [], []
    selected_total = 0
    for bucket, (members, tokens) in zip(buckets, available, strict=True):
        budget = bucket.share * target_tokens
        full_copies = math.floor(budget / tokens + 1e-9)
        remainder = max(0.0, budget - full_copies * tokens)
        ranked = members[np.argsort(select_keys[members], kind="stable")]
        k = _prefix_closest_to(np.cumsum(lengths[ranked]), remainder)
        bucket_docs = [np.repeat(members[None, :], full_copies, axis=0).ravel(), ranked[:k]]
        bucket_copies = [np.repeat(np.arange(full_copies), len(members)), np.full(k, full_copies)]
        docs += bucket_docs
        copies += bucket_copies
        selected = int(lengths[ranked[:k]].sum()) + full_copies * tokens
        selected_total += selected
        report["buckets"].append(
            {
                "range": bucket.label,
                "target_share": bucket.share,
                "available_docs": len(members),
                "available_tokens": tokens,
                "selected_docs": full_copies * len(members) + k,
                "selected_tokens": selected,
                "sampling_rate": round(selected / tokens, 6),
            }
        )
    for row in report["buckets"]:
        row["achieved_share"] = round(row["selected_tokens"] / max(selected_total, 1), 6)
    report["target_tokens"] = int(round(target_tokens))
    report["selected_tokens"] = selected_total
    report["excluded_docs"] = int((~in_some_bucket).sum())
    report["excluded_tokens"] = int(lengths[~in_some_bucket].sum())
    report["max_share_error"] = round(
        max(abs(r["achieved_share"] - r["target_share"]) for r in report["buckets"]), 6
    )
    doc_index = np.concatenate(docs).astype(np.int64)
    copy_index = np.concatenate(copies).astype(np.int64)
    return doc_index, copy_index, report


# --- Reading the source run ------------------------------------------------------------------


@dataclass
class SourceDocuments:
    """Where every document of a run lives, without reading its tokens.

    `values[array][start : start + length]` is document i's tokens (array = arrays[i],
    start = starts[i], length = lengths[i]), a zero-copy view into a memory-mapped shard.
    """

    lengths: np.ndarray  # int64, tokens per document (EOS included)
    arrays: np.ndarray  # int32, index into `values`
    starts: np.ndarray  # int64, offset of the document in its values array
    values: list[np.ndarray]  # uint32 token buffers, one per record batch of each shard
    select_keys: np.ndarray  # uint64, blake2b("select", seed, id)
    order_keys: np.ndarray  # uint64, blake2b("order", seed, id)

    def tokens(self, i: int) -> np.ndarray:
        start = self.starts[i]
        return self.values[self.arrays[i]][start : start + self.lengths[i]]


def read_source(directory: Path, manifest: dict, seed: int) -> SourceDocuments:
    lengths, arrays, starts, values, select_keys, order_keys = [], [], [], [], [], []
    for shard in manifest["shards"]:
        reader = pa.ipc.open_file(pa.memory_map(str(directory / shard["file"]), "r"))
        for b in range(reader.num_record_batches):
            batch = reader.get_batch(b)
            tokens = batch.column(S.TOKENS)
            offsets = tokens.offsets.to_numpy().astype(np.int64)
            arrays.append(np.full(len(offsets) - 1, len(values), np.int32))
            starts.append(offsets[:-1])
            lengths.append(np.diff(offsets))
            values.append(tokens.values.to_numpy(zero_copy_only=True))
            ids = batch.column(S.ID).to_pylist()
            select_keys.append(np.array([id_key("select", seed, i) for i in ids], np.uint64))
            order_keys.append(np.array([id_key("order", seed, i) for i in ids], np.uint64))

    def joined(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return SourceDocuments(
        lengths=joined(lengths, np.int64),
        arrays=joined(arrays, np.int32),
        starts=joined(starts, np.int64),
        values=values,
        select_keys=joined(select_keys, np.uint64),
        order_keys=joined(order_keys, np.uint64),
    )


# --- Writing ---------------------------------------------------------------------------------


class Stream:
    """The shuffled documents as one virtual token stream; copies ranges of it out."""

    def __init__(self, source: SourceDocuments, doc_index: np.ndarray, order: np.ndarray):
        self.source = source
        self.docs = doc_index[order]  # stream item -> source document
        self.item_starts = np.zeros(len(self.docs) + 1, np.int64)
        np.cumsum(source.lengths[self.docs], out=self.item_starts[1:])
        self.total = int(self.item_starts[-1])

    def copy(self, start: int, end: int, out: np.ndarray) -> None:
        """Tokens [start, end) of the stream into `out` (length end - start)."""
        first = int(np.searchsorted(self.item_starts, start, side="right")) - 1
        position = start
        item = first
        while position < end:
            item_start = int(self.item_starts[item])
            tokens = self.source.tokens(int(self.docs[item]))
            piece = tokens[position - item_start : min(len(tokens), end - item_start)]
            out[position - start : position - start + len(piece)] = piece
            position += len(piece)
            item += 1

    def doc_starts(self, row_starts: np.ndarray, row_ends: np.ndarray) -> pa.ListArray:
        """For each row [row_starts[j], row_ends[j]), the in-row offsets of document starts."""
        item_starts = self.item_starts[:-1]
        first = np.searchsorted(item_starts, row_starts, side="left")
        last = np.searchsorted(item_starts, row_ends, side="left")
        counts = last - first
        offsets = np.zeros(len(row_starts) + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        if len(row_starts) and counts.sum():
            rows = np.repeat(np.arange(len(row_starts)), counts)
            positions = item_starts[first[0] : last[-1]] - row_starts[rows]
        else:
            positions = np.zeros(0, np.int64)
        return pa.ListArray.from_arrays(
            pa.array(offsets), pa.array(positions.astype(np.int32), pa.int32())
        )


def _write_ipc(path: Path, schema: pa.Schema, batches) -> dict:
    """Write record batches to `path` atomically (temp name + rename); its manifest entry."""
    tmp = path.with_name(f".{path.name}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        rows = 0
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    os.replace(tmp, path)
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _row_batches(stream: Stream, schema: pa.Schema, row_len: int, first: int, last: int, step):
    """Record batches of rows [first, last), `step` rows each (the last one fewer)."""
    for r0 in range(first, last, step):
        r1 = min(r0 + step, last)
        buffer = np.empty((r1 - r0) * row_len, np.uint32)
        stream.copy(r0 * row_len, r1 * row_len, buffer)
        row_starts = np.arange(r0, r1, dtype=np.int64) * row_len
        tokens = pa.FixedSizeListArray.from_arrays(pa.array(buffer), row_len)
        yield pa.record_batch([tokens, stream.doc_starts(row_starts, row_starts + row_len)], schema)


def _prepare_output(out: Path, source: Path) -> None:
    """Create `out`, or check it is an earlier packed output that may be rewritten."""
    if out.resolve() == source.resolve():
        raise PackError(f"-o {out}: the output must not be the source run directory")
    if out.exists() and not out.is_dir():
        raise PackError(f"-o {out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        manifest = out / MANIFEST
        ours = {MANIFEST, SEQS_DIR, TAIL_FILE}
        unknown = [p.name for p in out.iterdir() if p.name not in ours and p.suffix != ".tmp"]
        previous = json.loads(manifest.read_text()).get("format") if manifest.exists() else None
        if unknown or (manifest.exists() and previous != PACKED_FORMAT_NAME):
            raise PackError(
                f"-o {out} exists and is not a packed directory (holds {sorted(unknown)[:3]} "
                f"or a {previous!r} manifest); choose another output directory"
            )
        manifest.unlink(missing_ok=True)  # from here on the directory is incomplete
    (out / SEQS_DIR).mkdir(parents=True, exist_ok=True)


def pack(
    source: str | Path,
    output: str | Path,
    seq_len: int,
    seed: int = 0,
    mix: list[Bucket] | None = None,
    target_tokens: int | None = None,
    file_tokens: int = DEFAULT_FILE_TOKENS,
    log=print,
) -> dict:
    """Pack the run in `source` into rows of seq_len + 1 tokens in `output`; returns the
    manifest written there."""
    source, out = Path(source), Path(output)
    if seq_len < 1:
        raise PackError(f"--seq-len must be a positive integer, got {seq_len}")
    if file_tokens < 1:
        raise PackError(f"--file-tokens must be a positive integer, got {file_tokens}")
    if target_tokens is not None and not mix:
        raise PackError("--target-tokens needs --mix (it sets the size of the mixed output)")
    source_manifest = read_manifest(source)
    tokenizer = source_manifest["tokenizer"]
    if not tokenizer.get("append_eos", True):
        raise PackError(
            f"{source} was tokenized with tokenizer.append_eos: false; packing joins documents "
            "end to end and needs each to end with EOS (rerun with tokenizer.append_eos: true)"
        )
    _prepare_output(out, source)
    row_len = seq_len + 1

    docs = read_source(source, source_manifest, seed)
    if mix:
        doc_index, copy_index, mix_report = select_documents(
            docs.lengths, docs.select_keys, mix, target_tokens
        )
    else:
        doc_index = np.arange(len(docs.lengths), dtype=np.int64)
        copy_index = np.zeros(len(doc_index), np.int64)
        mix_report = None
    # Order: by the document's order key; a repeated document's copies get keys mixed from
    # it, so copies land apart. Stable sort: ties (never seen in 64 bits) keep input order.
    keys = docs.order_keys[doc_index]
    repeated = copy_index > 0
    keys[repeated] = splitmix64(keys[repeated] ^ splitmix64(copy_index[repeated]))
    stream = Stream(docs, doc_index, np.argsort(keys, kind="stable"))

    rows = stream.total // row_len
    rows_per_file = max(1, file_tokens // row_len)
    batch_rows = min(rows_per_file, max(1, BATCH_TOKENS // row_len))
    schema = packed_schema(row_len)
    files = []
    for index, first in enumerate(range(0, rows, rows_per_file)):
        last = min(first + rows_per_file, rows)
        name = f"{SEQS_DIR}/seqs-{index:05d}.arrow"
        entry = _write_ipc(
            out / name, schema, _row_batches(stream, schema, row_len, first, last, batch_rows)
        )
        files.append({"file": name, "sequences": entry["rows"], **_sans_rows(entry)})
        log(f"  wrote {name}: {entry['rows']:,} sequences ({last:,}/{rows:,})")
    for stale in sorted((out / SEQS_DIR).iterdir()):
        if f"{SEQS_DIR}/{stale.name}" not in {f["file"] for f in files}:
            stale.unlink()

    tail_tokens = stream.total - rows * row_len
    buffer = np.empty(tail_tokens, np.uint32)
    stream.copy(rows * row_len, stream.total, buffer)
    tail_rows = (
        [
            pa.record_batch(
                [
                    pa.ListArray.from_arrays(
                        pa.array([0, tail_tokens], pa.int32()), pa.array(buffer)
                    ),
                    stream.doc_starts(np.array([rows * row_len]), np.array([stream.total])),
                ],
                TAIL_SCHEMA,
            )
        ]
        if tail_tokens
        else []
    )
    tail = _write_ipc(out / TAIL_FILE, TAIL_SCHEMA, tail_rows)

    # A document is split when its first and last tokens fall in different rows.
    item_first = stream.item_starts[:-1]
    item_last = stream.item_starts[1:] - 1
    docs_split = int(((item_first // row_len) != (item_last // row_len)).sum())
    manifest = {
        "format": PACKED_FORMAT_NAME,
        "format_version": PACKED_FORMAT_VERSION,
        "crawlmill_version": __version__,
        "seq_len": seq_len,
        "row_len": row_len,
        "seed": seed,
        "layout": (
            f"rows of seq_len + 1 = {row_len} tokens (inputs row[:-1], targets row[1:]), "
            "no overlap; tokens fixed_size_list<uint32>, doc_starts list<int32>"
        ),
        "shuffle": "documents sorted by blake2b(order, seed, id); the loader reshuffles "
        "sequences per (seed, epoch)",
        "source": {
            "directory": str(source),
            "manifest_sha256": file_sha256(source / MANIFEST),
            "docs": int(len(docs.lengths)),
            "tokens": int(docs.lengths.sum()),
        },
        "tokenizer": tokenizer,
        "counts": {
            "docs_in": int(len(docs.lengths)),
            "tokens_in": int(docs.lengths.sum()),
            "docs_packed": int(len(doc_index)),
            "docs_repeated": int(repeated.sum()),
            "docs_split": docs_split,
            "tokens_packed": stream.total,
            "sequences": rows,
            "tokens_in_sequences": rows * row_len,
            "tail_tokens": tail_tokens,
        },
        "files": files,
        "tail": {"file": TAIL_FILE, "tokens": tail_tokens, **_sans_rows(tail)},
        "mix": mix_report,
    }
    write_manifest(out, manifest)
    return manifest


def _sans_rows(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "rows"}


def read_packed_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest (not a packed directory, or packing unfinished)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != PACKED_FORMAT_NAME:
        raise ManifestError(
            f"{path}: not a packed directory (format={manifest.get('format')!r}); "
            "make one with `crawlmill pack`"
        )
    if manifest.get("format_version", 0) > PACKED_FORMAT_VERSION:
        raise ManifestError(
            f"{path}: packed format_version {manifest['format_version']} is newer than this "
            f"crawlmill reads ({PACKED_FORMAT_VERSION}); upgrade crawlmill"
        )
    return manifest


# --- CLI ---------------------------------------------------------------------------------------

EPILOG = """\
examples:
  crawlmill pack out/cc --seq-len 4096 -o out/cc-4k
  crawlmill pack out/cc --seq-len 32768 --mix qwen3-long -o out/cc-32k-long
  crawlmill pack out/cc --seq-len 32768 -o out/cc-32k-mix --seed 1 \\
      --mix '0-16384:0.6,16384-32769:0.4' --target-tokens 2000000000

Output: PACKED/manifest.json (counts, tail, mix report, tokenizer), PACKED/seqs/*.arrow
(rows of seq_len + 1 tokens + document starts), PACKED/tail.arrow (the one partial
sequence). Read it with pipeline.loader.TokenLoader. Same input, options and seed give
byte-identical files.
"""


def format_report(manifest: dict) -> str:
    counts = manifest["counts"]
    lines = [
        f"sequences: {counts['sequences']:,} x {manifest['row_len']:,} tokens "
        f"(seq_len {manifest['seq_len']:,} + 1) in {len(manifest['files'])} file(s)",
        f"documents: {counts['docs_in']:,} in, {counts['docs_packed']:,} packed "
        f"({counts['docs_repeated']:,} repeats), {counts['docs_split']:,} split across rows",
        f"tokens:    {counts['tokens_in']:,} in, {counts['tokens_packed']:,} packed = "
        f"{counts['tokens_in_sequences']:,} in sequences + {counts['tail_tokens']:,} in the "
        "partial tail",
    ]
    mix = manifest["mix"]
    if mix:
        lines.append(
            f"mix:       {mix['selected_tokens']:,} tokens selected (target "
            f"{mix['target_tokens']:,}); {mix['excluded_docs']:,} docs "
            f"({mix['excluded_tokens']:,} tokens) outside every bucket"
        )
        lines.append(
            f"           {'bucket':<14} {'target':>7} {'achieved':>9} {'docs':>9} "
            f"{'tokens':>14} {'sampled':>8}"
        )
        for b in mix["buckets"]:
            lines.append(
                f"           {b['range']:<14} {b['target_share']:>7.1%} "
                f"{b['achieved_share']:>9.2%} {b['selected_docs']:>9,} "
                f"{b['selected_tokens']:>14,} {b['sampling_rate']:>8.3f}"
            )
    return "\n".join(lines)


def _mix_argument(value: str) -> list[Bucket]:
    try:
        return parse_mix(value)
    except PackError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_pack(args: argparse.Namespace) -> int:
    try:
        manifest = pack(
            args.directory,
            args.output,
            seq_len=args.seq_len,
            seed=args.seed,
            mix=args.mix,
            target_tokens=args.target_tokens,
            file_tokens=args.file_tokens,
        )
    except (PackError, ManifestError, FileNotFoundError) as exc:
        print(f"crawlmill pack: error: {exc}", file=sys.stderr)
        return 2
    print(format_report(manifest))
    return 0


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "pack",
        help="pack a run's documents into fixed-length training sequences",
        description=(
            "Concatenate the documents of a crawlmill run (each ending with EOS), shuffled\n"
            "by --seed, and cut the stream into rows of seq_len + 1 tokens (inputs row[:-1],\n"
            "targets row[1:]) with the offsets where documents start. No padding: only the\n"
            "stream's last, partial row is left over (tail.arrow, reported). With --mix,\n"
            "documents are first sampled by length bucket to target token shares."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", metavar="DIR", help="a crawlmill run directory")
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="PACKED",
        help="directory to write (new, or an earlier packed output, which is replaced)",
    )
    parser.add_argument(
        "--seq-len",
        type=int,
        default=4096,
        metavar="N",
        help="training sequence length; rows hold N + 1 tokens (default: 4096)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the document shuffle and of --mix sampling (default: 0)",
    )
    parser.add_argument(
        "--mix",
        type=_mix_argument,
        default=None,
        metavar="SPEC",
        help="document-length buckets with target token shares: 'LO-HI:SHARE,...' (lengths "
        "in tokens incl. EOS, LO <= n < HI, 'LO-' unbounded, shares add up to 1), a YAML "
        f"file mapping 'LO-HI' to shares, or a preset: {', '.join(MIX_PRESETS)} "
        f"(= {MIX_PRESETS['qwen3-long']}, Qwen3's long-context stage). Documents outside "
        "every bucket are left out. Default: no mix, every document once",
    )
    parser.add_argument(
        "--target-tokens",
        type=int,
        default=None,
        metavar="N",
        help="with --mix: tokens to select in total; buckets short of their share are "
        "repeated (whole copies, then a sample). Default: the most the scarcest bucket "
        "allows without repeats",
    )
    parser.add_argument(
        "--file-tokens",
        type=int,
        default=DEFAULT_FILE_TOKENS,
        metavar="N",
        help=f"tokens per output file, rounded down to whole rows (default: {DEFAULT_FILE_TOKENS:,}"
        ", 1 GiB of uint32)",
    )
    parser.set_defaults(func=cmd_pack)
