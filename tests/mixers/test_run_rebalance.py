"""End to end on the bundled real crawl sample, on a real local Ray: every document gets a
domain, the rebalancing barrier writes its rates, the write phase drops and repeats by
them, accounting stays exact, copies are never adjacent, and a rerun gives the same bytes."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mixers.rebalance import REBALANCE_DIR, REPORT_FILE, base_id
from pipeline import schema as S
from pipeline.cli import main
from pipeline.config import DOMAIN_LABELS, load_config
from pipeline.runner import STATS_FILE, WORK_DIR, run
from pipeline.shards import MANIFEST, ShardReader, read_manifest
from tests.helpers import QUALITY_RULES_OFF

# "other" up (2 copies, a third for half of them), every labelled domain down: both sides
# of the mixer on the ~300 documents of the sample that pass without the quality rules.
WEIGHTS = "{other: 2.5, news: 0.4, technology: 0.4, entertainment: 0.4, social_forum: 0.4}"
SETTINGS = [*QUALITY_RULES_OFF, f"rebalance.weights={WEIGHTS}", "engine.chunk_records=100"]


@pytest.fixture(scope="module")
def mixed_run(ray_local, sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "out"
    cfg = load_config(None, SETTINGS)
    summary = run(cfg, [str(sample_dir)], out, num_cpus=2, log=lambda *_: None)
    return out, summary, cfg


def shard_rows(out: Path) -> list[dict]:
    rows = []
    for shard in read_manifest(out)["shards"]:
        reader = ShardReader(out / shard["file"])
        rows += [reader.row(i) for i in range(len(reader))]
    return rows


def test_accounting_stays_exact_with_repeats(mixed_run):
    out, summary, _ = mixed_run
    manifest = read_manifest(out)
    totals = manifest["totals"]
    rows = shard_rows(out)
    repeats = [r for r in rows if r[S.ID] != base_id(r[S.ID])]
    assert totals["repeats"] == len(repeats) == summary.repeats > 0
    assert totals["docs"] == len(rows)
    assert totals["records"] == totals["docs"] - totals["repeats"] + totals["rejected"]
    rejected = pq.read_table(out / "rejected")
    downsampled = rejected.filter(
        pq.read_table(out / "rejected")[S.DROP_REASON].to_numpy(zero_copy_only=False)
        == S.Reason.DOMAIN_DOWNSAMPLED
    )
    assert downsampled.num_rows == manifest["rejected"]["by_reason"][S.Reason.DOMAIN_DOWNSAMPLED]
    assert set(downsampled[S.DROP_STAGE].to_pylist()) == {"rebalance"}
    assert set(downsampled[S.DOMAIN].to_pylist()) <= {
        "news",
        "technology",
        "entertainment",
        "social_forum",
    }


def test_every_document_has_a_domain_and_copies_follow_the_rates(mixed_run):
    out, _, cfg = mixed_run
    rows = shard_rows(out)
    assert {r[S.DOMAIN] for r in rows} <= set(DOMAIN_LABELS)
    assert {r[S.DOMAIN_SOURCE] for r in rows} <= {"url", "classifier", "none"}
    copies = Counter(base_id(r[S.ID]) for r in rows)
    domain_of = {base_id(r[S.ID]): r[S.DOMAIN] for r in rows}
    for doc, n in copies.items():
        rate = cfg.rebalance.weights.get(domain_of[doc], 1.0)
        assert n in ({2, 3} if rate == 2.5 else {1}), (doc, domain_of[doc], n)
    # about half of the "other" documents get the third copy
    others = [n for doc, n in copies.items() if domain_of[doc] == "other"]
    assert len(others) > 50
    assert 0.25 < sum(n == 3 for n in others) / len(others) < 0.75


def test_copies_are_spread_and_never_adjacent(mixed_run):
    out, _, _ = mixed_run
    rows = shard_rows(out)
    bases = [base_id(r[S.ID]) for r in rows]
    assert all(a != b for a, b in zip(bases, bases[1:], strict=False))
    # every copy comes after all the originals (the repeat passes run last)
    first_repeat = next(i for i, r in enumerate(rows) if r[S.ID] != bases[i])
    assert all(r[S.ID] != b for r, b in zip(rows[first_repeat:], bases[first_repeat:], strict=True))
    assert len(set(bases[:first_repeat])) == first_repeat


def test_report_matches_the_shards(mixed_run):
    out, summary, _ = mixed_run
    report = json.loads((out / REPORT_FILE).read_text())
    stats = json.loads((out / STATS_FILE).read_text())
    assert stats["rebalance"] == report == summary.rebalance
    tokens = Counter()
    for r in shard_rows(out):
        tokens[r[S.DOMAIN]] += r[S.N_TOKENS]
    for domain, row in report["domains"].items():
        assert row["tokens_after"] == tokens[domain]
    total = sum(tokens.values())
    assert report["domains"]["other"]["achieved_share"] == pytest.approx(
        tokens["other"] / total, abs=1e-5
    )
    langs = read_manifest(out)["languages"]
    after = {lang: r["docs_after"] for lang, r in report["languages"].items()}
    assert {lang: n for lang, n in after.items() if n} == {
        lang: c["docs"] for lang, c in langs.items()
    }
    assert set(after) >= set(langs)  # a language downsampled to nothing stays in the table


def test_rerun_of_the_barrier_and_write_phase_gives_the_same_bytes(mixed_run, sample_dir):
    out, _, cfg = mixed_run
    before = {p.name: p.read_bytes() for p in sorted((out / "shards").iterdir())}
    report = (out / REPORT_FILE).read_bytes()
    (out / MANIFEST).unlink()
    shutil.rmtree(out / WORK_DIR / REBALANCE_DIR)
    run(cfg, [str(sample_dir)], out, num_cpus=2, log=lambda *_: None)
    after = {p.name: p.read_bytes() for p in sorted((out / "shards").iterdir())}
    assert after == before
    assert (out / REPORT_FILE).read_bytes() == report


def test_cli_prints_the_share_table(mixed_run, sample_dir, capsys):
    out, _, _ = mixed_run
    args = ["run", "--input", str(sample_dir), "--output", str(out)]
    assert main(args + [a for s in SETTINGS for a in ("--set", s)]) == 0
    printed = capsys.readouterr().out
    assert "rebalance: weights" in printed
    assert "other" in printed and "target" in printed


def test_rebalancing_without_domains_fails_before_any_work(sample_dir, tmp_path):
    from pipeline.config import ConfigError

    cfg = load_config(None, ["domains.enabled=false"])
    with pytest.raises(ConfigError, match="rebalance.enabled: needs domains.enabled"):
        run(cfg, [str(sample_dir)], tmp_path / "out")
    assert not (tmp_path / "out").exists()
