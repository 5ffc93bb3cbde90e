"""Which Clough-Stevenson answers does dedup match to their Wikipedia original?

    python bench/dedup_clough.py [--thresholds 0.8,0.5,0.3] [--json OUT]

Clough & Stevenson (2011), ../shared/data/neardup/clough-stevenson-plagiarism-corpus:
5 Wikipedia originals (orig_task{a-e}.txt) and 95 short answers written to them, labelled
cut (copy-pasted from the original, 19), light (light revision, 19), heavy (heavy
revision, 19) and non (written without the original, 38). The 100 texts go through the
global dedup step (`run_dedup`, exact + near, the recipe's shingles) as one run; an answer
is "matched" when it lands in its original's cluster. For each category: matched count,
and the true Jaccard and containment (share of the answer's shingles found in the
original) with the original, on the same word 5-gram shingles.

Jaccard is symmetric: an answer that copies a third of a 500-word original has a Jaccard
near 0.3 with it even if every word was pasted. So this corpus shows what MinHash dedup
does and does not catch (near-copies of whole documents, not excerpts), at the recipe's
threshold and lower ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dedup.barrier import DedupDecisions, run_dedup  # noqa: E402
from dedup.normalize import shingles  # noqa: E402
from pipeline import schema as S  # noqa: E402
from pipeline.config import DedupConfig  # noqa: E402

CORPUS = REPO.parent / "shared" / "data" / "neardup" / "clough-stevenson-plagiarism-corpus"
CATEGORIES = ["cut", "light", "heavy", "non"]


def load_corpus() -> tuple[dict[str, str], list[dict]]:
    texts = {}
    for path in sorted(CORPUS.glob("*.txt")):
        texts[path.name] = path.read_bytes().decode("utf-8", errors="replace")
    with open(CORPUS / "file_information.csv", newline="") as f:
        answers = [
            {"file": row["File"], "task": row["Task"], "category": row["Category"]}
            for row in csv.DictReader(f)
        ]
    return texts, answers


def run_once(texts: dict[str, str], cfg: DedupConfig, work: Path) -> dict[str, str]:
    """file name -> name of the document kept in its cluster (itself when kept)."""
    parts = work / "docs"
    shutil.rmtree(work, ignore_errors=True)
    parts.mkdir(parents=True)
    names = sorted(texts)
    pq.write_table(
        pa.table(
            {
                S.ID: names,
                S.TEXT: pa.array([texts[n] for n in names], pa.large_string()),
                S.LANG: ["en"] * len(names),
                S.DROP_REASON: pa.nulls(len(names), pa.string()),
                S.DROP_STAGE: pa.nulls(len(names), pa.string()),
            }
        ),
        parts / "00000-00000.parquet",
    )
    run_dedup(parts, cfg, work / "dedup", log=lambda line: None)
    drops = DedupDecisions(work / "dedup").for_part(0, 0)
    kept_by = {n: n for n in names}
    for row, kept in zip(
        drops["row"].to_pylist(), drops[S.DUP_CLUSTER_ID].to_pylist(), strict=True
    ):
        kept_by[names[row]] = kept
    # follow chains (an exact duplicate's survivor may be a near duplicate of another)
    for name in names:
        while kept_by[kept_by[name]] != kept_by[name]:
            kept_by[name] = kept_by[kept_by[name]]
    return kept_by


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thresholds", default="0.8,0.7,0.5,0.3")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts, answers = load_corpus()
    sets = {name: set(shingles(text, "en")) for name, text in texts.items()}
    rows = []
    for a in answers:
        answer, original = sets[a["file"]], sets[f"orig_task{a['task']}.txt"]
        common = len(answer & original)
        rows.append(
            {
                **a,
                "jaccard": common / len(answer | original),
                "containment": common / len(answer) if answer else 0.0,
            }
        )
    report = {"categories": {}, "thresholds": {}}
    print("true similarity with the original (word 5-grams), by category:")
    for category in CATEGORIES:
        js = [r["jaccard"] for r in rows if r["category"] == category]
        cs = [r["containment"] for r in rows if r["category"] == category]
        report["categories"][category] = {
            "answers": len(js),
            "jaccard_min_median_max": [min(js), statistics.median(js), max(js)],
            "containment_min_median_max": [min(cs), statistics.median(cs), max(cs)],
        }
        print(
            f"  {category:<6} n={len(js):>2}  Jaccard min/median/max "
            f"{min(js):.2f}/{statistics.median(js):.2f}/{max(js):.2f}   containment "
            f"{min(cs):.2f}/{statistics.median(cs):.2f}/{max(cs):.2f}"
        )
    work = Path(tempfile.mkdtemp(prefix="crawlmill-clough-"))
    for threshold in (float(t) for t in args.thresholds.split(",")):
        cfg = DedupConfig()
        cfg = replace(cfg, near=replace(cfg.near, threshold=threshold))
        kept_by = run_once(texts, cfg, work / f"t{threshold}")
        matched = {}
        for category in CATEGORIES:
            members = [r for r in rows if r["category"] == category]
            hits = [
                r for r in members if kept_by[r["file"]] == kept_by[f"orig_task{r['task']}.txt"]
            ]
            matched[category] = {"matched": len(hits), "of": len(members)}
        wrong = sum(
            1
            for r in rows
            for other in rows
            if r["task"] != other["task"]
            and r["file"] < other["file"]
            and kept_by[r["file"]] == kept_by[other["file"]]
        )
        report["thresholds"][str(threshold)] = {"matched": matched, "cross_task_pairs": wrong}
        print(
            f"threshold {threshold}: matched to their original: "
            + ", ".join(f"{c} {m['matched']}/{m['of']}" for c, m in matched.items())
            + f"; answers of different tasks merged: {wrong} pairs"
        )
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
