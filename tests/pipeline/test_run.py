"""End to end on the bundled real crawl sample, on a real local Ray: accounting, shards,
tokens that decode back to the text, determinism across parallelism, resume, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from itertools import pairwise
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastwarc.warc import ArchiveIterator

from mixers.rebalance import base_id
from pipeline import schema as S
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.inspect import inspect_run
from pipeline.report import render
from pipeline.runner import WORK_DIR, RunError, run
from pipeline.shards import ShardReader, read_manifest
from pipeline.stats import run_stats
from pipeline.tokenize import load_tokenizer
from tests.helpers import assert_same_output


def count_records(directory: Path) -> int:
    return sum(
        1
        for path in sorted(directory.iterdir())
        for _ in ArchiveIterator(str(path), parse_http=False)
    )


def read_all_shards(out: Path) -> list[tuple[dict, list[int]]]:
    manifest = read_manifest(out)
    docs = []
    for shard in manifest["shards"]:
        reader = ShardReader(out / shard["file"])
        docs += [(reader.row(i), reader.tokens(i).tolist()) for i in range(len(reader))]
    return docs


def test_every_record_is_kept_or_rejected(sample_run, sample_dir):
    out, summary, _ = sample_run
    manifest = read_manifest(out)
    rejected = pq.read_table(out / "rejected")
    kept_ids = [row[S.ID] for row, _ in read_all_shards(out)]
    records = count_records(sample_dir)

    assert manifest["totals"]["records"] == records == summary.records
    # rebalancing (on by default) repeats some documents: those copies are not records
    repeats = manifest["totals"]["repeats"]
    assert repeats == sum(1 for i in kept_ids if base_id(i) != i)
    assert manifest["totals"]["docs"] - repeats + manifest["totals"]["rejected"] == records
    # 359 of the 421 records are documents (318 WET + 41 HTML); the quality rules keep
    # ~60 (WET text is whole pages, menus and all; the zh pages are mostly spam)
    assert len(kept_ids) == manifest["totals"]["docs"] >= 50
    assert rejected.num_rows == manifest["totals"]["rejected"]
    # no record appears twice, and none is lost (a repeat is its original's record)
    all_ids = [i for i in kept_ids if base_id(i) == i] + rejected[S.ID].to_pylist()
    assert len(set(all_ids)) == records
    # every rejected row says why, and the reasons add up
    assert rejected[S.DROP_REASON].null_count == 0
    reasons = {}
    for reason in rejected[S.DROP_REASON].to_pylist():
        reasons[reason] = reasons.get(reason, 0) + 1
    assert reasons == manifest["rejected"]["by_reason"]
    assert reasons[S.Reason.NOT_A_DOCUMENT] > 0  # request/metadata/warcinfo records


def test_manifest_token_counts_match_the_shards(sample_run):
    out, _, _ = sample_run
    manifest = read_manifest(out)
    docs = read_all_shards(out)
    assert manifest["totals"]["tokens"] == sum(len(tokens) for _, tokens in docs)
    assert manifest["totals"]["tokens"] == sum(row[S.N_TOKENS] for row, _ in docs)
    for shard in manifest["shards"]:
        reader = ShardReader(out / shard["file"])
        assert shard["docs"] == len(reader)
        assert shard["tokens"] == sum(len(t) for t in reader)
    per_lang = {}
    for row, tokens in docs:
        per_lang[row[S.LANG]] = per_lang.get(row[S.LANG], 0) + len(tokens)
    assert {lang: c["tokens"] for lang, c in manifest["languages"].items()} == per_lang
    # the sample is multilingual: CC-MAIN WET with Chinese, Japanese, Russian pages
    assert {"en", "zh", "ja", "ru"} <= set(per_lang)


def test_tokens_decode_back_to_the_text(sample_run):
    out, _, cfg = sample_run
    tokenizer = load_tokenizer(cfg.tokenizer)
    texts = {}
    for part in sorted((out / WORK_DIR / "docs").iterdir()):
        table = pq.read_table(part, columns=[S.ID, S.TEXT, S.DROP_REASON])
        texts.update((r[S.ID], r[S.TEXT]) for r in table.to_pylist() if r[S.DROP_REASON] is None)
    docs = read_all_shards(out)
    assert len(docs) >= 50
    for row, tokens in docs:
        assert tokens[-1] == tokenizer.eos_id == 151643
        text = texts[base_id(row[S.ID])]  # a rebalancing repeat has the text of its original
        assert tokenizer.decode(tokens[:-1]) == unicodedata.normalize("NFC", text)


def test_inspect_matches_the_manifest(sample_run, capsys):
    out, _, _ = sample_run
    manifest = read_manifest(out)
    info = inspect_run(out)
    assert info["kept"]["docs"] == manifest["totals"]["docs"]
    assert info["kept"]["tokens"] == manifest["totals"]["tokens"]
    assert info["shards"] == len(manifest["shards"])
    assert info["tokenizer"]["name"] == "qwen2.5"
    assert main(["inspect", str(out)]) == 0  # --json: tests/pipeline/test_inspect.py
    printed = capsys.readouterr().out
    assert f"{manifest['totals']['tokens']:,}" in printed and "zh" in printed


def test_other_parallelism_gives_byte_identical_output(sample_run, sample_dir, tmp_path):
    out, _, _ = sample_run
    cfg = load_config(None, ["engine.chunk_records=500", "engine.batch_rows=7"])
    other = tmp_path / "other"
    run(cfg, [str(sample_dir)], other, num_cpus=1)
    # 1 CPU, chunks of 500 records, batches of 7 against 2 CPUs, 200, 64: the same bytes in
    # manifest.json, stats.json, every shard and every rejected/ file
    assert_same_output(other, out)


def comparable_stats(directory: Path) -> dict:
    stats = run_stats(directory)
    for key in ("directory", "throughput"):  # where it is, how long it took
        stats.pop(key)
    return stats


def test_rerun_resumes_only_missing_chunks(sample_run, sample_dir, tmp_path):
    out, _, cfg = sample_run
    work = tmp_path / "resume"
    first = run(cfg, [str(sample_dir)], work, num_cpus=2)
    parts = sorted((work / WORK_DIR / "docs").iterdir())
    assert first.processed_chunks == len(parts) > 3
    # as if the run died: two chunks unfinished, no manifest yet
    parts[1].unlink()
    parts[-1].unlink()
    (work / "manifest.json").unlink()
    again = run(cfg, [str(sample_dir)], work, num_cpus=2)
    assert (again.processed_chunks, again.resumed_chunks) == (2, len(parts) - 2)
    assert (work / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    # datatrove #360: stats kept in memory are wrong after a restart; ours come from the
    # outputs, so the resumed run reports what the unbroken one does (report included)
    assert comparable_stats(work) == comparable_stats(out)
    assert render(work).count("data-value") == render(out).count("data-value")
    # a finished run is not redone
    assert run(cfg, [str(sample_dir)], work, num_cpus=2).already_complete


def test_cli_run_prints_summary(ray_local, sample_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    wet = str(sample_dir / "whatsinthebox-cc-main-2020-50.warc.wet.gz")
    assert (
        main(["run", "--input", wet, "--output", str(out), "--set", "langid.languages=[zh]"]) == 0
    )
    captured = capsys.readouterr()
    printed = captured.out
    manifest = read_manifest(out)
    assert set(manifest["languages"]) == {"zh"}
    # progress on stderr: per phase, rate and ETA; the summary table on stdout
    progress = captured.err.splitlines()
    documents = [line for line in progress if "documents phase:" in line]
    assert documents and "records/s" in documents[-1] and "ETA 0s" in documents[-1]
    assert f"{manifest['totals']['records']:,}/{manifest['totals']['records']:,}" in documents[-1]
    assert any("write phase:" in line and "chunks/s" in line for line in progress)
    assert "documents phase:" not in printed
    for row in ("records read", "docs kept", "documents phase s", "write phase s", "total s"):
        assert row in printed
    assert f"{manifest['totals']['tokens']:,}" in printed
    assert "lang_not_wanted" in printed


def crawlmill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "langid.min_score=high"], "langid.min_score: expected a number"),
        (["--set", "extract.extractr=resiliparse"], "extract.extractr: unknown key"),
        (["--set", "langid.model=/nonexistent/lid.bin"], "langid.model"),
        (["--set", "tokenizer.name=/nonexistent/tokenizer.json"], "tokenizer.name"),
        (["--set", "langid.before_extraction=true"], "langid.before_extraction: needs"),
    ],
)
def test_config_mistakes_fail_before_any_work(sample_dir, tmp_path, args, message):
    out = tmp_path / "never"
    result = crawlmill("run", "--input", str(sample_dir), "--output", str(out), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not out.exists()


def test_missing_input_fails_naming_the_path(tmp_path):
    result = crawlmill(
        "run", "--input", str(tmp_path / "nope.warc.gz"), "--output", str(tmp_path / "o")
    )
    assert result.returncode == 2
    assert "nope.warc.gz" in result.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["inspect"], ["report"]])
def test_help_explains_every_option(command):
    result = crawlmill(*command, "--help")
    assert result.returncode == 0
    for word in {
        "": ["run", "inspect", "report"],
        "run": ["--input", "--output", "--set", "--ray-address", "--num-cpus", "config"],
        "inspect": ["--json", "DIR", "--where", "--sample", "--rejected", "quality_score>0.5"],
        "report": ["RUN_DIR", "--output", "report.html"],
    }[" ".join(command)]:
        assert word in result.stdout


def test_globs_and_fsspec_uris_reach_the_same_documents(sample_run, sample_dir, tmp_path):
    """Workers open inputs themselves through pyarrow/fsspec: a file:// URI (how an s3://
    input travels) and a glob give the same documents as the plain directory."""
    out, _, cfg = sample_run
    wet = sample_dir / "whatsinthebox-cc-main-2020-50.warc.wet.gz"
    inputs = [wet.resolve().as_uri(), str(sample_dir / "*-cc-main-2020-34.warc.gz")]
    other = tmp_path / "uris"
    summary = run(cfg, inputs, other, num_cpus=2)
    assert any(path.startswith("file://") for path in read_manifest(other)["inputs"])
    expected = {
        row[S.ID]: tokens
        for row, tokens in read_all_shards(out)
        if row[S.SOURCE].endswith(("2020-50.warc.wet.gz", "2020-34.warc.gz"))
    }
    got = {row[S.ID]: tokens for row, tokens in read_all_shards(other)}
    assert got == expected
    assert summary.docs == len(expected) > 40


def test_output_of_another_run_is_never_mixed(sample_run, sample_dir, tmp_path):
    out, _, cfg = sample_run
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(RunError, match="other inputs or config"):
        run(load_config(None, ["langid.min_score=0.9"]), [str(sample_dir)], out)
    with pytest.raises(RunError, match="other inputs or config"):
        run(cfg, [str(sample_dir / "whirlwind-cc-main-2024-22.warc.gz")], out)
    assert (out / "manifest.json").read_bytes() == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("not a crawlmill run")
    with pytest.raises(RunError, match="not a crawlmill run directory"):
        run(cfg, [str(sample_dir)], stranger)


def test_language_id_before_extraction_skips_pages_and_keeps_the_same_documents(
    ray_local, sample_dir, tmp_path
):
    # English only, with the cheap language ID before trafilatura (on by default with a
    # languages list) and without it: the same shards; the pages dropped early never
    # reached the extractor (no text) and carry the label that dropped them.
    settings = ["langid.languages=[en]", "engine.chunk_records=64"]
    plain, early = tmp_path / "plain", tmp_path / "early"
    cfg = load_config(None, [*settings, "langid.before_extraction=false"])
    run(cfg, [str(sample_dir)], plain, log=lambda *a: None)
    run(load_config(None, settings), [str(sample_dir)], early, log=lambda *a: None)

    for shard in sorted((plain / "shards").iterdir()):
        assert (early / "shards" / shard.name).read_bytes() == shard.read_bytes()
    # never extracted: no charset (the extract stage decodes); 12 of the sample's 16
    # non-English HTML pages (zh, ja, ru, de, nl)
    skipped = [
        row
        for row in pq.read_table(early / "rejected").to_pylist()
        if row[S.DROP_REASON] == S.Reason.LANG_NOT_WANTED
        and row[S.RECORD_TYPE] == "response"
        and row[S.CHARSET] is None
    ]
    assert len(skipped) >= 10
    assert all(row[S.DROP_STAGE] == "langid" for row in skipped)
    assert all(row[S.LANG] != "en" and row[S.LANG_SCORE] >= 0.8 for row in skipped)
    plain_reasons = {
        row[S.ID]: row[S.DROP_REASON] for row in pq.read_table(plain / "rejected").to_pylist()
    }
    assert all(plain_reasons[row[S.ID]] == S.Reason.LANG_NOT_WANTED for row in skipped)
    timings = json.loads((early / "timings.json").read_text())
    cpu, wall = timings["stage_cpu_seconds"], timings["stage_wall_seconds"]
    assert set(cpu) == set(wall) and cpu["langid_before_extraction"] > 0
    # when each phase ran: one after the other, as long as its seconds say
    windows = timings["phase_windows"]
    order = ["scan", "dedup_pre_phase", "documents_phase", "dedup_phase", "rebalance_phase"]
    order.append("write_phase")
    assert set(windows) == set(order)
    for name, (start, end) in windows.items():
        assert end - start == pytest.approx(timings["seconds"][name], abs=0.05)
    assert all(windows[a][1] <= windows[b][0] for a, b in pairwise(order))
