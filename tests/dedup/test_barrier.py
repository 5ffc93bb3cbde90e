"""The global dedup step: what it drops, what it keeps, and that the answer never depends
on partitions, ranges, workers or where the signatures were computed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dedup.barrier import DONE_FILE, DedupDecisions, run_dedup
from dedup.executor import RayExecutor
from dedup.pre import DROPS_SCHEMA as PRE_DROPS_SCHEMA
from dedup.pre import PreDecisions
from dedup.stage import DedupSignatureStage
from pipeline import schema as S
from pipeline.config import DedupConfig
from tests.dedup.texts import HANZI, edited, hanzi_text, words_text

CFG = DedupConfig()


def write_parts(
    parts_dir: Path, files: list[list[dict]], with_stage: bool = True, stage_on: bool = True
) -> None:
    """files[f] = documents of input file f, cut into chunks of 3 rows; with dedup's
    streaming stage (switched on or off), or without its columns at all."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    stage = DedupSignatureStage(replace(CFG, enabled=stage_on))
    for f, docs in enumerate(files):
        for c in range(0, len(docs), 3):
            chunk = docs[c : c + 3]
            table = pa.table(
                {
                    S.ID: [d["id"] for d in chunk],
                    S.TEXT: pa.array([d["text"] for d in chunk], pa.large_string()),
                    S.LANG: [d.get("lang", "en") for d in chunk],
                    S.QUALITY_SCORE: pa.array([d.get("quality") for d in chunk], pa.float32()),
                    S.DROP_REASON: pa.array([d.get("reason") for d in chunk], pa.string()),
                    S.DROP_STAGE: pa.array([d.get("reason") and "x" for d in chunk], pa.string()),
                }
            )
            if with_stage:
                table = stage(table)
            pq.write_table(table, parts_dir / f"{f:05d}-{c // 3:05d}.parquet")


def dropped(out: Path, parts_dir: Path) -> dict[str, tuple]:
    """id -> (reason, kept id, cluster size) for every dropped document."""
    decisions = DedupDecisions(out)
    result = {}
    for part in sorted(parts_dir.glob("*.parquet")):
        f, c = (int(x) for x in part.stem.split("-"))
        table = decisions.apply(pq.read_table(part), f, c)
        for row in table.to_pylist():
            if row[S.DROP_STAGE] == "dedup":
                result[row[S.ID]] = (
                    row[S.DROP_REASON],
                    row[S.DUP_CLUSTER_ID],
                    row[S.DUP_CLUSTER_SIZE],
                )
    return result


def corpus() -> list[list[dict]]:
    base, other, cjk = words_text(1), words_text(2), hanzi_text(3)
    return [
        [
            {"id": "a-original", "text": base, "quality": 0.9},
            {"id": "distinct-1", "text": other},
            {"id": "cjk-original", "text": cjk, "lang": "zh", "quality": 0.9},
            {"id": "distinct-2", "text": words_text(4)},
            {"id": "already-dropped", "text": base, "reason": "gopher_too_few_words"},
        ],
        [
            {"id": "a-near", "text": edited(base, 2, 5)},  # Jaccard ~0.93 with a-original
            {"id": "a-exact", "text": base.upper().replace(".", "!")},
            {"id": "cjk-near", "text": edited(cjk, 3, 6, HANZI), "lang": "zh"},
            {"id": "cjk-distinct", "text": hanzi_text(7), "lang": "zh"},
            {"id": "a-far", "text": edited(base, 60, 8)},  # Jaccard ~0.3: kept
        ],
    ]


