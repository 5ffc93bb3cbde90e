"""How much of each page's main text each extractor finds, on labelled pages, and how fast.

    python bench/extraction_quality.py [--pages N] [--results bench/EXTRACTION.md]

`extract.extractor` trades quality for speed (resiliparse runs ~10x trafilatura's speed);
this bench measures the quality side of that trade, so it is made knowingly. Two labelled
sets, from ../shared/data (research licences: read there, never copied into the repo):

- **Dragnet** (Peters & Lecocq, WWW 2013; `extraction/dragnet`): 1,381 news and blog
  pages, each with its gold text: the main text, then (on 416 pages) a COMMENTS separator
  and the readers' comments. Scored on words, as dragnet's own evaluation and Bevendorff
  et al. (SIGIR 2023) do: the extracted text's and the gold text's bags of lowercased
  `\\w+` words; precision = shared words / extracted words, recall = shared words / gold
  words. Reported micro (words summed over all pages) and as the median F1 of a page (a
  page with no text scores 0), twice: against the main text alone (crawlmill's
  trafilatura leaves comments out, `extract.trafilatura.include_comments`) and against
  main text and comments (with `include_comments` / `comments` on, the extractors keep
  comment sections: judged on the main text alone, those count as noise).
- **trafilatura's evaluation set** (`extraction/trafilatura-evaldata.json`): 990 URLs,
  each with 1-6 snippets that must appear in the main text (`with`) and 1-6 that must not
  (`without`: menus, footers, dates); the pages are in `bench/realpages.warc.gz` under
  those URLs. Scored like trafilatura's `tests/comparison.py`: a `with` snippet found is a
  true positive, missed a false negative; a `without` snippet found a false positive, not
  found a true negative. Its author built it while tuning trafilatura: trafilatura's home
  ground, so read its lead over other extractors there as an upper bound.

Each extractor runs as crawlmill runs it: `pipeline.extract.TimedExtractor`, in its own
child with the per-page CPU time limit (a timeout gives no text, and is counted), on the
HTML decoded by `pipeline.decode`. The variants are `--set` overrides of the default
config, so each row is a setting a user can pick. Speed: the extractor child's CPU
seconds over the pages of both sets (one child at a time: the per-page cost, not a
parallel throughput).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tarfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from side_by_side import machine  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.decode import decode_html  # noqa: E402
from pipeline.extract import TimedExtractor  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DRAGNET = SHARED / "extraction" / "dragnet"
EVALDATA = SHARED / "extraction" / "trafilatura-evaldata.json"
REALPAGES = SHARED / "bench" / "realpages.warc.gz"

# name -> the `--set` overrides that make it (on the default config)
EXTRACTORS = {
    "trafilatura": [],  # crawlmill's default: favor_precision off, tables on, no dedup
    "trafilatura-datatrove": [  # datatrove's Trafilatura step's defaults
        "extract.trafilatura.favor_precision=true",
        "extract.trafilatura.deduplicate=true",
    ],
    "trafilatura-fast": ["extract.trafilatura.fast=true"],  # no fallback extractors
    # recall mode skips the fallback comparison once the main pass found > 10x its minimum
    # size (trafilatura/external.py, compare_extraction)
    "trafilatura-recall": ["extract.trafilatura.favor_recall=true"],
    "trafilatura-fast-recall": [
        "extract.trafilatura.fast=true",
        "extract.trafilatura.favor_recall=true",
    ],
    "trafilatura-comments": ["extract.trafilatura.include_comments=true"],
    "resiliparse": ["extract.extractor=resiliparse"],  # comment sections left out
    "resiliparse-comments": ["extract.extractor=resiliparse", "extract.resiliparse.comments=true"],
}

# dragnet's gold files end the main text with a line like "!@#$%^&*()  COMMENTS" (typed by
# hand: 416 files, 10 spellings); what follows is the page's comments.
COMMENTS_SEPARATOR = re.compile(r"^[^\n]*[$%^&*][^\n]*COMMENTS[ \t]*$", re.MULTILINE)
WORD = re.compile(r"\w+")


# --- Scores -------------------------------------------------------------------------------


def gold_main_text(gold: str) -> str:
    """The main text of a dragnet gold file: what comes before its COMMENTS line."""
    return COMMENTS_SEPARATOR.split(gold, maxsplit=1)[0]


def words(text: str) -> Counter:
    return Counter(WORD.findall(text.lower()))


def word_overlap(got: Counter, want: Counter) -> tuple[int, int, int]:
    """(shared words, extracted words, gold words) of two `words` bags, repeats counted:
    a word twice in both texts is shared twice."""
    return sum((got & want).values()), sum(got.values()), sum(want.values())


def f1(shared: int, extracted: int, gold: int) -> float:
    return 2 * shared / (extracted + gold) if extracted + gold else 1.0


def snippet_counts(text: str, item: dict) -> Counter:
    """trafilatura's tests/comparison.py scoring of one page: tp, fn, fp, tn."""
    counts = Counter(tp=0, fn=0, fp=0, tn=0)
    for snippet in item["with"]:
        counts["tp" if snippet in text else "fn"] += 1
    for snippet in item["without"]:
        counts["fp" if snippet in text else "tn"] += 1
    return counts


