"""Token shards: Arrow IPC files a trainer memory-maps, plus the manifest that lists them.

A shard is an uncompressed Arrow IPC file (Feather v2) of `schema.SHARD_SCHEMA` rows, one
row per document, tokens as list<uint32>. Uncompressed on purpose: the file can be
memory-mapped and document i's tokens read as a numpy view without reading the rest of
the file (zstd would save ~55% of the bytes but must be decompressed to read; measured
here: ~1.7 bytes/token zstd vs 4 bytes raw).

Determinism: shard boundaries depend only on the rows and `output.shard_tokens`, record
batches always hold `output.rows_per_batch` rows (the last one fewer), and nothing in a
shard or the manifest carries a timestamp, so the same documents give the same bytes.

Shards are written under a temporary name and renamed, and the manifest is written last:
a directory with a manifest.json holds complete shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S

MANIFEST = "manifest.json"
SHARDS_DIR = "shards"
FORMAT_NAME = "crawlmill-shards"
# 1: the first release. 2: shards gain text_chars and quality_score columns, rejected/ rows
# text_chars and n_tokens, the manifest chars per shard, per language and in totals, and
# rejected chars/tokens (docs/REPORT.md). Readers take every version up to FORMAT_VERSION.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class ManifestError(ValueError):
    """A directory whose manifest is missing, foreign or too new to read."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ShardWriter:
    """Append kept documents in their final order; cuts shards at `shard_tokens`."""

    def __init__(self, directory: str | Path, shard_tokens: int, rows_per_batch: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_tokens = shard_tokens
        self.rows_per_batch = rows_per_batch
        self.shards: list[dict] = []  # what the manifest lists
        self._pending: list[pa.Table] = []  # rows not yet written, in order
        self._pending_rows = 0
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._current: dict | None = None

    def add(self, table: pa.Table) -> None:
        """Add rows (any schema holding SHARD_SCHEMA's columns) in order. The statistics
        columns (text_chars, quality_score) may be missing: they are then null."""
        for name in (S.TEXT_CHARS, S.QUALITY_SCORE):
            if name not in table.schema.names:
                field = S.SHARD_SCHEMA.field(name)
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        table = table.select(S.SHARD_SCHEMA.names).cast(S.SHARD_SCHEMA)
        # Walk the rows once, cutting at shard boundaries (cumulative token counts).
        n_tokens = table[S.N_TOKENS].to_numpy()
        start = 0
        while start < table.num_rows:
            if self._current is None:
                self._open()
            room = self.shard_tokens - self._current["tokens"]
            cumulative = np.cumsum(n_tokens[start:])
            # rows up to and including the one that reaches the target stay in this shard
            take = int(np.searchsorted(cumulative, room, side="left")) + 1
            take = min(take, table.num_rows - start)
            part = table.slice(start, take)
            chars = pc.sum(part[S.TEXT_CHARS]).as_py() or 0
            self._append(part, int(cumulative[take - 1]), int(chars))
            start += take
            if self._current["tokens"] >= self.shard_tokens:
                self._close_shard()

    @property
    def docs(self) -> int:
        """Documents added so far (closed shards and the open one)."""
        current = self._current["docs"] if self._current else 0
        return sum(s["docs"] for s in self.shards) + current

    def _open(self) -> None:
        index = len(self.shards)
        name = f"shard-{index:05d}.arrow"
        self._current = {
            "file": f"{SHARDS_DIR}/{name}",
            "docs": 0,
            "tokens": 0,
            "chars": 0,
            "_name": name,
        }
        self._tmp_path = self.directory / f".{name}.tmp"
        self._writer = pa.ipc.new_file(str(self._tmp_path), S.SHARD_SCHEMA)

    def _append(self, part: pa.Table, tokens: int, chars: int) -> None:
        self._pending.append(part)
        self._pending_rows += part.num_rows
        self._current["docs"] += part.num_rows
        self._current["tokens"] += tokens
        self._current["chars"] += chars
        while self._pending_rows >= self.rows_per_batch:
            self._write_pending(self.rows_per_batch)

    def _write_pending(self, rows: int) -> None:
        table = pa.concat_tables(self._pending)
        head, rest = table.slice(0, rows), table.slice(rows)
        # take() copies the rows into fresh contiguous buffers. Written as they are, slices
        # of the same rows can serialise to different bytes depending on how they arrived.
        head = head.take(np.arange(rows)).combine_chunks()
        for batch in head.to_batches(max_chunksize=rows):
            self._writer.write_batch(batch)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _close_shard(self) -> None:
        if self._pending_rows:
            self._write_pending(self._pending_rows)
        self._writer.close()
        name = self._current.pop("_name")
        final = self.directory / name
        os.replace(self._tmp_path, final)
        self._current["bytes"] = final.stat().st_size
        self._current["sha256"] = file_sha256(final)
        self.shards.append(self._current)
        self._current, self._writer = None, None

    def close(self) -> list[dict]:
        if self._current is not None:
            self._close_shard()
        return self.shards


# --- Manifest -----------------------------------------------------------------------------


def write_manifest(directory: str | Path, manifest: dict) -> Path:
    """Write manifest.json atomically (sorted keys, no timestamps: byte-stable)."""
    path = Path(directory) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"{path}: no manifest (not a crawlmill output directory, or the run is unfinished)"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_NAME:
        raise ManifestError(f"{path}: not a crawlmill manifest (format={manifest.get('format')!r})")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ManifestError(
            f"{path}: manifest format_version {version!r} "
            + ("is newer than this crawlmill reads" if newer else "is not one crawlmill knows")
            + f" (it reads {', '.join(map(str, READABLE_VERSIONS))}); "
            + ("upgrade crawlmill" if newer else "the file is damaged or foreign")
        )
    return manifest


# --- Reading shards (what a trainer does) ---------------------------------------------------


class ShardReader:
    """Memory-maps one shard; `tokens(i)` is a zero-copy numpy view of document i.

    Opening reads only the IPC footer and batch metadata; the token bytes are paged in by
    the OS when (and only when) a document is touched.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._source = pa.memory_map(str(self.path), "r")
        self._reader = pa.ipc.open_file(self._source)
        self.schema = self._reader.schema
        self._batches = [self._reader.get_batch(i) for i in range(self._reader.num_record_batches)]
        self._starts = np.cumsum([0] + [b.num_rows for b in self._batches])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[pa.RecordBatch, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"document {i} out of range for {self.path} ({len(self)} docs)")
        b = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._batches[b], i - int(self._starts[b])

    def tokens(self, i: int) -> np.ndarray:
        batch, row = self._locate(i)
        tokens = batch.column(S.TOKENS)
        start, end = tokens.offsets[row].as_py(), tokens.offsets[row + 1].as_py()
        return tokens.values.to_numpy(zero_copy_only=True)[start:end]

    def row(self, i: int) -> dict:
        """Metadata of document i (everything but its tokens)."""
        batch, row = self._locate(i)
        return {
            name: batch.column(name)[row].as_py() for name in self.schema.names if name != S.TOKENS
        }

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.tokens(i)

    def close(self) -> None:
        self._source.close()