def test_near_and_exact_duplicates_across_files(tmp_path):
    write_parts(tmp_path / "docs", corpus())
    result = run_dedup(tmp_path / "docs", CFG, tmp_path / "dedup", log=lambda line: None)
    drops = dropped(tmp_path / "dedup", tmp_path / "docs")
    # the originals have the best quality score: they survive their clusters
    assert drops == {
        "a-exact": ("exact_duplicate", "a-original", 2),  # exact pass first
        "a-near": ("near_duplicate", "a-original", 2),  # then a-original + a-near
        "cjk-near": ("near_duplicate", "cjk-original", 2),  # character 5-grams
    }
    assert "cjk-distinct" not in drops and "a-far" not in drops
    assert "distinct-1" not in drops and "distinct-2" not in drops
    assert "already-dropped" not in drops  # dropped earlier: first reason wins
    assert result.stats["exact"]["removed"] == 1
    assert result.stats["near"]["removed"] == 2
    assert result.stats["docs_in"] == 9 and result.stats["docs_out"] == 6
    assert result.stats["near"]["cluster_size_histogram"] == {"2": 2}


def test_survivor_best_quality_then_longest_then_smallest_id(tmp_path):
    base = words_text(11)
    docs = [
        {"id": "c", "text": base, "quality": 0.2},
        {"id": "b", "text": base + " Extra words here.", "quality": 0.9},
        {"id": "a", "text": base + " More.", "quality": 0.9},
        {"id": "z", "text": base + " Extra words here, and more.", "quality": None},
    ]
    write_parts(tmp_path / "docs", [docs])
    run_dedup(tmp_path / "docs", CFG, tmp_path / "dedup", log=lambda line: None)
    drops = dropped(tmp_path / "dedup", tmp_path / "docs")
    assert set(drops) == {"a", "c", "z"}  # b: best quality, then longer than a
    assert {kept for _, kept, _ in drops.values()} == {"b"}
    assert all(size == 4 for _, _, size in drops.values())

    by_length = replace(CFG, survivor=["length", "id"])
    run_dedup(tmp_path / "docs", by_length, tmp_path / "dedup2", log=lambda line: None)
    assert {k for _, k, _ in dropped(tmp_path / "dedup2", tmp_path / "docs").values()} == {"z"}


def test_same_decisions_whatever_partitions_ranges_workers_and_signature_source(
    tmp_path, ray_local
):
    files = corpus() + [
        [{"id": f"x{i}", "text": edited(words_text(1), 2, 100 + i)} for i in range(7)]
    ]
    write_parts(tmp_path / "docs", files)
    write_parts(tmp_path / "docs-text-only", files, with_stage=False)
    write_parts(tmp_path / "docs-stage-off", files, stage_on=False)  # null key columns
    runs = [
        ("docs", {"partitions": 1}),
        ("docs", {"partitions": 7, "docs_per_range": 3}),
        ("docs", {"partitions": 3, "docs_per_range": 1, "executor": RayExecutor()}),
        ("docs-text-only", {"partitions": 5, "docs_per_range": 6, "executor": RayExecutor()}),
        ("docs-stage-off", {"partitions": 2}),
    ]
    outcomes = []
    for i, (parts, options) in enumerate(runs):
        out = tmp_path / f"dedup{i}"
        result = run_dedup(tmp_path / parts, CFG, out, log=lambda line: None, **options)
        outcomes.append((dropped(out, tmp_path / parts), result.stats))
        files_written = sorted(p.name for p in out.iterdir())
        assert DONE_FILE in files_written and "tmp" not in files_written
    assert all(outcome == outcomes[0] for outcome in outcomes)
    # a-exact (exact pass), cjk-near, and a-near + x0..x6: one near cluster of 9 around
    # a-original (best quality)
    drops = outcomes[0][0]
    assert len(drops) == 10 and drops["x3"] == ("near_duplicate", "a-original", 9)


def test_done_marker_skips_the_step(tmp_path):
    write_parts(tmp_path / "docs", corpus())
    first = run_dedup(tmp_path / "docs", CFG, tmp_path / "dedup", log=lambda line: None)
    again = run_dedup(tmp_path / "docs", CFG, tmp_path / "dedup", log=lambda line: None)
    assert again.skipped and again.stats == first.stats


