"""Where the language check before extraction pays, on your own pages.

    .venv/bin/python bench/langid_check.py INPUT... [--set langid.languages=[en] ...]

`langid.before_extraction` (filters/langid.py, LangIdBeforeExtractionStage) runs lid.176
on resiliparse's cheap text of every HTML page that does not declare a wanted language,
and drops the pages plainly in another one before trafilatura sees them. It costs ~1/7
of an extraction for every page it checks, so it pays where it drops more than ~1 page in
7. How many it drops depends on the crawl, above all on its pages without a `<html lang>`.

This runs the check as the stage does (same config keys, same text, same thresholds) on
INPUT (files, directories, globs: what `crawlmill run --input` takes) and prints, for the
pages that declare another language and for those that declare none: pages checked and
dropped, the check's CPU seconds, and trafilatura's CPU seconds on the dropped pages (what
the check saved), both measured here in one process. Measured on 2026-11-24:

- realpages (extraction benchmark pages, mostly English; `bench/langid_check.py` on
  `bench/side_by_side.py`'s split of it): another language declared, 725 of 751 dropped,
  1.16 CPU s of checks saving 7.17 of trafilatura; none declared, 69 of 1,869 dropped,
  1.85 CPU s of checks saving 0.79;
- the real crawl samples of ../shared/data/warc (Common Crawl, ClueWeb and others, 88
  pages checked): none declared, 49 of 80 dropped, 0.08 CPU s of checks saving 0.54.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.langid import LangIdStage, declared_language  # noqa: E402
from pipeline.config import ResiliparseConfig, load_config  # noqa: E402
from pipeline.decode import decode_html  # noqa: E402
from pipeline.extract_child import make_extractor  # noqa: E402
from pipeline.io import expand_inputs  # noqa: E402
from pipeline.warc import read_file  # noqa: E402


def html_pages(inputs: list[str], max_payload_bytes: int) -> list[str]:
    """Every live, decodable HTML page of the inputs (WET conversions hold text already)."""
    pages = []
    for path in expand_inputs(inputs):
        for row in read_file(path, max_payload_bytes).to_pylist():
            if row["drop_reason"] is None and row["record_type"] != "conversion":
                html, _ = decode_html(row["payload"] or b"", row["content_type"])
                if html is not None:
                    pages.append(html)
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="WARC files, directories or globs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    cfg = load_config(None, ["langid.languages=[en]", *args.set])
    if cfg.langid.languages == "all":
        sys.exit("langid.languages must be a list: with 'all' the check has nothing to drop")
    wanted = set(cfg.langid.languages)
    langid = LangIdStage(cfg.langid)
    # The stage's cheap text: resiliparse with its default settings (filters/langid.py).
    resiliparse = replace(cfg.extract, extractor="resiliparse", resiliparse=ResiliparseConfig())
    cheap_text = make_extractor(asdict(resiliparse))
    trafilatura = make_extractor(asdict(cfg.extract))  # as the extractor child runs it

    groups: dict[str, dict] = {}
    for html in html_pages(args.inputs, cfg.read.max_payload_bytes):
        declared = declared_language(html)
        if declared in wanted:
            continue  # the stage does not check these
        group = groups.setdefault(
            "none declared" if declared is None else "another declared",
            {"checked": 0, "dropped": 0, "check_cpu": 0.0, "saved_cpu": 0.0},
        )
        start = time.process_time()
        text = cheap_text(html)
        drop = False
        if text:
            (lang,), scores = langid.predict([text])
            drop = lang not in wanted and scores[0] >= cfg.langid.before_extraction_min_score
        group["check_cpu"] += time.process_time() - start
        group["checked"] += 1
        if drop:
            group["dropped"] += 1
            start = time.process_time()
            trafilatura(html)
            group["saved_cpu"] += time.process_time() - start

    print("| pages | checked | dropped | check CPU s | trafilatura CPU s on the dropped |")
    print("|---|---|---|---|---|")
    for name, g in sorted(groups.items()):
        share = g["dropped"] / g["checked"] if g["checked"] else 0.0
        print(
            f"| {name} | {g['checked']:,} | {g['dropped']:,} ({share:.0%}) "
            f"| {g['check_cpu']:.2f} | {g['saved_cpu']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
