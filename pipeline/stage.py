"""The stage contract: a stage is a callable `pyarrow.Table -> pyarrow.Table`.

A stage is a plain function, or a small class whose `__init__` loads what it needs once
(a model, a tokenizer) and whose `__call__` maps one batch. Stages never import Ray: the
runner decides where they run. A stage must

- keep every row, in order (it may add or drop columns);
- judge only rows that are still alive (`drop_reason` is null), and reject a row by
  setting `drop_reason`/`drop_stage` with `mark_dropped` (the first reason wins);
- write its scores to columns (scores are data), reading thresholds from config.

This keeps stages testable without Ray and makes every statistic a query over columns.
A stage that runs a child process (extraction) may also have `start()`, which the Ray
worker calls once the stages are built so the child starts early, `close()`, and
`child_cpu_seconds()`, which the runner adds to the worker's own CPU time for the stage's
seconds in timings.json (pipeline/runner.py, `stage_clock`).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S

Stage = Callable[[pa.Table], pa.Table]


def alive_mask(batch: pa.Table) -> pa.ChunkedArray:
    """Boolean mask of rows no stage has dropped yet."""
    return pc.is_null(batch[S.DROP_REASON])


def mark_dropped(
    batch: pa.Table, reject: pa.Array | list[bool], reason: str, stage: str
) -> pa.Table:
    """Set drop_reason/drop_stage on rows where `reject` is true and no reason is set yet."""
    reject = pa.array(reject, pa.bool_()) if isinstance(reject, list) else reject
    newly = pc.and_(pc.fill_null(reject, False), alive_mask(batch))
    reasons = pc.if_else(newly, pa.scalar(reason), batch[S.DROP_REASON])
    stages = pc.if_else(newly, pa.scalar(stage), batch[S.DROP_STAGE])
    batch = batch.set_column(batch.schema.get_field_index(S.DROP_REASON), S.DROP_REASON, reasons)
    return batch.set_column(batch.schema.get_field_index(S.DROP_STAGE), S.DROP_STAGE, stages)


def set_column(batch: pa.Table, name: str, values: pa.Array, type_: pa.DataType) -> pa.Table:
    """Add or replace a column, cast to `type_` (schemas stay exactly as in pipeline.schema)."""
    values = (
        pa.array(values, type_)
        if not isinstance(values, pa.Array | pa.ChunkedArray)
        else values.cast(type_)
    )
    index = batch.schema.get_field_index(name)
    if index < 0:
        return batch.append_column(pa.field(name, type_), values)
    return batch.set_column(index, pa.field(name, type_), values)