def test_a_killed_writers_temp_part_is_not_read(tmp_path):
    # kill -9 inside atomic_path leaves an empty hidden part; CI once crashed on one
    write_parts(tmp_path / "docs", corpus())
    (tmp_path / "docs" / ".tmp-0123456789ab-00001-00000.parquet").write_bytes(b"")
    result = run_dedup(tmp_path / "docs", CFG, tmp_path / "dedup", log=lambda line: None)
    assert result.stats["docs_in"] == 9


def test_exact_only_and_bad_lsh_params(tmp_path):
    write_parts(tmp_path / "docs", corpus())
    exact_only = replace(CFG, near=replace(CFG.near, enabled=False))
    run_dedup(tmp_path / "docs", exact_only, tmp_path / "dedup", log=lambda line: None)
    assert set(dropped(tmp_path / "dedup", tmp_path / "docs")) == {"a-exact"}
    with pytest.raises(ValueError, match=r"dedup.near.bands x dedup.near.rows"):
        run_dedup(
            tmp_path / "docs",
            replace(CFG, near=replace(CFG.near, bands=20, rows=10)),
            tmp_path / "dedup3",
        )


def test_cluster_ids_name_kept_documents_through_chains(tmp_path):
    """An exact group's survivor that the near pass then drops: the group's other members
    must name the document finally kept (the near cluster's survivor), not it."""
    base = words_text(21)
    docs = [
        {"id": "exact-survivor", "text": base, "quality": 0.5},  # best of its exact group
        {"id": "copy-1", "text": base.upper(), "quality": 0.1},
        {"id": "keeper", "text": edited(base, 2, 5), "quality": 0.9},  # near, J ~0.93
        {"id": "copy-2", "text": base + " ", "quality": None},
        {"id": "alone", "text": words_text(22)},
    ]
    write_parts(tmp_path / "docs", [docs[:2], docs[2:]])
    outcomes = []
    for partitions, per_range in [(1, 50_000), (4, 1), (7, 2)]:
        out = tmp_path / f"dedup-{partitions}"
        result = run_dedup(
            tmp_path / "docs",
            CFG,
            out,
            partitions=partitions,
            docs_per_range=per_range,
            log=lambda line: None,
        )
        outcomes.append(dropped(out, tmp_path / "docs"))
        assert result.stats["exact"]["cluster_ids_resolved"] == 2
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0] == {
        "exact-survivor": ("near_duplicate", "keeper", 2),
        "copy-1": ("exact_duplicate", "keeper", 3),  # size: of the exact group
        "copy-2": ("exact_duplicate", "keeper", 3),
    }
    # without the near pass the chain has one link: the exact survivor is kept
    exact_only = replace(CFG, near=replace(CFG.near, enabled=False))
    run_dedup(tmp_path / "docs", exact_only, tmp_path / "exact", log=lambda line: None)
    assert {kept for _, kept, _ in dropped(tmp_path / "exact", tmp_path / "docs").values()} == {
        "exact-survivor"
    }