def snippet_scores(counts: Counter) -> dict:
    tp, fn, fp, tn = (counts[k] for k in ("tp", "fn", "fp", "tn"))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "accuracy": (tp + tn) / (tp + fn + fp + tn) if counts.total() else 0.0,
        **dict(counts),
    }


def dragnet_scores(overlaps: list[tuple[int, int, int]]) -> dict:
    shared, extracted, gold = (sum(column) for column in zip(*overlaps, strict=True))
    per_page = [f1(*o) for o in overlaps]
    return {
        "precision": shared / extracted if extracted else 0.0,
        "recall": shared / gold if gold else 0.0,
        "f1": f1(shared, extracted, gold),
        "f1_median": statistics.median(per_page),
        "empty": sum(1 for _, n, _ in overlaps if n == 0),
    }


# --- The labelled pages -------------------------------------------------------------------


def dragnet_pages(folder: Path, limit: int | None) -> list[tuple[str, str, str]]:
    """(decoded HTML, gold main text, whole gold text) of every dragnet page with a gold
    file, by name."""
    gold_dir = folder / "GoldStandard"
    pages = []
    with tarfile.open(folder / "input-html.tar.gz") as tar:
        members = sorted((m for m in tar if m.isfile()), key=lambda m: m.name)
        for member in members:
            gold_path = gold_dir / (Path(member.name).stem + ".txt")
            if not gold_path.is_file():
                continue
            html, _ = decode_html(tar.extractfile(member).read(), None)
            gold = gold_path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
            if html is not None:
                pages.append((html, gold_main_text(gold), gold))
            if limit and len(pages) >= limit:
                break
    return pages


def evaldata_pages(evaldata: Path, warc: Path, limit: int | None) -> list[tuple[str, dict]]:
    """(decoded HTML, snippets) of every evaluation URL found in the WARC, in its order."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    items = json.loads(evaldata.read_text())
    pages = []
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            item = items.get(record.headers.get("WARC-Target-URI"))
            if item is None:
                continue
            html, _ = decode_html(record.reader.read(), record.http_content_type)
            if html is not None:
                pages.append((html, item))
            if limit and len(pages) >= limit:
                break
    return pages


# --- The run ------------------------------------------------------------------------------


def run_extractor(overrides: list[str], htmls: list[str]) -> tuple[list[str], dict]:
    """Texts of `htmls` through crawlmill's extractor child; and its CPU seconds, timeouts."""
    extractor = TimedExtractor(load_config(None, overrides).extract)
    try:
        extractor.start()
        extractor.extract_many(htmls[:1])  # warm: the child's imports are not per-page cost
        start_cpu = extractor.cpu_seconds()  # None without /proc: no CPU figure then
        results = extractor.extract_many(htmls)
        cpu = None if start_cpu is None else extractor.cpu_seconds() - start_cpu
    finally:
        extractor.close()
    texts = [text or "" for text, _ in results]
    failed = Counter(reason for text, reason in results if text is None and reason)
    return texts, {"cpu_seconds": cpu, "failed": dict(failed)}


