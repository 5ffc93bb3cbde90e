"""`crawlmill inspect` on a real run of the bundled sample: --where filters, decoded
samples, rejected rows with scores, JSON; manifests of format_version 1 still read, a
newer one refused with a clear message."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mixers.rebalance import base_id
from pipeline import schema as S
from pipeline.cli import main
from pipeline.inspect import InspectError, inspect_run
from pipeline.report import render
from pipeline.runner import WORK_DIR
from pipeline.shards import ManifestError, read_manifest
from pipeline.stats import kept_table, run_stats

# What format_version 1 (the first release) wrote: shards without text_chars and
# quality_score, rejected/ without text_chars and n_tokens, no chars in the manifest.
V1_SHARD_COLUMNS = [S.ID, S.URL, S.CRAWL_DATE, S.SOURCE, S.LANG, S.LANG_SCORE, S.N_TOKENS, S.TOKENS]
V2_ONLY_REJECTED = {S.TEXT_CHARS, S.N_TOKENS}


def kept_texts(out: Path) -> dict[str, str]:
    """id -> text of every kept row, from the documents phase's parts."""
    docs = pq.read_table(out / WORK_DIR / "docs", columns=[S.ID, S.TEXT, S.DROP_REASON])
    return dict(zip(docs[S.ID].to_pylist(), docs[S.TEXT].to_pylist(), strict=True))


def test_where_lang_matches_the_manifest(sample_run):
    out, _, _ = sample_run
    manifest = read_manifest(out)
    info = inspect_run(out, where=["lang=zh"])
    assert info["kept"]["docs"] == manifest["languages"]["zh"]["docs"] > 0
    assert info["kept"]["tokens"] == manifest["languages"]["zh"]["tokens"]
    assert info["kept"]["chars"] == manifest["languages"]["zh"]["chars"]
    assert set(info["kept"]["by_lang"]) == {"zh"}
    both = inspect_run(out, where=["lang=zh,en"])
    assert both["kept"]["docs"] == sum(manifest["languages"][k]["docs"] for k in ("zh", "en"))
    # rejected rows take the same filter
    assert {d["reason"] for d in info["rejected"]["by_reason"]} <= set(
        manifest["rejected"]["by_reason"]
    )
    assert info["rejected"]["rows"] < manifest["totals"]["rejected"]


