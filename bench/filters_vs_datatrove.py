"""crawlmill's rule filters against datatrove's, on the same extracted English texts.

    .venv/bin/python bench/filters_vs_datatrove.py \
        [--warc ../shared/data/bench/realpages.warc.gz] [--texts /tmp/realpages-texts.jsonl] \
        [--datatrove-python /tmp/dt-venv/bin/python] [--c4-terminal-punct] [--json OUT.json]

1. Texts: the WARC's pages go through crawlmill's own read -> extract (trafilatura, the
   default config) -> language ID stages in this process tree (2 worker processes, no
   Ray), and are cached as JSONL (`--texts`; ~2 min for realpages on 2 cores). Reused if
   the file exists.
2. crawlmill: `filters.rules.score_document` on every English text; the rules of each
   filter applied alone and all together (FineWeb's order: Gopher repetition, Gopher
   quality, C4, FineWeb; safety off), CPU seconds measured.
3. datatrove: this same file run by a Python that has datatrove (a separate venv outside
   the repo: `python3 -m venv /tmp/dt-venv && /tmp/dt-venv/bin/pip install datatrove
   spacy regex`; spaCy's blank English tokenizer needs no download), with
   GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(
   filter_no_terminal_punct=False) (FineWeb's setting, and crawlmill's default) and
   FineWebQualityFilter(), each alone and chained, CPU seconds measured.
4. Prints agreement (same keep/drop decision) per filter and for the chain, the drop
   counts per reason on both sides, the documents they disagree on, and CPU ms per doc.
5. `--drop-table`: crawlmill's whole default filter chain (URL filter, rule filters,
   classifier) over every language's documents: drops per reason and CPU ms per document
   per stage, next to trafilatura's CPU ms per page on `--time-extraction N` pages.

Nothing here downloads anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO.parent / "shared" / "data" / "bench" / "realpages.warc.gz"
GROUPS = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --- datatrove side (runs under the datatrove venv; imports nothing from crawlmill) -------


def datatrove_worker(texts_path: str, out_path: str, c4_terminal_punct: bool) -> None:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = {
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(filter_no_terminal_punct=c4_terminal_punct),
        "fineweb": FineWebQualityFilter(),
    }
    docs = [d for d in read_jsonl(Path(texts_path)) if d["lang"] == "en"]
    filters["gopher_quality"].filter(Document(text="warm up spaCy", id="0"))
    seconds = Counter()
    results = []
    for doc in docs:
        row = {"id": doc["id"]}
        cleaned = None
        for name, f in filters.items():
            text = cleaned if name == "fineweb" and cleaned is not None else doc["text"]
            d = Document(text=text, id=doc["id"])
            start = time.process_time()
            verdict = f.filter(d)
            seconds[name] += time.process_time() - start
            row[name] = None if verdict is True else verdict[1]
            if name == "c4":
                cleaned = d.text  # FineWeb runs on C4's output, as in FineWeb's pipeline
        # the chain: first failing filter in FineWeb's order
        row["chain"] = next((f"{n}:{row[n]}" for n in filters if row[n]), None)
        results.append(row)
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"results": results, "cpu_seconds": seconds}, out)


# --- texts ---------------------------------------------------------------------------------


def _extract_chunk(chunk):
    sys.path.insert(0, str(REPO))
    import pyarrow as pa

    from filters.langid import LangIdStage
    from pipeline import schema as S
    from pipeline.config import Config
    from pipeline.extract import ExtractStage
    from pipeline.warc import read_chunk

    cfg = Config()
    stages = [ExtractStage(cfg.extract), LangIdStage(cfg.langid)]
    raw = read_chunk(chunk, cfg.read.max_payload_bytes)
    rows = []
    for record_batch in raw.to_batches(max_chunksize=64):
        batch = pa.Table.from_batches([record_batch], schema=raw.schema)
        for stage in stages:
            batch = stage(batch)
        for row in batch.select([S.ID, S.URL, S.LANG, S.TEXT, S.DROP_REASON]).to_pylist():
            if row[S.DROP_REASON] is None:
                rows.append({k: row[k] for k in (S.ID, S.URL, S.LANG, S.TEXT)})
    return rows


def extract_texts(warc: Path, out: Path, processes: int) -> None:
    from multiprocessing import get_context

    from pipeline.warc import scan_chunks

    chunks = scan_chunks(str(warc), 0, 200)
    start = time.perf_counter()
    with get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_extract_chunk, chunks, chunksize=1)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for rows in parts:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    n = sum(len(rows) for rows in parts)
    print(f"extracted {n} documents from {warc} in {time.perf_counter() - start:.0f}s -> {out}")


# --- crawlmill side ------------------------------------------------------------------------


def crawlmill_decisions(docs: list[dict], c4_terminal_punct: bool) -> tuple[list[dict], dict]:
    import dataclasses

    import numpy as np

    from filters.rules import TEXT_FILTERS, score_document
    from pipeline.config import Config

    cfg = Config().filters
    cfg = dataclasses.replace(
        cfg,
        c4=dataclasses.replace(cfg.c4, drop_lines_without_terminal_punct=c4_terminal_punct),
        safety=dataclasses.replace(cfg.safety, enabled=False),
    )
    filters = {f.name: f for f in TEXT_FILTERS}
    results = []
    start = time.process_time()
    all_scores = [score_document(doc["text"], doc["lang"], cfg)[0] for doc in docs]
    seconds = time.process_time() - start
    for doc, scores in zip(docs, all_scores, strict=True):
        row = {"id": doc["id"]}
        for name in GROUPS:
            section = getattr(cfg, name)
            row[name] = None
            for rule in filters[name].rules:
                value = scores.get(rule.column)
                value = np.nan if value is None else float(value)
                with np.errstate(invalid="ignore"):
                    if bool(rule.fails(np.array([value]), section)[0]):
                        row[name] = rule.reason
                        break
        row["chain"] = next((f"{n}:{row[n]}" for n in GROUPS if row[n]), None)
        results.append(row)
    return results, {"all_filters": seconds}


def drop_table(docs: list[dict]) -> dict:
    """crawlmill's default filter stages on every document (all languages)."""
    import pyarrow as pa

    from filters.classifier import QualityClassifierStage
    from filters.rules import TextFilterStage
    from filters.urls import UrlFilterStage
    from pipeline import schema as S
    from pipeline.config import Config

    cfg = Config().filters
    stages = [
        UrlFilterStage(cfg.urls, cfg.disabled_rules),
        TextFilterStage(cfg),
        QualityClassifierStage(cfg.classifier, cfg.disabled_rules),
    ]
    table = pa.table(
        {
            S.ID: [d["id"] for d in docs],
            S.URL: [d["url"] for d in docs],
            S.LANG: [d["lang"] for d in docs],
            S.TEXT: pa.array([d["text"] for d in docs], pa.large_string()),
            S.DROP_REASON: pa.nulls(len(docs), pa.string()),
            S.DROP_STAGE: pa.nulls(len(docs), pa.string()),
        }
    )
    seconds = Counter()
    outputs = []
    for start in range(0, table.num_rows, 64):
        batch = table.slice(start, 64)
        for stage in stages:
            t = time.process_time()
            batch = stage(batch)
            seconds[stage.name] += time.process_time() - t
        outputs.append(batch.select([S.LANG, S.DROP_REASON, S.QUALITY_SCORE]))
    out = pa.concat_tables(outputs)
    reasons = Counter(out[S.DROP_REASON].to_pylist())
    kept_scores = [
        s for s, r in zip(out[S.QUALITY_SCORE].to_pylist(), out[S.DROP_REASON].to_pylist(),
                          strict=True) if r is None and s is not None
    ]  # fmt: skip
    return {
        "documents": len(docs),
        "kept": reasons.pop(None, 0),
        "drops": dict(reasons.most_common()),
        "cpu_ms_per_doc": {k: round(v / len(docs) * 1e3, 3) for k, v in seconds.items()},
        "classifier_would_drop": {
            str(t): sum(s < t for s in kept_scores) for t in (0.05, 0.1, 0.2, 0.5)
        },
        "classifier_scored": len(kept_scores),
    }


