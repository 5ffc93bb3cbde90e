"""BBPE training: Qwen's pre-tokenizer pipeline, specials after the learned ids, the held-out
split, the per-language report against Qwen2.5, text/JSONL inputs, the CLI, and the proof
that the pipeline runs on the result (TokenizeStage, then a whole run on a local Ray)."""

from __future__ import annotations

import argparse
import gzip
import json
import unicodedata
from pathlib import Path

import pytest

from pipeline import schema as S
from pipeline.config import TokenizerConfig, load_config
from pipeline.runner import run
from pipeline.shards import ShardReader, file_sha256, read_manifest
from pipeline.tokenize import QWEN25_SPECIAL_TOKENS, QWEN_PAT, TokenizeStage, load_tokenizer
from pipeline.train_tokenizer import (
    TrainTokenizerError,
    add_command,
    is_heldout,
    iter_documents,
    train_tokenizer,
)
from tests.helpers import QUALITY_RULES_OFF, REBALANCE_OFF, doc_batch

QUIET = {"log": lambda *a: None}


@pytest.fixture(scope="module")
def sample_run(ray_local, sample_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok-run") / "run"
    # every real document of the sample: training, not filtering, is under test here
    # (nor rebalancing: the trainer reads _work/docs, which holds no repeats)
    cfg = load_config(None, [*QUALITY_RULES_OFF, *REBALANCE_OFF])
    run(cfg, [str(sample_dir)], out, num_cpus=2, log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def trained(sample_run, tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    report = train_tokenizer([sample_run], 6_000, path, heldout_fraction=0.2, **QUIET)
    return path, report


def test_the_file_is_qwens_pipeline_with_eos_last(trained):
    path, report = trained
    spec = json.loads(path.read_text())
    assert spec["normalizer"] == {"type": "NFC"}
    split, byte_level = spec["pre_tokenizer"]["pretokenizers"]
    assert split["pattern"] == {"Regex": QWEN_PAT} and split["behavior"] == "Isolated"
    assert byte_level["type"] == "ByteLevel" and byte_level["add_prefix_space"] is False
    assert spec["model"]["type"] == "BPE" and spec["decoder"]["type"] == "ByteLevel"
    assert [t["content"] for t in spec["added_tokens"]] == ["<|endoftext|>"]
    assert spec["added_tokens"][0]["special"] is True
    assert report["vocab_size"] == 6_000 and report["eos_id"] == 5_999  # as Qwen: specials last
    assert len(spec["model"]["vocab"]) == 5_999  # 256 bytes + 5,743 merges


def test_heldout_split_is_disjoint_and_reported_by_language(sample_run, trained):
    _, report = trained
    docs = list(iter_documents([sample_run]))
    assert len(docs) == read_manifest(sample_run)["totals"]["docs"]  # the kept rows
    heldout = [d for d in docs if is_heldout(d.key, 0, 0.2)]
    assert report["heldout_docs"] == len(heldout) and 30 < len(heldout) < 90
    assert report["train_docs"] == len(docs) - len(heldout)
    table = report["bytes_per_token"]
    assert list(table)[0] == "all" and table["all"]["docs"] == len(heldout)
    assert {"en", "zh"} <= set(table)  # languages from the run's lang column
    assert sum(row["docs"] for lang, row in table.items() if lang != "all") == len(heldout)
    # a 6K vocabulary trained on 2 MB cannot compress like Qwen2.5's 151K on 18 T tokens
    for row in table.values():
        assert 1.0 < row["new_bytes_per_token"] <= row["qwen2.5_bytes_per_token"] + 0.05
    assert table["all"]["qwen2.5_bytes_per_token"] > 2.5


def test_the_pipeline_tokenizes_with_the_trained_file(sample_run, trained):
    path, report = trained
    stage = TokenizeStage(TokenizerConfig(name=str(path)))
    assert (stage.tokenizer.eos_id, stage.tokenizer.vocab_size) == (5_999, 6_000)
    texts = [d.text for d in iter_documents([sample_run]) if is_heldout(d.key, 0, 0.2)][:20]
    texts += ["Hello world, 你好世界", "a<|endoftext|>b"]
    out = stage(doc_batch(texts))
    for text, ids in zip(texts, out[S.TOKENS].to_pylist(), strict=True):
        assert ids[-1] == 5_999 and 5_999 not in ids[:-1]  # an EOS in the text is plain text
        assert max(ids) < 6_000
        assert stage.tokenizer.decode(ids[:-1]) == unicodedata.normalize("NFC", text)
    assert report["sha256"] == stage.tokenizer.sha256 == file_sha256(path)


def test_a_whole_run_with_the_trained_tokenizer(sample_dir, trained, tmp_path):
    path, _ = trained
    cfg = load_config(None, [f"tokenizer.name={path}"])
    out = tmp_path / "run"
    run(cfg, [str(sample_dir)], out, num_cpus=2, log=lambda *a: None)
    manifest = read_manifest(out)
    assert manifest["tokenizer"]["sha256"] == file_sha256(path)
    assert (manifest["tokenizer"]["eos_id"], manifest["tokenizer"]["vocab_size"]) == (5999, 6000)
    tokenizer = load_tokenizer(TokenizerConfig(name=str(path)))
    texts = {d.key: d.text for d in iter_documents([out])}
    reader = ShardReader(out / manifest["shards"][0]["file"])
    for i in range(0, len(reader), 25):
        tokens = reader.tokens(i)
        assert tokens[-1] == 5_999
        expected = unicodedata.normalize("NFC", texts[reader.row(i)[S.ID]])
        assert tokenizer.decode(tokens[:-1]) == expected


def test_training_is_deterministic(sample_run, trained, tmp_path):
    path, _ = trained
    again = tmp_path / "again.json"
    train_tokenizer([sample_run], 6_000, again, heldout_fraction=0.2, compare_with="none", **QUIET)
    assert again.read_bytes() == path.read_bytes()


def write_text_inputs(directory: Path) -> Path:
    directory.mkdir()
    lines = [
        {"text": f"The quick brown fox {i} jumps over the lazy dog.", "lang": "en", "id": f"e{i}"}
        for i in range(300)
    ] + [{"text": f"敏捷的棕色狐狸{i}跳过了懒狗。", "lang": "zh"} for i in range(300)]
    with gzip.open(directory / "a.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    (directory / "b.txt").write_text("\n".join(f"plain line number {i}" for i in range(200)))
    return directory


def test_jsonl_and_text_inputs_with_all_qwen_specials(tmp_path):
    inputs = write_text_inputs(tmp_path / "corpus")
    docs = list(iter_documents([inputs]))
    assert len(docs) == 800 and {d.lang for d in docs} == {"en", "zh", "unknown"}
    path = tmp_path / "tok.json"
    report = train_tokenizer(
        [inputs],
        400,
        path,
        special_tokens=list(QWEN25_SPECIAL_TOKENS),
        heldout_fraction=0.1,
        compare_with="none",
        **QUIET,
    )
    assert report["vocab_size"] <= 400
    assert report["eos_id"] == report["vocab_size"] - 22  # the 22 specials, EOS first
    assert set(report["bytes_per_token"]) == {"all", "en", "zh", "unknown"}
    assert (tmp_path / "tok.report.json").is_file()
    tokenizer = load_tokenizer(TokenizerConfig(name=str(path)))
    assert tokenizer.decode(tokenizer.encode_batch(["狐狸 fox ∑"])[0]) == "狐狸 fox ∑"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_trains_and_prints_the_table(tmp_path, capsys):
    inputs = write_text_inputs(tmp_path / "corpus")
    output = tmp_path / "out" / "tok.json"
    args = parse(["train-tokenizer", str(inputs), "--vocab-size", "500", "-o", str(output)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "bytes per token" in printed and "qwen2.5" in printed and "tokens vs qwen2.5" in printed
    assert output.is_file() and output.with_suffix(".report.json").is_file()


def test_through_crawlmills_main(tmp_path, monkeypatch, capsys):
    """As the lead wires it: `extra_commands()` lists add_command."""
    from pipeline import cli

    monkeypatch.setattr(cli, "extra_commands", lambda: [add_command])
    inputs = write_text_inputs(tmp_path / "corpus")
    argv = ["train-tokenizer", str(inputs), "--vocab-size", "400", "-o", str(tmp_path / "t.json")]
    assert cli.main([*argv, "--compare-with", "none"]) == 0
    assert "bytes per token" in capsys.readouterr().out


def test_cli_help_and_errors(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_command(sub)
    text = sub.choices["train-tokenizer"].format_help()
    for option in ("--vocab-size", "--heldout-fraction", "--special-tokens", "--compare-with"):
        assert option in text
    assert "examples:" in text
    inputs = write_text_inputs(tmp_path / "corpus")
    (tmp_path / "bad.jsonl").write_text('{"body": "no text field"}\n')
    cases = {
        (str(inputs), "200"): "too small",
        (str(tmp_path / "missing"), "1000"): "no such file",
        (str(tmp_path / "bad.jsonl"), "1000"): "bad.jsonl:1: not a JSON object with a 'text'",
    }
    for (source, vocab), message in cases.items():
        args = parse(["train-tokenizer", source, "--vocab-size", vocab, "-o", str(tmp_path / "t")])
        assert args.func(args) == 2
        assert message in capsys.readouterr().err


def test_a_run_directory_without_its_parts_is_explained(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{}")
    with pytest.raises(TrainTokenizerError, match="_work/docs"):
        list(iter_documents([tmp_path / "run"]))