def test_where_score_range(sample_run):
    out, _, _ = sample_run
    kept = kept_table(out)
    scores = kept[S.QUALITY_SCORE].to_pylist()
    threshold = sorted(s for s in scores if s is not None)[len(scores) // 2]
    info = inspect_run(out, where=[f"quality_score>{threshold}", "text_chars>=1000"])
    expected = [
        n
        for s, n, c in zip(
            scores, kept[S.N_TOKENS].to_pylist(), kept[S.TEXT_CHARS].to_pylist(), strict=True
        )
        if s is not None and s > threshold and c >= 1000
    ]
    assert 0 < info["kept"]["docs"] == len(expected) < kept.num_rows
    assert info["kept"]["tokens"] == sum(expected)
    p = info["kept"]["length_percentiles"]["tokens"]
    assert p["p0"] == min(expected) and p["p100"] == max(expected)


@pytest.mark.parametrize(
    "where, message",
    [
        ("colour=red", "no column 'colour'"),
        ("quality_score>high", "numeric"),
        ("lang", "COLUMN OP VALUE"),
    ],
)
def test_bad_where_fails_naming_the_problem(sample_run, capsys, where, message):
    out, _, _ = sample_run
    with pytest.raises(InspectError, match=message):
        inspect_run(out, where=[where])
    assert main(["inspect", str(out), "--where", where]) == 2
    assert message in capsys.readouterr().err


def test_sample_decodes_documents_with_their_metadata(sample_run, capsys):
    out, _, _ = sample_run
    texts = kept_texts(out)
    info = inspect_run(out, where=["lang=en"], sample=3, seed=7)
    assert len(info["sample"]) == 3
    for doc in info["sample"]:
        assert doc[S.LANG] == "en"
        original = texts[base_id(doc[S.ID])]  # a rebalancing repeat has its original's text
        assert doc["text"] == unicodedata.normalize("NFC", original)
        assert doc[S.TEXT_CHARS] == len(original)
    # deterministic for a seed, other documents for another
    again = inspect_run(out, where=["lang=en"], sample=3, seed=7)["sample"]
    assert [d[S.ID] for d in again] == [d[S.ID] for d in info["sample"]]
    other = inspect_run(out, where=["lang=en"], sample=3, seed=8)["sample"]
    assert [d[S.ID] for d in other] != [d[S.ID] for d in info["sample"]]
    assert main(["inspect", str(out), "--sample", "1", "--where", "lang=zh"]) == 0
    printed = capsys.readouterr().out
    assert "url: " in printed and "lang: zh" in printed


def test_rejected_rows_show_their_scores(sample_run, capsys):
    out, _, _ = sample_run
    info = inspect_run(out, rejected=S.Reason.LANG_LOW_SCORE, n=4)
    rows = info["rejected_sample"]
    assert len(rows) == 4
    for row in rows:
        assert row[S.DROP_REASON] == S.Reason.LANG_LOW_SCORE
        assert row[S.LANG_SCORE] < 0.65  # langid.min_score of the default recipe
        assert row[S.N_TOKENS] > 0 and row[S.TEXT_CHARS] > 0
    with pytest.raises(InspectError, match="reasons here: .*lang_low_score"):
        inspect_run(out, rejected="no_such_reason")
    assert main(["inspect", str(out), "--rejected", "gopher_alpha_words", "-n", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("drop_reason: gopher_alpha_words") == 2
    assert "gopher_alpha_words: " in printed  # the score itself
    assert main(["inspect", str(out), "--json", "--rejected", "all", "-n", "3"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rejected_sample"]) == 3


def make_v1_run(out: Path, target: Path) -> Path:
    """The sample run as the first release wrote it."""
    shutil.copytree(out, target, ignore=shutil.ignore_patterns(WORK_DIR))
    manifest = json.loads((target / "manifest.json").read_text())
    for shard in manifest["shards"]:
        path = target / shard["file"]
        # read into memory, not mapped: the file is overwritten below
        table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
        table = table.select(V1_SHARD_COLUMNS)
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table)
        shard.pop("chars")
    for name in manifest["rejected"]["files"]:
        table = pq.read_table(target / name)
        keep = [n for n in table.schema.names if n not in V2_ONLY_REJECTED]
        pq.write_table(table.select(keep), target / name)
    manifest["format_version"] = 1
    manifest["totals"].pop("chars")
    manifest["rejected"].pop("chars")
    manifest["rejected"].pop("tokens")
    for counts in manifest["languages"].values():
        counts.pop("chars")
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target


def test_a_version_1_run_is_still_read(sample_run, tmp_path, capsys):
    out, _, _ = sample_run
    v1 = make_v1_run(out, tmp_path / "v1")
    manifest = read_manifest(v1)
    info = inspect_run(v1, where=["lang=en"], sample=1)
    assert info["format_version"] == 1
    assert info["kept"]["docs"] == manifest["languages"]["en"]["docs"]
    assert info["kept"]["tokens"] == manifest["languages"]["en"]["tokens"]
    assert info["kept"]["chars"] is None  # v1 did not record characters
    assert info["sample"][0]["text"]
    stats = run_stats(v1)
    assert stats["funnel"][-1]["docs"] == manifest["totals"]["docs"]
    assert stats["funnel"][0]["tokens"] is None  # rejected rows had no token counts
    assert 'data-stat="docs" data-value="' + str(manifest["totals"]["docs"]) in render(v1)
    with pytest.raises(InspectError, match="no column 'quality_score'"):
        inspect_run(v1, where=["quality_score>0.5"])
    assert main(["inspect", str(v1)]) == 0
    assert "manifest v1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "version, message", [(3, "newer than this crawlmill reads"), ("x", "not one")]
)
def test_an_unknown_manifest_version_is_refused(sample_run, tmp_path, capsys, version, message):
    out, _, _ = sample_run
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format_version"] = version
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=message):
        inspect_run(other)
    assert main(["inspect", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"format_version {version!r}" in err and "reads 1, 2" in err
    assert main(["report", str(other)]) == 2


def test_json_is_complete(sample_run, capsys):
    out, _, _ = sample_run
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    manifest = read_manifest(out)
    assert info["kept"]["docs"] == manifest["totals"]["docs"]
    assert set(info["kept"]["by_lang"]) == set(manifest["languages"])
    assert (
        sum(c["tokens"] for c in info["kept"]["by_source"].values()) == manifest["totals"]["tokens"]
    )
    assert sum(d["docs"] for d in info["rejected"]["by_reason"]) == manifest["totals"]["rejected"]
    # domain labels (mixers/domains.py), repeats included, add up to the kept documents
    assert sum(c["docs"] for c in info["kept"]["by_domain"].values()) == manifest["totals"]["docs"]
    assert pc.sum(kept_table(out)[S.N_TOKENS]).as_py() == manifest["totals"]["tokens"]


@pytest.mark.parametrize(
    "args", [["--rejected", "all", "-n", "-3"], ["-n", "0"], ["--sample", "-1"]]
)
def test_counts_must_be_positive(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as excinfo:
        main(["inspect", str(tmp_path), *args])
    assert excinfo.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("crawlmill inspect: error: argument ")
    assert last.endswith(f"expected a positive integer, got {args[-1]!r}")