def test_cluster_ids_of_drops_before_extraction_resolved_through_the_step(tmp_path):
    """Rows the pass before extraction dropped (dedup/pre.py) name their survivor; when
    this step drops that survivor (exact, then near: two links), they name the kept one."""
    base = words_text(21)
    pre = [
        {"id": f"pre-of-{name}", "text": None, "reason": S.Reason.PAYLOAD_DUPLICATE}
        for name in ("exact-survivor", "copy-1", "alone")
    ]
    docs = [
        [
            {"id": "exact-survivor", "text": base, "quality": 0.5},
            {"id": "copy-1", "text": base.upper(), "quality": 0.1},
        ],
        [
            {"id": "keeper", "text": edited(base, 2, 5), "quality": 0.9},
            {"id": "copy-2", "text": base + " ", "quality": None},
            {"id": "alone", "text": words_text(22)},
            *pre,
        ],
    ]
    write_parts(tmp_path / "docs", docs)
    pre_dir = tmp_path / "dedup_pre"
    pre_dir.mkdir()
    survivors = [(0, 0, 0), (0, 0, 1), (1, 0, 2)]  # (file, chunk, row) of each survivor
    pq.write_table(
        pa.table(
            {
                "file_index": [1, 1, 1],
                "chunk_index": [1, 1, 1],
                "row": [0, 1, 2],
                S.DROP_REASON: [S.Reason.PAYLOAD_DUPLICATE] * 3,
                S.DUP_CLUSTER_ID: ["exact-survivor", "copy-1", "alone"],
                S.DUP_CLUSTER_SIZE: [2, 2, 2],
                "survivor_file": [s[0] for s in survivors],
                "survivor_chunk": [s[1] for s in survivors],
                "survivor_row": [s[2] for s in survivors],
            },
            schema=PRE_DROPS_SCHEMA,
        ),
        pre_dir / "drops-00000.parquet",
    )
    (pre_dir / "done.json").write_text(json.dumps({"stats": {}, "n_files": 2, "n_groups": 1}))
    expected = {
        "pre-of-exact-survivor": "keeper",
        "pre-of-copy-1": "keeper",
        "pre-of-alone": "alone",
    }
    for near in (True, False):
        cfg = replace(CFG, near=replace(CFG.near, enabled=near))
        if not near:  # exact pass alone: exact-survivor is kept, copy-1 names it
            expected = {**expected, "pre-of-exact-survivor": "exact-survivor"}
            expected["pre-of-copy-1"] = "exact-survivor"
        for partitions in (1, 5):
            out = tmp_path / f"dedup-{near}-{partitions}"
            result = run_dedup(
                tmp_path / "docs",
                cfg,
                out,
                partitions=partitions,
                pre_dir=pre_dir,
                docs_per_range=2,
                log=lambda line: None,
            )
            assert result.stats["pre_extraction_cluster_ids_resolved"] == (2 if near else 1)
            assert result.stats["removed"] == (3 if near else 2)  # not the resolved pre rows
            decisions, pre_decisions = DedupDecisions(out), PreDecisions(pre_dir)
            names = {}
            for f, c in [(0, 0), (1, 0), (1, 1)]:
                table = pq.read_table(tmp_path / "docs" / f"{f:05d}-{c:05d}.parquet")
                table = pre_decisions.fill_clusters(decisions.apply(table, f, c), f, c)
                for row in table.to_pylist():
                    if row[S.DROP_REASON] == S.Reason.PAYLOAD_DUPLICATE:
                        names[row[S.ID]] = row[S.DUP_CLUSTER_ID]
            assert names == expected


def test_pipeline_dedups_small_runs_in_the_driver_and_large_ones_on_ray(
    tmp_path, ray_local, monkeypatch
):
    """dedup_phase: below IN_DRIVER_MAX_ROWS no Ray task runs; above it, Ray tasks do;
    the decisions are the same."""
    import dedup.barrier as barrier
    import dedup.executor as executor
    from pipeline.config import Config

    cfg = replace(Config(), dedup=CFG)
    used = []
    for name in ("SerialExecutor", "RayExecutor"):
        cls = getattr(executor, name)
        monkeypatch.setattr(cls, "map", lambda self, fn, calls, _m=cls.map, _n=name:
                            used.append(_n) or _m(self, fn, calls))  # fmt: skip
    outcomes = []
    for limit in (10**6, 0):  # corpus() is 9 rows: first in the driver, then on Ray
        monkeypatch.setattr(barrier, "IN_DRIVER_MAX_ROWS", limit)
        work = tmp_path / f"w{limit}"
        write_parts(work / "docs", corpus())
        used.clear()
        result = barrier.dedup_phase(cfg, work, log=lambda line: None)
        outcomes.append((dropped(work / "dedup", work / "docs"), result.stats))
        assert set(used) == ({"SerialExecutor"} if limit else {"RayExecutor"})
    assert outcomes[0] == outcomes[1] and outcomes[0][0]
