"""Packing: tokens in = tokens out, document starts, determinism, shuffle, the long-context
mix, the output directory's life cycle and the CLI. The real run is the bundled sample
through the whole pipeline on a local Ray; the rest are synthetic shards."""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import load_config
from pipeline.pack import (
    MIX_PRESETS,
    PackError,
    add_command,
    pack,
    parse_mix,
    read_packed_manifest,
    select_documents,
)
from pipeline.runner import run
from pipeline.shards import ShardReader, file_sha256, read_manifest
from tests.helpers import QUALITY_RULES_OFF
from tests.synthetic_runs import EOS, write_run


@pytest.fixture(scope="module")
def sample_run(ray_local, sample_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack-run") / "run"
    # every real document of the sample: packing, not filtering, is under test here
    cfg = load_config(None, QUALITY_RULES_OFF)
    run(cfg, [str(sample_dir)], out, num_cpus=2, log=lambda *a: None)
    return out


def source_documents(run_dir: Path) -> list[tuple[int, ...]]:
    docs = []
    for shard in read_manifest(run_dir)["shards"]:
        reader = ShardReader(run_dir / shard["file"])
        docs += [tuple(reader.tokens(i).tolist()) for i in range(len(reader))]
    return docs


def packed_stream(packed: Path) -> tuple[np.ndarray, np.ndarray]:
    """(all tokens of all rows in file order, then the tail; global document starts),
    read with plain pyarrow, independently of the loader."""
    manifest = read_packed_manifest(packed)
    tokens, starts, position = [], [], 0
    for name in [f["file"] for f in manifest["files"]] + [manifest["tail"]["file"]]:
        table = pa.ipc.open_file(pa.memory_map(str(packed / name))).read_all()
        for row_tokens, row_starts in zip(
            table["tokens"].to_pylist(), table["doc_starts"].to_pylist(), strict=True
        ):
            tokens.append(np.array(row_tokens, np.uint32))
            starts += [position + s for s in row_starts]
            position += len(row_tokens)
    return np.concatenate(tokens), np.array(starts, np.int64)


def packed_documents(packed: Path) -> list[tuple[int, ...]]:
    stream, starts = packed_stream(packed)
    assert starts[0] == 0  # the stream begins with a document
    bounds = [*starts.tolist(), len(stream)]
    return [tuple(stream[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def digest_documents(docs) -> Counter:
    return Counter(hashlib.blake2b(np.asarray(d, np.uint32).tobytes()).hexdigest() for d in docs)


# --- The real run -----------------------------------------------------------------------------


def test_tokens_in_equal_tokens_out_on_the_real_run(sample_run, tmp_path):
    manifest = pack(sample_run, tmp_path / "packed", seq_len=512, log=lambda *a: None)
    source = source_documents(sample_run)
    counts = manifest["counts"]
    assert counts["tokens_in"] == read_manifest(sample_run)["totals"]["tokens"] > 600_000
    assert counts["tokens_packed"] == counts["tokens_in"]
    assert counts["tokens_in_sequences"] + counts["tail_tokens"] == counts["tokens_in"]
    assert counts["sequences"] == counts["tokens_in"] // 513
    assert 0 <= counts["tail_tokens"] < 513
    # cutting the packed stream at its document starts gives back exactly the documents
    packed = packed_documents(tmp_path / "packed")
    assert sorted(packed) == sorted(source)
    assert all(doc[-1] == EOS and EOS not in doc[:-1] for doc in packed)
    # shuffled: not the source order
    assert packed != source
    assert manifest["tokenizer"] == read_manifest(sample_run)["tokenizer"]
    assert manifest["source"]["manifest_sha256"] == file_sha256(sample_run / "manifest.json")


def test_rows_are_fixed_length_memory_mapped_arrays(sample_run, tmp_path):
    manifest = pack(sample_run, tmp_path / "p", seq_len=1024, log=lambda *a: None)
    reader = pa.ipc.open_file(pa.memory_map(str(tmp_path / "p" / manifest["files"][0]["file"])))
    assert reader.schema.field("tokens").type == pa.list_(pa.uint32(), 1025)
    batch = reader.get_batch(0)
    rows = batch.column("tokens").values.to_numpy(zero_copy_only=True).reshape(-1, 1025)
    assert rows.shape == (batch.num_rows, 1025)
    assert sum(f["sequences"] for f in manifest["files"]) == manifest["counts"]["sequences"]


# --- Determinism and shuffle ------------------------------------------------------------------


def test_same_input_and_seed_give_identical_bytes(tmp_path):
    run_dir = write_run(tmp_path / "run", np.full(300, 97), shard_tokens=5_000)
    shas = []
    for name in ("a", "b"):
        pack(run_dir, tmp_path / name, seq_len=128, file_tokens=3_000, log=lambda *a: None)
        files = sorted((tmp_path / name).rglob("*.arrow"))
        assert len(files) > 3
        shas.append([(f.relative_to(tmp_path / name), file_sha256(f)) for f in files])
        shas[-1].append(("manifest", file_sha256(tmp_path / name / "manifest.json")))
    assert shas[0] == shas[1]
    pack(run_dir, tmp_path / "c", seq_len=128, seed=1, log=lambda *a: None)
    assert packed_documents(tmp_path / "c") != packed_documents(tmp_path / "a")
    assert sorted(packed_documents(tmp_path / "c")) == sorted(packed_documents(tmp_path / "a"))


def test_shuffle_mixes_shards_and_ignores_the_shard_layout(tmp_path):
    lengths = np.random.default_rng(0).integers(20, 200, 2_000)
    few = write_run(tmp_path / "few", lengths, shard_tokens=10**9)  # one shard
    many = write_run(tmp_path / "many", lengths, shard_tokens=20_000, rows_per_batch=7)
    assert len(read_manifest(many)["shards"]) > 10
    for run_dir in (few, many):
        pack(run_dir, tmp_path / f"{run_dir.name}-packed", seq_len=256, log=lambda *a: None)
    # the order is a function of (seed, document id): same documents, same packed bytes
    a = read_packed_manifest(tmp_path / "few-packed")["files"]
    b = read_packed_manifest(tmp_path / "many-packed")["files"]
    assert [f["sha256"] for f in a] == [f["sha256"] for f in b]
    # the first 100 packed documents come from all over the source
    source = {doc: i for i, doc in enumerate(source_documents(many))}
    positions = [source[doc] for doc in packed_documents(tmp_path / "many-packed")[:100]]
    assert np.histogram(positions, bins=10, range=(0, 2_000))[0].min() >= 3


def test_many_documents_many_files_nothing_lost(tmp_path):
    rng = np.random.default_rng(1)
    lengths = np.concatenate([rng.integers(2, 120, 40_000), rng.integers(3_000, 9_000, 50)])
    run_dir = write_run(tmp_path / "run", lengths, shard_tokens=400_000, rows_per_batch=1024)
    manifest = pack(run_dir, tmp_path / "p", seq_len=2048, file_tokens=300_000, log=lambda *a: None)
    assert len(manifest["files"]) > 5
    assert manifest["counts"]["tokens_packed"] == int(lengths.sum())
    assert digest_documents(packed_documents(tmp_path / "p")) == digest_documents(
        source_documents(run_dir)
    )
    # a document longer than a row spans several rows
    assert manifest["counts"]["docs_split"] >= 50


# --- The long-context mix ---------------------------------------------------------------------


def long_tailed_lengths(n: int, seed: int = 0) -> np.ndarray:
    """Web-like document lengths: log-normal, median ~1,100 tokens, a long tail past 32K."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(7.0, 1.5, n), 2, 200_000).astype(np.int64)


@pytest.mark.parametrize(
    "spec",
    [
        MIX_PRESETS["qwen3-long"],  # Qwen3: 25% 4K-16K, 75% 16K-32K
        "0-16384:0.6,16384-:0.4",  # Qwen2.5-Turbo-like: 40% long, 60% shorter
        "0-1024:0.1,1024-4096:0.2,4096-16384:0.3,16384-65536:0.4",
    ],
)
def test_mix_lands_within_two_points_of_its_targets(spec):
    lengths = long_tailed_lengths(200_000)
    keys = np.random.default_rng(1).integers(0, 2**63, len(lengths), dtype=np.uint64)
    buckets = parse_mix(spec)
    docs, copies, report = select_documents(lengths, keys, buckets)
    selected = lengths[docs]
    for bucket, row in zip(buckets, report["buckets"], strict=True):
        achieved = selected[bucket.mask(selected)].sum() / selected.sum()
        assert abs(achieved - bucket.share) < 0.02
        assert row["achieved_share"] == pytest.approx(achieved, abs=1e-6)
    assert report["max_share_error"] < 0.02
    assert (copies == 0).all()  # without --target-tokens nothing repeats
    assert len(set(docs.tolist())) == len(docs)
    # the scarcest bucket is taken whole
    assert max(row["sampling_rate"] for row in report["buckets"]) == 1.0


def test_mix_with_a_token_target_repeats_the_scarce_bucket():
    lengths = long_tailed_lengths(50_000, seed=3)
    keys = np.random.default_rng(2).integers(0, 2**63, len(lengths), dtype=np.uint64)
    buckets = parse_mix("qwen3-long")
    available = sum(lengths[b.mask(lengths)].sum() for b in buckets)
    target = int(available * 3)
    docs, copies, report = select_documents(lengths, keys, buckets, target_tokens=target)
    assert copies.max() >= 2  # some documents appear three times or more
    assert abs(lengths[docs].sum() - target) / target < 0.001
    assert report["max_share_error"] < 0.02
    # (document, copy) pairs are unique: a copy is never the same item twice
    assert len(set(zip(docs.tolist(), copies.tolist(), strict=True))) == len(docs)


def test_packed_output_matches_the_mix_it_reports(tmp_path):
    """Through the files: lengths of the documents found in the packed stream."""
    lengths = np.clip(long_tailed_lengths(6_000, seed=5) // 16, 2, None)  # median ~70
    run_dir = write_run(tmp_path / "run", lengths, shard_tokens=200_000)
    spec = "0-64:0.2,64-256:0.3,256-2048:0.5"
    manifest = pack(run_dir, tmp_path / "p", seq_len=1024, mix=parse_mix(spec), log=print)
    found = np.array([len(doc) for doc in packed_documents(tmp_path / "p")])
    assert found.sum() == manifest["counts"]["tokens_packed"] == manifest["mix"]["selected_tokens"]
    for bucket, row in zip(parse_mix(spec), manifest["mix"]["buckets"], strict=True):
        achieved = found[bucket.mask(found)].sum() / found.sum()
        assert abs(achieved - bucket.share) < 0.02
        assert achieved == pytest.approx(row["achieved_share"], abs=1e-6)
    assert manifest["mix"]["excluded_docs"] == int((lengths >= 2048).sum())
    # selection depends on (seed, id): the same seed picks the same documents
    pack(run_dir, tmp_path / "q", seq_len=512, mix=parse_mix(spec), log=lambda *a: None)
    assert sorted(packed_documents(tmp_path / "q")) == sorted(packed_documents(tmp_path / "p"))


def test_mix_spec_parsing(tmp_path):
    assert [(b.lo, b.hi, b.share) for b in parse_mix("qwen3-long")] == [
        (4096, 16384, 0.25),
        (16384, 32768, 0.75),
    ]
    spec_file = tmp_path / "mix.yaml"
    spec_file.write_text("16384-: 0.4\n0-16384: 0.6\n")
    assert [(b.lo, b.hi, b.share) for b in parse_mix(str(spec_file))] == [
        (0, 16384, 0.6),
        (16384, None, 0.4),
    ]
    bad = {
        "0-10:0.5,5-20:0.5": "overlap",
        "0-10:0.5,10-20:0.4": "add up to 0.9",
        "0-10": "LO-HI:SHARE",
        "ten-20:1": "integer",
        "20-10:1": "LO < HI",
        "0-10:0": "share",
        "": "no bucket",
    }
    for spec, message in bad.items():
        with pytest.raises(PackError, match=message):
            parse_mix(spec)
    twice = tmp_path / "twice.yaml"  # PyYAML alone would keep the second share
    twice.write_text("0-16384: 0.6\n16384-: 0.2\n16384-: 0.4\n")
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("0-16384: [0.6\n")
    for path, message in [(twice, "duplicate key '16384-'"), (syntax, "not valid YAML")]:
        with pytest.raises(PackError, match=message):
            parse_mix(str(path))


def test_a_bucket_without_documents_is_an_error():
    with pytest.raises(PackError, match="no document has a length in 100-200"):
        select_documents(
            np.array([5, 6, 7]), np.arange(3, dtype=np.uint64), parse_mix("0-100:0.5,100-200:0.5")
        )


# --- Output directory and CLI -----------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_packs_and_prints_the_report(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", np.full(500, 300))
    args = parse(["pack", str(run_dir), "--seq-len", "1000", "-o", str(tmp_path / "p")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "sequences: 149 x 1,001 tokens" in out
    assert "150,000 in, 150,000 packed = 149,149 in sequences + 851 in the partial tail" in out
    args = parse(
        ["pack", str(run_dir), "-o", str(tmp_path / "m"), "--seq-len", "64", "--mix", "0-:1"]
    )
    assert args.func(args) == 0
    assert "0-" in capsys.readouterr().out


def test_cli_help_has_examples_and_every_option():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_command(sub)
    text = sub.choices["pack"].format_help()
    for option in ("--seq-len", "--seed", "--mix", "--target-tokens", "--file-tokens", "-o"):
        assert option in text
    assert "examples:" in text and "qwen3-long" in text


def test_cli_errors_exit_2_with_a_message(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", np.full(10, 30))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    cases = {
        (str(run_dir), str(tmp_path / "foreign" / "notes.txt")): "is not a directory",
        (str(run_dir), str(tmp_path / "foreign")): "is not a packed directory",
        (str(run_dir), str(run_dir)): "must not be the source",
        (str(tmp_path / "nothing"), str(tmp_path / "x")): "no manifest",
    }
    for (source, output), message in cases.items():
        args = parse(["pack", source, "-o", output])
        assert args.func(args) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"
    with pytest.raises(SystemExit):  # argparse rejects a bad --mix before any work
        parse(["pack", str(run_dir), "-o", str(tmp_path / "y"), "--mix", "0-10:0.5"])
    assert "add up to 0.5" in capsys.readouterr().err


def test_through_crawlmills_main(tmp_path, monkeypatch, capsys):
    """As the lead wires it: `extra_commands()` lists add_command."""
    from pipeline import cli

    monkeypatch.setattr(cli, "extra_commands", lambda: [add_command])
    run_dir = write_run(tmp_path / "run", np.full(50, 40))
    assert cli.main(["pack", str(run_dir), "--seq-len", "99", "-o", str(tmp_path / "p")]) == 0
    assert "sequences: 20 x 100 tokens" in capsys.readouterr().out
    assert cli.main(["pack", str(tmp_path / "none"), "-o", str(tmp_path / "q")]) == 2


def test_documents_without_eos_are_refused(tmp_path):
    run_dir = write_run(tmp_path / "run", np.full(10, 30), append_eos=False)
    with pytest.raises(PackError, match="append_eos"):
        pack(run_dir, tmp_path / "p", seq_len=16)


def test_repacking_replaces_an_earlier_output(tmp_path):
    run_dir = write_run(tmp_path / "run", np.full(400, 50))
    pack(run_dir, tmp_path / "p", seq_len=99, file_tokens=1_000, log=lambda *a: None)
    assert len(list((tmp_path / "p" / "seqs").iterdir())) == 20
    manifest = pack(run_dir, tmp_path / "p", seq_len=99, log=lambda *a: None)
    assert [p.name for p in (tmp_path / "p" / "seqs").iterdir()] == ["seqs-00000.arrow"]
    assert len(manifest["files"]) == 1
    assert not list((tmp_path / "p").rglob("*.tmp"))
