"""A file-based shuffle: each task writes one file, split into one piece per destination.

The global dedup step is a chain of map/reduce rounds (docs/DEDUP.md). Between two rounds
every producer task routes each of its records to one of `n` destinations (a hash
partition, or a range of parts). A producer writes ONE Arrow IPC file holding `n` record
batches, batch i for destination i (empty batches included, so the index is the
destination); the consumer of destination i opens every producer's file and reads only
batch i (the IPC footer gives its offset), never the rest. So:

- a consumer's memory is the records routed to it, not the round's total;
- a round with p producers and n consumers makes p files, not p x n;
- nothing passes through the Ray object store or the driver: tasks exchange file paths
  (the run directory is on a filesystem every node mounts, as the documents phase needs).

Files are written under a temporary name and renamed, so a file that exists is complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa


def write_partitioned(
    path: str | Path, columns: dict[str, np.ndarray | pa.Array], dest: np.ndarray, n: int
) -> int:
    """Write `columns` (equal lengths) to `path`, row i routed to destination dest[i] in
    [0, n). Rows keep their relative order within a destination. Returns rows written."""
    dest = np.asarray(dest, dtype=np.int64)
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(n + 1), side="left")
    arrays = {}
    for name, values in columns.items():
        if isinstance(values, pa.Array | pa.ChunkedArray):
            arrays[name] = pa.concat_arrays(
                values.chunks if isinstance(values, pa.ChunkedArray) else [values]
            ).take(pa.array(order))
        else:
            arrays[name] = pa.array(np.asarray(values)[order])
    schema = pa.schema([(name, array.type) for name, array in arrays.items()])
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for i in range(n):
            start, end = int(bounds[i]), int(bounds[i + 1])
            writer.write_batch(
                pa.record_batch([arrays[name].slice(start, end - start) for name in arrays], schema)
            )
    os.replace(tmp, path)
    return len(dest)


def read_partition(paths: list[str | Path], index: int) -> pa.Table | None:
    """Batch `index` of every file in `paths`, concatenated; None if there are no files."""
    batches = []
    schema = None
    for path in paths:
        with pa.OSFile(str(path), "rb") as source:
            reader = pa.ipc.open_file(source)
            schema = reader.schema
            batch = reader.get_batch(index)
            if batch.num_rows:
                # read_buffer-backed batches are copies: safe after the file closes
                batches.append(batch)
    if schema is None:
        return None
    return pa.Table.from_batches(batches, schema=schema)


def column(table: pa.Table, name: str, dtype) -> np.ndarray:
    """A numeric column as a numpy array (empty arrays keep the dtype)."""
    values = table[name]
    if values.num_chunks == 0 or len(values) == 0:
        return np.empty(0, dtype=dtype)
    return np.asarray(values.combine_chunks() if values.num_chunks > 1 else values.chunk(0)).astype(
        dtype, copy=False
    )
