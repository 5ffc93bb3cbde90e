"""Pair precision and recall of dedup on generated near-duplicates of real pages.

    python bench/dedup_quality.py [--families 600] [--seed 0] [--format html|wet]
        [--extractor resiliparse|trafilatura] [--num-cpus 2] [--no-quality-filters]
        [--work DIR] [--json OUT]

1. bench/neardup_generator.py writes a WARC of families (a real page + 0-5 variants
   edited to target Jaccard levels) and the truth;
2. the pipeline's documents phase runs on it (`crawlmill run`, dedup switched off when
   the config has it), so dedup sees exactly what it sees in production: extracted text,
   language labels, quality filters;
3. the global dedup step (`dedup.barrier.run_dedup`, on Ray) runs on those parts under a
   few configurations;
4. the truth is recomputed from the parts: the exact Jaccard of every pair of documents of
   a family, and of every pair the step put in one cluster, on the same shingles dedup
   uses (dedup/normalize.py, the row's `lang`).

A pair is "merged" when both documents end up in one cluster (connected through
exact-duplicate and near-duplicate links). Reported, at threshold t:

- recall: merged share of pairs with true Jaccard >= t + 0.05 (issue target >= 0.95);
- precision: merged pairs with true Jaccard >= t among merged pairs, counting only pairs
  outside the grey zone [t - 0.1, t) (issue target >= 0.98); also without that exclusion;
- false merges: merged share of pairs below t - 0.1, split into unrelated pages (different
  families) and related ones (heavy edits of the same page, which clusters can reach
  through a third document: A ~ S ~ B);
- merge rate per true-Jaccard bin, for source-variant pairs (controlled levels) and all.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import neardup_generator  # noqa: E402

from dedup.barrier import DedupDecisions, run_dedup  # noqa: E402
from dedup.components import union_find_roots  # noqa: E402
from dedup.normalize import normalize_words, shingle_mode, shingles_from_words  # noqa: E402
from pipeline import schema as S  # noqa: E402
from pipeline.config import DedupConfig  # noqa: E402

BINS = [0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0001]


QUALITY_FILTERS = ["urls", "gopher_repetition", "gopher_quality", "c4", "fineweb", "safety"]


def run_documents_phase(
    warc: Path, out: Path, extractor: str, num_cpus: int, quality_filters: bool = True
) -> Path:
    from pipeline.config import ConfigError, load_config
    from pipeline.runner import run

    overrides = [f"extract.extractor={extractor}"]
    if not quality_filters:  # every generated page reaches dedup (more zh/ja pairs)
        overrides += [f"filters.{name}.enabled=false" for name in QUALITY_FILTERS]
    try:
        cfg = load_config(None, [*overrides, "dedup.enabled=false"])
    except ConfigError:  # a config without a dedup section
        cfg = load_config(None, overrides)
    run(cfg, [str(warc)], out, num_cpus=num_cpus, log=lambda line: None)
    return out / "_work" / "docs"


def alive_documents(parts_dir: Path) -> dict[str, dict]:
    docs = {}
    for part in sorted(parts_dir.glob("*.parquet")):
        file_index, chunk_index = (int(x) for x in part.stem.split("-"))
        table = pq.read_table(part, columns=[S.ID, S.TEXT, S.LANG, S.DROP_REASON])
        for row, (doc_id, text, lang, reason) in enumerate(
            zip(*(table[c].to_pylist() for c in table.column_names), strict=True)
        ):
            if reason is None:
                docs[doc_id] = {"text": text, "lang": lang, "part": (file_index, chunk_index, row)}
    return docs


def shingle_sets(docs: dict[str, dict], cfg: DedupConfig) -> dict[str, set]:
    near = cfg.near
    char_langs = frozenset(near.char_ngram_languages)
    out = {}
    for doc_id, doc in docs.items():
        mode = shingle_mode(doc["lang"], doc["text"], char_langs)
        out[doc_id] = set(
            shingles_from_words(normalize_words(doc["text"]), mode, near.ngram, near.char_ngram)
        )
    return out


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


def predicted_clusters(parts_dir: Path, dedup_dir: Path, docs: dict) -> dict[str, str]:
    """doc id -> cluster representative (union of every drop -> kept document link)."""
    decisions = DedupDecisions(dedup_dir)
    by_part = defaultdict(dict)
    for doc_id, doc in docs.items():
        f, c, row = doc["part"]
        by_part[(f, c)][row] = doc_id
    links = []  # (dropped document, the kept document it names)
    for (f, c), rows in by_part.items():
        drops = decisions.for_part(f, c)
        for row, kept in zip(
            drops["row"].to_pylist(), drops[S.DUP_CLUSTER_ID].to_pylist(), strict=True
        ):
            links.append((rows[row], kept))
    roots = union_find_roots(links)
    return {doc_id: roots.get(doc_id, doc_id) for doc_id in docs}


def evaluate(truth, docs, sets, clusters, threshold: float) -> dict:
    family = {t["id"]: t["family"] for t in truth if t["id"] in docs}
    char_mode = {t["family"] for t in truth if t["mode"] == "chars"}
    role = {t["id"]: t["role"] for t in truth if t["id"] in docs}
    members = defaultdict(list)
    for doc_id, fam in family.items():
        members[fam].append(doc_id)
    pairs = {}  # (a, b) -> (jaccard, same family, source-variant)
    for fam_docs in members.values():
        for a, b in itertools.combinations(sorted(fam_docs), 2):
            source_variant = {role[a], role[b]} == {"source", "variant"}
            pairs[(a, b)] = (jaccard(sets[a], sets[b]), True, source_variant)
    by_cluster = defaultdict(list)
    for doc_id, rep in clusters.items():
        by_cluster[rep].append(doc_id)
    merged = set()
    for cluster in by_cluster.values():
        for a, b in itertools.combinations(sorted(cluster), 2):
            merged.add((a, b))
            if (a, b) not in pairs:
                pairs[(a, b)] = (jaccard(sets[a], sets[b]), family[a] == family[b], False)
    hi, lo, grey_low = threshold + 0.05, threshold - 0.1, threshold - 0.1

    def rate(selected):
        selected = list(selected)
        hit = sum(1 for p in selected if p in merged)
        return {
            "pairs": len(selected),
            "merged": hit,
            "rate": hit / len(selected) if selected else None,
        }

    positives = [p for p, (j, _, _) in pairs.items() if j >= hi]
    merged_pairs = [p for p in merged]
    true_merged = [p for p in merged_pairs if pairs[p][0] >= threshold]
    outside_grey = [p for p in merged_pairs if not (grey_low <= pairs[p][0] < threshold)]
    n_docs = len(docs)
    cross_family_pairs = n_docs * (n_docs - 1) // 2 - sum(
        len(m) * (len(m) - 1) // 2 for m in members.values()
    )
    cross_merged = [p for p in merged_pairs if not pairs[p][1]]
    table = []
    for low, high in itertools.pairwise(BINS):
        in_bin = [p for p, (j, same, _) in pairs.items() if same and low <= j < high]
        sv = [p for p in in_bin if pairs[p][2]]
        table.append(
            {
                "jaccard": f"[{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'}",
                "all_pairs": rate(in_bin),
                "source_variant_pairs": rate(sv),
            }
        )
    return {
        "documents": n_docs,
        "families": len(members),
        "recall_at_t_plus_0.05": rate(positives),
        "recall_source_variant_at_t_plus_0.05": rate(
            [p for p in positives if pairs[p][2] and pairs[p][1]]
        ),
        "recall_char_shingled_families_at_t_plus_0.05": rate(
            [p for p in positives if pairs[p][1] and family[p[0]] in char_mode]
        ),
        "unrelated_char_shingled_merged_pairs": sum(
            1 for p in cross_merged if family[p[0]] in char_mode or family[p[1]] in char_mode
        ),
        "precision_outside_grey_zone": (
            sum(1 for p in outside_grey if pairs[p][0] >= threshold) / len(outside_grey)
            if outside_grey
            else None
        ),
        "precision_all_merged": len(true_merged) / len(merged_pairs) if merged_pairs else None,
        "merged_pairs": len(merged_pairs),
        "false_merge_unrelated": {
            "pairs": cross_family_pairs,
            "merged": len(cross_merged),
            "merged_below_t_minus_0.1": sum(1 for p in cross_merged if pairs[p][0] < lo),
        },
        "false_merge_related_below_t_minus_0.1": rate(
            [p for p, (j, same, _) in pairs.items() if same and j < lo]
        ),
        "false_merge_related_source_variant_below_t_minus_0.1": rate(
            [p for p, (j, same, sv) in pairs.items() if same and sv and j < lo]
        ),
        "by_jaccard": table,
    }


CONFIGS = {
    "recipe (14x9, verify)": {},
    "14x9, no verify": {"verify": False},
    "datasketch default weights (9x13), no verify": {
        "false_positive_weight": 0.5,
        "false_negative_weight": 0.5,
        "verify": False,
    },
    "datasketch default weights (9x13), verify": {
        "false_positive_weight": 0.5,
        "false_negative_weight": 0.5,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", type=int, default=600)
    # (--no-quality-filters: the rule filters and URL filter off, so that every generated
    # page, zh/ja ones included, reaches dedup)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["html", "wet"], default="html")
    parser.add_argument("--extractor", default="resiliparse")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--no-quality-filters", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="crawlmill-dedup-quality-"))

    start = time.perf_counter()
    summary = neardup_generator.generate(
        work / "gen", args.families, args.seed, args.format, neardup_generator.DEFAULT_SOURCES
    )
    print(f"generated {json.dumps(summary)} in {time.perf_counter() - start:.0f}s")
    truth = [json.loads(line) for line in (work / "gen" / "truth.jsonl").open()]

    start = time.perf_counter()
    parts = run_documents_phase(
        work / "gen" / "neardup.warc.gz",
        work / "run",
        args.extractor,
        args.num_cpus,
        quality_filters=not args.no_quality_filters,
    )
    docs = alive_documents(parts)
    stats = json.loads((work / "run" / "stats.json").read_text())
    print(
        f"documents phase: {len(docs)} alive documents in {time.perf_counter() - start:.0f}s; "
        f"dropped before dedup: {stats['rejected_by_reason']}"
    )

    from dedup.executor import RayExecutor

    results = {
        "generator": summary,
        "alive_documents": len(docs),
        "dropped_before_dedup": stats["rejected_by_reason"],
        "configs": {},
    }
    for index, (name, near_changes) in enumerate(CONFIGS.items()):
        cfg = DedupConfig()
        cfg = replace(cfg, near=replace(cfg.near, **near_changes))
        out = work / "dedup" / f"config-{index}"
        start = time.perf_counter()
        result = run_dedup(parts, cfg, out, executor=RayExecutor(), log=lambda line: None)
        seconds = time.perf_counter() - start
        sets = shingle_sets(docs, cfg)
        clusters = predicted_clusters(parts, out, docs)
        report = evaluate(truth, docs, sets, clusters, cfg.near.threshold)
        report["dedup_stats"] = result.stats
        report["seconds"] = seconds
        results["configs"][name] = report
        print_report(name, report)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True))


def print_report(name: str, r: dict) -> None:
    def fmt(x):
        return "n/a" if x is None else f"{x:.4f}"

    s = r["dedup_stats"]
    print(f"\n== {name}: bands x rows {s['near'].get('bands')} x {s['near'].get('rows')}")
    print(
        f"  removed: exact {s['exact']['removed']}, near {s['near']['removed']} "
        f"of {s['docs_in']} ({r['seconds']:.1f}s)"
    )
    rec = r["recall_at_t_plus_0.05"]
    rec_sv = r["recall_source_variant_at_t_plus_0.05"]
    print(
        f"  recall (J >= t+0.05): {fmt(rec['rate'])} ({rec['merged']}/{rec['pairs']}); "
        f"source-variant {fmt(rec_sv['rate'])} ({rec_sv['merged']}/{rec_sv['pairs']})"
    )
    cjk = r["recall_char_shingled_families_at_t_plus_0.05"]
    print(
        f"  recall, families shingled by characters (zh, ja ...): {fmt(cjk['rate'])} "
        f"({cjk['merged']}/{cjk['pairs']}); their unrelated merged pairs: "
        f"{r['unrelated_char_shingled_merged_pairs']}"
    )
    print(
        f"  precision outside grey zone: {fmt(r['precision_outside_grey_zone'])}; "
        f"all merged pairs: {fmt(r['precision_all_merged'])} ({r['merged_pairs']} pairs)"
    )
    un = r["false_merge_unrelated"]
    rel = r["false_merge_related_below_t_minus_0.1"]
    rel_sv = r["false_merge_related_source_variant_below_t_minus_0.1"]
    print(
        f"  merged unrelated pairs: {un['merged']} of {un['pairs']:,}; related J < t-0.1: "
        f"{rel['merged']}/{rel['pairs']} (source-variant {rel_sv['merged']}/{rel_sv['pairs']})"
    )
    print("  merge rate by true Jaccard:  all pairs          source-variant pairs")
    for row in r["by_jaccard"]:
        a, b = row["all_pairs"], row["source_variant_pairs"]
        print(
            f"    {row['jaccard']:<13} {fmt(a['rate']):>7} ({a['merged']:>4}/{a['pairs']:<4})"
            f"   {fmt(b['rate']):>7} ({b['merged']:>4}/{b['pairs']:<4})"
        )


if __name__ == "__main__":
    main()
