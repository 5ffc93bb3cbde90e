"""The trainer's side: batches of packed sequences for data-parallel ranks, resumable.

    from pipeline.loader import TokenLoader

    loader = TokenLoader("out/cc-4k", batch_size=8, rank=rank, world_size=world, seed=0)
    loader.load_state_dict(saved)          # optional: resume exactly where it stopped
    for epoch in range(epochs):
        for batch in loader:               # numpy [8, seq_len + 1], one epoch per loop
            inputs, targets = batch[:, :-1], batch[:, 1:]
            ...
            saved = loader.state_dict()    # {"epoch", "step", ...}: the next batch

A packed directory (`crawlmill pack`, see pipeline/pack.py) holds rows of seq_len + 1
tokens, so a row is already one training example: `inputs = row[:-1]`,
`targets = row[1:]`. The files are memory-mapped; a batch is B row copies out of the page
cache, so the loader costs next to nothing next to a training step (`bench/
loader_throughput.py`).

**Order.** Each epoch visits the N sequences in a permutation keyed by (seed, epoch):
sorting on SplitMix64 of the row number mixed with that key. It is a fixed integer
function, so the order is the same on every rank and every numpy version (a numpy
Generator's stream is not promised stable across versions, and a resumed job may run on
a newer one). Every rank computes the whole permutation: 8 bytes per sequence (10 M
sequences of 4,097 tokens = 41 B tokens = 80 MB), once per epoch.

**Ranks.** Step s of an epoch is the global batch `order[s*W*B : (s+1)*W*B]` (W ranks, B
rows each); rank r takes its B rows `[r*B : (r+1)*B]` of it. The ranks never overlap and
together cover the global batch, and a global batch depends only on W*B: a job restarted
on 4 ranks x 4 rows resumes the 2 x 8 job's batches exactly.

**The remainder.** N is rarely a multiple of W*B. `remainder="drop"` (default) ends the
epoch after floor(N / (W*B)) steps: the last N mod (W*B) rows of that epoch's permutation
are not read in that epoch (they differ per epoch, so no sequence is left out for good),
and every other sequence is read exactly once. `remainder="wrap"` runs ceil(N / (W*B))
steps and fills the last global batch from the start of the permutation (as PyTorch's
DistributedSampler pads): every sequence at least once, the first few twice. Either way
every rank gets the same number of full batches, so no rank waits on another at the end.

**Resume.** `state_dict()` is {"epoch", "step"} (the next global step) plus what must
match to resume (seed, global batch size, sequence count, remainder, shuffle);
`load_state_dict` checks those and the next batch is exactly the one an uninterrupted
run would have yielded. The state is the same on every rank: save rank 0's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.pack import DOC_STARTS, TOKENS, read_packed_manifest, splitmix64

REMAINDER_POLICIES = ("drop", "wrap")


class PackedSequences:
    """Memory-mapped rows of a packed directory; `tokens(i)` is a zero-copy uint32 view."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.manifest = read_packed_manifest(self.directory)
        self.seq_len = self.manifest["seq_len"]
        self.row_len = self.manifest["row_len"]
        self._blocks: list[np.ndarray] = []  # [rows, row_len] views, one per record batch
        self._doc_starts: list[tuple[np.ndarray, np.ndarray]] = []  # (offsets, values)
        sizes = []
        for entry in self.manifest["files"]:
            path = self.directory / entry["file"]
            if path.stat().st_size != entry["bytes"]:
                raise ValueError(
                    f"{path}: {path.stat().st_size} bytes, manifest says {entry['bytes']}"
                )
            reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
            for b in range(reader.num_record_batches):
                batch = reader.get_batch(b)
                values = batch.column(TOKENS).values.to_numpy(zero_copy_only=True)
                self._blocks.append(values.reshape(batch.num_rows, self.row_len))
                starts = batch.column(DOC_STARTS)
                self._doc_starts.append(
                    (starts.offsets.to_numpy(), starts.values.to_numpy(zero_copy_only=False))
                )
                sizes.append(batch.num_rows)
        self._block_starts = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=self._block_starts[1:])
        if len(self) != self.manifest["counts"]["sequences"]:
            raise ValueError(
                f"{self.directory}: {len(self)} sequences in the files, manifest says "
                f"{self.manifest['counts']['sequences']}"
            )

    def __len__(self) -> int:
        return int(self._block_starts[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"sequence {i} out of range ({len(self)} sequences)")
        block = int(np.searchsorted(self._block_starts, i, side="right")) - 1
        return block, i - int(self._block_starts[block])

    def tokens(self, i: int) -> np.ndarray:
        block, row = self._locate(i)
        return self._blocks[block][row]

    def doc_starts(self, i: int) -> np.ndarray:
        """In-row offsets where documents begin (int32)."""
        block, row = self._locate(i)
        offsets, values = self._doc_starts[block]
        return values[offsets[row] : offsets[row + 1]]

    def take(self, indices: np.ndarray, dtype=np.uint32) -> np.ndarray:
        """Rows `indices` copied into one [len(indices), row_len] array of `dtype`."""
        out = np.empty((len(indices), self.row_len), dtype)
        for j, i in enumerate(indices):
            out[j] = self.tokens(int(i))
        return out


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of n sequences in `epoch`: a fixed function of (n, seed, epoch)."""
    key = splitmix64(splitmix64(np.array([seed % 2**64], np.uint64)) ^ np.uint64(epoch % 2**64))
    return np.argsort(splitmix64(np.arange(n, dtype=np.uint64) ^ key), kind="stable")


def position_ids(doc_starts: list[np.ndarray], seq_len: int) -> np.ndarray:
    """Position ids [B, seq_len] for the inputs row[:-1], restarting at 0 at every document
    start (a row's first tokens, the end of an earlier document, also count from 0)."""
    positions = np.empty((len(doc_starts), seq_len), np.int64)
    index = np.arange(seq_len)
    for j, starts in enumerate(doc_starts):
        resets = np.zeros(seq_len, np.int64)
        starts = np.asarray(starts, np.int64)
        starts = starts[starts < seq_len]
        resets[starts] = starts
        positions[j] = index - np.maximum.accumulate(resets)
    return positions


class TokenLoader:
    """Batches [batch_size, seq_len + 1] of one rank's share of a packed directory.

    Iterating runs the rest of the current epoch, then moves the state to the next epoch.
    `dtype` is the yielded array's dtype (uint32 as stored; np.int64 for torch embeddings).
    With `return_doc_starts`, yields (tokens, doc_starts) where doc_starts is a list of B
    int32 arrays of in-row document start offsets.
    """

    def __init__(
        self,
        packed_dir: str | Path,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        remainder: str = "drop",
        dtype=np.uint32,
        return_doc_starts: bool = False,
    ):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"need batch_size >= 1 and 0 <= rank < world_size, got batch_size="
                f"{batch_size}, rank={rank}, world_size={world_size}"
            )
        if remainder not in REMAINDER_POLICIES:
            raise ValueError(f"remainder must be one of {REMAINDER_POLICIES}, got {remainder!r}")
        self.sequences = PackedSequences(packed_dir)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.shuffle, self.remainder = seed, shuffle, remainder
        self.dtype, self.return_doc_starts = dtype, return_doc_starts
        self.global_batch_size = batch_size * world_size
        n = len(self.sequences)
        if remainder == "drop":
            self.steps_per_epoch = n // self.global_batch_size
        else:
            self.steps_per_epoch = -(-n // self.global_batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{packed_dir}: {n} sequences cannot fill one global batch of "
                f"{world_size} x {batch_size}"
            )
        self.epoch, self.step = epoch, 0
        self._order_epoch: int | None = None
        self._order = np.zeros(0, np.int64)

    @property
    def seq_len(self) -> int:
        return self.sequences.seq_len

    def __len__(self) -> int:
        """Batches per epoch (the same on every rank)."""
        return self.steps_per_epoch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Row indices of all global batches of `epoch`, steps_per_epoch * W * B of them."""
        if self._order_epoch != epoch:
            n = len(self.sequences)
            order = epoch_permutation(n, self.seed, epoch) if self.shuffle else np.arange(n)
            # drop: cut the remainder; wrap: fill the last global batch from the start
            self._order = np.resize(order, self.steps_per_epoch * self.global_batch_size)
            self._order_epoch = epoch
        return self._order

    def rank_rows(self, epoch: int, step: int) -> np.ndarray:
        """Rows this rank reads at (epoch, step)."""
        first = step * self.global_batch_size + self.rank * self.batch_size
        return self.epoch_order(epoch)[first : first + self.batch_size]

    def _batch(self, epoch: int, step: int):
        rows = self.rank_rows(epoch, step)
        tokens = self.sequences.take(rows, self.dtype)
        if self.return_doc_starts:
            return tokens, [self.sequences.doc_starts(int(i)) for i in rows]
        return tokens

    def iter_steps(self, offset: int = 0, stride: int = 1) -> Iterator:
        """Batches of the current epoch's remaining steps s with s % stride == offset,
        without moving the state (what a data-loading worker process runs)."""
        epoch = self.epoch
        for step in range(self.step, self.steps_per_epoch):
            if step % stride == offset:
                yield self._batch(epoch, step)

    def __iter__(self) -> Iterator:
        epoch = self.epoch
        while self.epoch == epoch and self.step < self.steps_per_epoch:
            step = self.step
            batch = self._batch(epoch, step)
            self.step = step + 1  # before yielding: state_dict() then names the next batch
            yield batch
        if self.epoch == epoch:
            self.set_epoch(epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0

    def state_dict(self) -> dict:
        epoch, step = self.epoch, self.step
        if step >= self.steps_per_epoch:  # the epoch's last batch was handed out
            epoch, step = epoch + 1, 0
        return {
            "epoch": epoch,
            "step": step,
            "seed": self.seed,
            "global_batch_size": self.global_batch_size,
            "sequences": len(self.sequences),
            "remainder": self.remainder,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume at state's (epoch, step). The other keys, when present, must match this
        loader: another seed, global batch size or data would silently change the order."""
        mine = self.state_dict()
        for key in ("seed", "global_batch_size", "sequences", "remainder", "shuffle"):
            if key in state and state[key] != mine[key]:
                raise ValueError(
                    f"cannot resume: state has {key}={state[key]!r}, this loader {mine[key]!r}"
                )
        if not 0 <= state["step"] <= self.steps_per_epoch:
            raise ValueError(
                f"cannot resume: step {state['step']} is outside 0..{self.steps_per_epoch}"
            )
        self.epoch, self.step = int(state["epoch"]), int(state["step"])


@functools.cache
def _torch_iterable_dataset_class():
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class TorchIterableDataset(IterableDataset):
        """A TokenLoader as a torch IterableDataset of int64 tensors [B, seq_len + 1].

        Use with `DataLoader(dataset, batch_size=None)` (batches are already made). With
        num_workers = k, worker w yields steps w, w + k, ... and DataLoader takes from the
        workers in turn, so the order is the loader's. Workers hold copies of the loader,
        so its state does not advance in the main process: count the batches you consume
        and resume with `loader.load_state_dict({"epoch": e, "step": s})`; then call
        `loader.set_epoch(e + 1)` after each epoch.
        """

        def __init__(self, loader: TokenLoader):
            self.loader = loader

        def __len__(self) -> int:
            return len(self.loader) - self.loader.step

        def __iter__(self):
            info = get_worker_info()
            offset, stride = (0, 1) if info is None else (info.id, info.num_workers)
            for batch in self.loader.iter_steps(offset, stride):
                if self.loader.return_doc_starts:
                    tokens, starts = batch
                    yield torch.from_numpy(tokens.astype(np.int64)), starts
                else:
                    yield torch.from_numpy(batch.astype(np.int64))

    # One class, findable by name, so DataLoader workers started with spawn can pickle it.
    TorchIterableDataset.__module__ = __name__
    TorchIterableDataset.__qualname__ = "TorchIterableDataset"
    return TorchIterableDataset


def __getattr__(name: str):
    # `from pipeline.loader import TorchIterableDataset` imports torch only then (PEP 562):
    # torch is optional and never imported by crawlmill otherwise.
    if name == "TorchIterableDataset":
        return _torch_iterable_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