def extraction_ms_per_page(warc: Path, pages: int) -> float:
    """trafilatura (default config) CPU ms per page, in-process, on the first N pages."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    from pipeline.config import ExtractConfig
    from pipeline.decode import decode_html
    from pipeline.extract import time_extractor

    html = []
    for record in ArchiveIterator(str(warc), record_types=WarcRecordType.response):
        record.parse_http()
        text, _ = decode_html(record.reader.read(), record.http_headers.get("Content-Type"))
        if text:
            html.append(text)
        if len(html) >= pages:
            break
    start = time.process_time()
    time_extractor(ExtractConfig(), html)
    return (time.process_time() - start) / len(html) * 1e3


# --- comparison ----------------------------------------------------------------------------


def compare(ours: list[dict], theirs: list[dict], docs: list[dict]) -> dict:
    by_id = {row["id"]: row for row in theirs}
    text_of = {doc["id"]: doc for doc in docs}
    report = {"documents": len(ours), "agreement": {}, "drops": {}, "disagreements": {}}
    for name in [*GROUPS, "chain"]:
        same = 0
        differ = []
        for row in ours:
            other = by_id[row["id"]]
            if (row[name] is None) == (other[name] is None):
                same += 1
            else:
                doc = text_of[row["id"]]
                differ.append(
                    {"id": row["id"], "url": doc["url"], "crawlmill": row[name],
                     "datatrove": other[name], "chars": len(doc["text"])}
                )  # fmt: skip
        report["agreement"][name] = {
            "same": same,
            "of": len(ours),
            "rate": round(same / max(len(ours), 1), 4),
        }
        report["disagreements"][name] = differ
        theirs_reasons = [by_id[r["id"]][name] for r in ours]
        report["drops"][name] = {
            "crawlmill": dict(Counter(r[name] for r in ours if r[name]).most_common()),
            "datatrove": dict(Counter(x for x in theirs_reasons if x).most_common()),
        }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--texts", type=Path, default=Path("/tmp/realpages-texts.jsonl"))
    parser.add_argument("--datatrove-python", default="/tmp/dt-venv/bin/python")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--c4-terminal-punct",
        action="store_true",
        help="compare with C4's drop-lines-without-terminal-punctuation on (both sides)",
    )
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument(
        "--reuse-datatrove",
        action="store_true",
        help="reuse datatrove's decisions from a previous run on the same texts",
    )
    parser.add_argument(
        "--drop-table", action="store_true", help="crawlmill's drops per reason, all languages"
    )
    parser.add_argument(
        "--time-extraction", type=int, default=0, metavar="N",
        help="also time trafilatura on the first N pages (CPU ms per page)",
    )  # fmt: skip
    parser.add_argument("--datatrove-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.datatrove_worker:
        datatrove_worker(*args.datatrove_worker, args.c4_terminal_punct)
        return 0

    sys.path.insert(0, str(REPO))
    if not args.texts.exists():
        extract_texts(args.warc, args.texts, args.processes)
    all_docs = read_jsonl(args.texts)
    docs = [d for d in all_docs if d["lang"] == "en"]
    if args.drop_table:
        table = drop_table(all_docs)
        if args.time_extraction:
            table["trafilatura_cpu_ms_per_page"] = round(
                extraction_ms_per_page(args.warc, args.time_extraction), 1
            )
        print(json.dumps(table, indent=2))
        if args.json:
            args.json.write_text(json.dumps(table, indent=2))
        return 0

    theirs_path = args.texts.with_suffix(
        ".datatrove-tp.json" if args.c4_terminal_punct else ".datatrove.json"
    )
    command = [args.datatrove_python, __file__, "--datatrove-worker", str(args.texts)]
    command += [str(theirs_path)] + (["--c4-terminal-punct"] if args.c4_terminal_punct else [])
    if not (args.reuse_datatrove and theirs_path.exists()):
        subprocess.run(command, check=True)
    theirs = json.loads(theirs_path.read_text())

    ours, our_seconds = crawlmill_decisions(docs, args.c4_terminal_punct)
    report = compare(ours, theirs["results"], docs)

    def per_doc(seconds: float) -> float:
        return round(seconds / len(docs) * 1e3, 3)

    report["cpu_ms_per_doc"] = {
        "crawlmill_all_four_filters": per_doc(our_seconds["all_filters"]),
        "datatrove": {k: per_doc(v) for k, v in theirs["cpu_seconds"].items()},
        "datatrove_all_four_filters": per_doc(sum(theirs["cpu_seconds"].values())),
    }

    print(f"{len(docs)} English documents from {args.texts}")
    print(f"{'filter':<20} {'same decision':>15} {'rate':>7}   drops crawlmill / datatrove")
    for name in [*GROUPS, "chain"]:
        a = report["agreement"][name]
        ours_n = sum(report["drops"][name]["crawlmill"].values())
        theirs_n = sum(report["drops"][name]["datatrove"].values())
        print(f"{name:<20} {a['same']:>7}/{a['of']:<7} {a['rate']:>7.2%}   {ours_n} / {theirs_n}")
    print("CPU ms per document:", json.dumps(report["cpu_ms_per_doc"]))
    for name in [*GROUPS, "chain"]:
        for d in report["disagreements"][name][:50]:
            print(f"  {name}: {d['id']} {d['url']} crawlmill={d['crawlmill']} "
                  f"datatrove={d['datatrove']} chars={d['chars']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