def evaluate(dragnet: list, evaldata: list, names: list[str], log=print) -> dict:
    """Each named extractor on the pages of both sets, in one child run: its scores."""
    htmls = [page[0] for page in dragnet] + [html for html, _ in evaldata]
    # the gold texts' words, counted once for every extractor
    gold_main = [words(main) for _, main, _ in dragnet]
    gold_whole = [words(whole) for _, _, whole in dragnet]
    results = {}
    for name in names:
        log(f"  {name} ({' '.join(EXTRACTORS[name]) or 'default'}) on {len(htmls):,} pages ...")
        texts, run = run_extractor(EXTRACTORS[name], htmls)
        got = [words(text) for text in texts[: len(dragnet)]]
        snippets = Counter()
        for text, (_, item) in zip(texts[len(dragnet) :], evaldata, strict=True):
            snippets.update(snippet_counts(text, item))
        results[name] = {
            "settings": EXTRACTORS[name],
            "dragnet": dragnet_scores(list(map(word_overlap, got, gold_main))),
            "dragnet_with_comments": dragnet_scores(list(map(word_overlap, got, gold_whole))),
            "evaldata": snippet_scores(snippets),
            "ms_per_page": None
            if run["cpu_seconds"] is None
            else 1000 * run["cpu_seconds"] / len(htmls),
            "failed": run["failed"],
        }
    return results


def render(meta: dict, results: dict) -> str:
    lines = [
        "# Extraction quality on labelled pages",
        "",
        f"{meta['date']}; {meta['machine']}; {meta['versions']}.",
        f"Command: `{meta['command']}`. Pages: Dragnet {meta['dragnet_pages']:,}; "
        f"trafilatura's evaluation set {meta['evaldata_pages']:,} (of its "
        f"{meta['evaldata_urls']:,} URLs, those found in realpages and decodable). How each "
        "is scored: `bench/extraction_quality.py`'s docstring and docs/BENCH.md.",
        "",
        "| extractor | `--set` | Dragnet main text: P / R / F1 | F1 a page (median) "
        "| Dragnet with comments: P / R / F1 | trafilatura's set: P / R / F1 "
        "| CPU ms a page | no text (Dragnet) | timeouts and errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def prf(scores: dict) -> str:
        return f"{scores['precision']:.3f} / {scores['recall']:.3f} / **{scores['f1']:.3f}**"

    for name, r in results.items():
        settings = " ".join(f"`{s}`" for s in r["settings"]) or "(default)"
        cpu = "–" if r["ms_per_page"] is None else f"{r['ms_per_page']:.1f}"
        lines.append(
            f"| {name} | {settings} | {prf(r['dragnet'])} | {r['dragnet']['f1_median']:.3f} "
            f"| {prf(r['dragnet_with_comments'])} | {prf(r['evaldata'])} "
            f"| {cpu} | {r['dragnet']['empty']} "
            f"| {sum(r['failed'].values())} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, help="at most this many pages of each set")
    parser.add_argument(
        "--extractors",
        default=",".join(EXTRACTORS),
        help="comma-separated, of: " + ", ".join(EXTRACTORS),
    )
    parser.add_argument("--results", type=Path, help="write the Markdown report here (and .json)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.extractors.split(",")]
    unknown = [n for n in names if n not in EXTRACTORS]
    if unknown:
        parser.error(f"--extractors: unknown {unknown}; choose from {list(EXTRACTORS)}")
    missing = [p for p in (DRAGNET, EVALDATA, REALPAGES) if not p.exists()]
    if missing:
        sys.exit(
            f"needs the labelled data in ../shared/data; missing: {', '.join(map(str, missing))}"
        )

    started = time.perf_counter()
    dragnet = dragnet_pages(DRAGNET, args.pages)
    evaldata = evaldata_pages(EVALDATA, REALPAGES, args.pages)
    print(f"{len(dragnet):,} Dragnet pages, {len(evaldata):,} pages of trafilatura's set")
    results = evaluate(dragnet, evaldata, names)

    from importlib.metadata import version

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": ", ".join(f"{p} {version(p)}" for p in ("trafilatura", "resiliparse")),
        "command": "python bench/extraction_quality.py"
        + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "dragnet_pages": len(dragnet),
        "evaldata_pages": len(evaldata),
        "evaldata_urls": len(json.loads(EVALDATA.read_text())),
        "seconds": time.perf_counter() - started,
    }
    report = render(meta, results)
    print(report)
    if args.results:
        args.results.write_text(report)
        args.results.with_suffix(".json").write_text(
            json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
