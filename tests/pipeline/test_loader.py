"""TokenLoader: every sequence once per epoch across ranks, the remainder policies, exact
resume, per-epoch reshuffle, document starts, and the optional torch wrapper. Data: packed
directories made by `pipeline.pack.pack` from synthetic shards."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.loader import PackedSequences, TokenLoader, epoch_permutation, position_ids
from pipeline.pack import pack
from tests.synthetic_runs import EOS, lengths_summing_to, write_run

SEQ_LEN = 63  # rows of 64 tokens


def make_packed(directory: Path, sequences: int, seed: int = 0) -> Path:
    """A packed directory of exactly `sequences` rows (the stream has no partial tail)."""
    lengths = lengths_summing_to(sequences * (SEQ_LEN + 1), n_docs=sequences * 2, seed=seed)
    run_dir = write_run(directory / "run", lengths, seed=seed, shard_tokens=2_000)
    manifest = pack(
        run_dir, directory / "packed", seq_len=SEQ_LEN, file_tokens=640, log=lambda *a: None
    )
    assert manifest["counts"]["sequences"] == sequences
    assert manifest["counts"]["tail_tokens"] == 0
    assert len(manifest["files"]) > 5  # rows are spread over many files
    return directory / "packed"


@pytest.fixture(scope="module")
def packed_96(tmp_path_factory) -> Path:
    return make_packed(tmp_path_factory.mktemp("p96"), 96)


@pytest.fixture(scope="module")
def packed_101(tmp_path_factory) -> Path:
    return make_packed(tmp_path_factory.mktemp("p101"), 101, seed=1)


def row_index(packed: Path) -> dict[bytes, int]:
    """Sequence content -> its index (rows are random ids, so unique)."""
    sequences = PackedSequences(packed)
    index = {sequences.tokens(i).tobytes(): i for i in range(len(sequences))}
    assert len(index) == len(sequences)
    return index


def read_epoch(packed: Path, world_size: int, batch_size: int, **kwargs) -> list[list[int]]:
    """Indices of the sequences each rank reads in one epoch, identified by content."""
    index = row_index(packed)
    per_rank = []
    for rank in range(world_size):
        loader = TokenLoader(packed, batch_size, rank=rank, world_size=world_size, **kwargs)
        rows = []
        for batch in loader:
            assert batch.shape == (batch_size, SEQ_LEN + 1) and batch.dtype == np.uint32
            rows += [index[row.tobytes()] for row in batch]
        per_rank.append(rows)
    return per_rank


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_every_sequence_is_read_exactly_once_per_epoch(packed_96, world_size):
    per_rank = read_epoch(packed_96, world_size, batch_size=3, seed=7)
    counts = Counter(itertools.chain.from_iterable(per_rank))
    assert sorted(counts) == list(range(96))
    assert set(counts.values()) == {1}
    assert len({len(rows) for rows in per_rank}) == 1  # every rank gets as many batches


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_remainder_drop_reads_the_rest_once_and_skips_n_mod_global_batch(packed_101, world_size):
    batch_size = 3
    per_rank = read_epoch(packed_101, world_size, batch_size, seed=7)
    counts = Counter(itertools.chain.from_iterable(per_rank))
    skipped = 101 % (world_size * batch_size)
    assert set(counts.values()) == {1}
    assert len(counts) == 101 - skipped
    # the skipped ones are the end of this epoch's permutation, so another epoch reads them
    order = epoch_permutation(101, 7, 0)
    assert set(range(101)) - set(counts) == set(order[101 - skipped :].tolist())
    if skipped:
        assert not set(order[101 - skipped :]) <= set(epoch_permutation(101, 7, 1)[-skipped:])


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_remainder_wrap_reads_every_sequence_and_pads_from_the_start(packed_101, world_size):
    batch_size = 3
    per_rank = read_epoch(packed_101, world_size, batch_size, seed=7, remainder="wrap")
    counts = Counter(itertools.chain.from_iterable(per_rank))
    global_batch = world_size * batch_size
    padding = -101 % global_batch
    assert sorted(counts) == list(range(101))
    twice = {i for i, n in counts.items() if n == 2}
    assert twice == set(epoch_permutation(101, 7, 0)[:padding].tolist())
    assert sum(counts.values()) == 101 + padding


def test_global_batches_depend_only_on_the_global_batch_size(packed_96):
    def global_batches(world_size, batch_size):
        loaders = [
            TokenLoader(packed_96, batch_size, rank=r, world_size=world_size, seed=3)
            for r in range(world_size)
        ]
        return [np.concatenate(step) for step in zip(*loaders, strict=True)]

    reference = global_batches(1, 12)
    for world_size, batch_size in ((2, 6), (4, 3)):
        batches = global_batches(world_size, batch_size)
        assert len(batches) == len(reference) == 8
        assert all((a == b).all() for a, b in zip(batches, reference, strict=True))


def test_each_epoch_reshuffles_and_the_order_is_reproducible(packed_96):
    loader = TokenLoader(packed_96, 4, seed=11)
    epoch0 = np.concatenate(list(loader))
    assert loader.epoch == 1
    epoch1 = np.concatenate(list(loader))
    again = np.concatenate(list(TokenLoader(packed_96, 4, seed=11)))
    other_seed = np.concatenate(list(TokenLoader(packed_96, 4, seed=12)))
    assert (epoch0 == again).all()
    assert not (epoch0 == epoch1).all()
    assert not (epoch0 == other_seed).all()
    # the same sequences each epoch
    assert sorted(map(bytes, epoch0)) == sorted(map(bytes, epoch1))
    in_order = np.concatenate(list(TokenLoader(packed_96, 4, shuffle=False)))
    sequences = PackedSequences(packed_96)
    assert (in_order == np.stack([sequences.tokens(i) for i in range(96)])).all()


def uninterrupted(packed: Path, n_batches: int, **kwargs) -> list[np.ndarray]:
    loader = TokenLoader(packed, **kwargs)
    out = []
    while len(out) < n_batches:
        out += [b.copy() for b in itertools.islice(loader, n_batches - len(out))]
        if loader.step >= len(loader):  # the epoch ran out: finish it, go on with the next
            assert list(loader) == []
    return out


@pytest.mark.parametrize("stop_after", [0, 1, 5, 7, 8, 13, 16])
@pytest.mark.parametrize("rank,world_size", [(0, 1), (1, 2)])
def test_resume_gives_exactly_the_batches_of_an_uninterrupted_read(
    packed_101, stop_after, rank, world_size
):
    """Stop after some batches (7 and 8 are the end of epoch 0 for 1 x 12 rows, 16 is two
    epochs), save the state, build a new loader, load it, read on."""
    kwargs = dict(batch_size=12 // world_size, rank=rank, world_size=world_size, seed=5)
    expected = uninterrupted(packed_101, 20, **kwargs)
    first = TokenLoader(packed_101, **kwargs)
    got = []
    while len(got) < stop_after:
        for batch in first:
            got.append(batch.copy())
            if len(got) == stop_after:
                break
    state = first.state_dict()
    del first
    resumed = TokenLoader(packed_101, **kwargs)
    resumed.load_state_dict(state)
    while len(got) < 20:
        got += [b.copy() for b in itertools.islice(resumed, 20 - len(got))]
    assert len(got) == len(expected) == 20
    assert all((a == b).all() for a, b in zip(got, expected, strict=True))


def test_state_dict_names_the_next_batch(packed_96):
    loader = TokenLoader(packed_96, 4, seed=9)
    batches = list(itertools.islice(loader, 3))
    assert len(batches) == 3
    assert {k: loader.state_dict()[k] for k in ("epoch", "step")} == {"epoch": 0, "step": 3}
    rows = loader.rank_rows(0, 3)
    sequences = PackedSequences(packed_96)
    assert (next(iter(loader)) == np.stack([sequences.tokens(int(i)) for i in rows])).all()


def test_state_after_the_last_batch_points_at_the_next_epoch(packed_96):
    loader = TokenLoader(packed_96, 12)
    for _ in loader:
        state = loader.state_dict()
    assert (state["epoch"], state["step"]) == (1, 0)
    assert (loader.epoch, loader.step) == (1, 0)


def test_resume_refuses_a_state_from_another_setup(packed_96):
    state = TokenLoader(packed_96, 4, seed=1).state_dict()
    for kwargs, key in (({"seed": 2}, "seed"), ({"batch_size": 8}, "global_batch_size")):
        loader = TokenLoader(packed_96, **{"batch_size": 4, "seed": 1, **kwargs})
        with pytest.raises(ValueError, match=key):
            loader.load_state_dict(state)
    # a world size change that keeps the global batch is fine
    TokenLoader(packed_96, 2, rank=1, world_size=2, seed=1).load_state_dict(state)


def test_worker_stripes_interleave_back_to_the_serial_order(packed_96):
    """What DataLoader workers do with TorchIterableDataset: worker w takes steps w, w+k...
    and DataLoader takes one batch from each worker in turn."""
    loader = TokenLoader(packed_96, 4, seed=2)
    serial = [b.copy() for b in TokenLoader(packed_96, 4, seed=2)]
    stripes = [list(loader.iter_steps(w, 3)) for w in range(3)]
    merged = [b for group in itertools.zip_longest(*stripes) for b in group if b is not None]
    assert len(merged) == len(serial) == 24
    assert all((a == b).all() for a, b in zip(merged, serial, strict=True))
    assert (loader.epoch, loader.step) == (0, 0)  # iter_steps does not move the state


def test_int64_batches_and_document_starts(packed_96):
    loader = TokenLoader(packed_96, 4, dtype=np.int64, return_doc_starts=True, shuffle=False)
    tokens, starts = next(iter(loader))
    assert tokens.dtype == np.int64 and tokens.shape == (4, SEQ_LEN + 1)
    assert starts[0][0] == 0  # the stream's first document starts the first row
    stream = tokens.ravel()
    for row, row_starts in enumerate(starts):
        for s in row_starts:
            # a document starts after an EOS (or at the very start of the stream)
            position = row * (SEQ_LEN + 1) + int(s)
            assert position == 0 or stream[position - 1] == EOS
    ends = np.flatnonzero(stream == EOS) + 1  # every EOS is followed by a document start
    listed = {row * (SEQ_LEN + 1) + int(s) for row, r in enumerate(starts) for s in r}
    assert set(ends[ends < len(stream)].tolist()) <= listed


def test_position_ids_restart_at_document_starts():
    positions = position_ids([np.array([0, 3]), np.array([2, 6]), np.array([], np.int32)], 6)
    assert positions.tolist() == [
        [0, 1, 2, 0, 1, 2],
        [0, 1, 0, 1, 2, 3],  # a start at 6 is the target-only last token: no effect
        [0, 1, 2, 3, 4, 5],
    ]


def test_bad_arguments_are_refused(packed_96, tmp_path):
    with pytest.raises(ValueError, match="cannot fill one global batch"):
        TokenLoader(packed_96, 50, world_size=2)
    with pytest.raises(ValueError, match="rank"):
        TokenLoader(packed_96, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="remainder"):
        TokenLoader(packed_96, 4, remainder="pad")
    from pipeline.shards import ManifestError

    with pytest.raises(ManifestError, match="no manifest"):
        TokenLoader(tmp_path, 4)


def test_torch_iterable_dataset(packed_96):
    torch = pytest.importorskip("torch", reason="torch is optional and not installed here")
    from pipeline.loader import TorchIterableDataset

    loader = TokenLoader(packed_96, 4, seed=2)
    serial = [b.astype(np.int64) for b in TokenLoader(packed_96, 4, seed=2)]
    data = torch.utils.data.DataLoader(TorchIterableDataset(loader), batch_size=None)
    batches = list(data)
    assert all(b.dtype == torch.int64 for b in batches)
    assert all((b.numpy() == s).all() for b, s in zip(batches, serial, strict=True))
