"""Where the language check before extraction pays, on your own pages.

    .venv/bin/python bench/langid_check.py INPUT... [--set langid.languages=[en] ...]

`langid.before_extraction` (filters/langid.py, LangIdBeforeExtractionStage) runs lid.176
on resiliparse's cheap text of every HTML page that neither declares a wanted language nor
has a title lid.176 calls one, and drops the pages plainly in another one before
trafilatura sees them. It costs ~1/7 of an extraction for every page it checks, so it pays
where it drops more than ~1 page in 7. How many it drops depends on the crawl, above all
on its pages without a `<html lang>`.

This runs the stage's own check (`checks`, `classify`, `drops`) on INPUT (files, directories,
globs: what `crawlmill run --input` takes) and prints, for the pages that declare another
language and for those that declare none: pages checked and dropped, the check's CPU
seconds, and trafilatura's CPU seconds on the dropped pages (what the check saved), both
as a run has them, each in its child process. Measured on 2026-11-24 (14:25), with the
title rule:

- realpages (extraction benchmark pages, mostly English; `bench/langid_check.py` on
  `bench/side_by_side.py`'s split of it): another language declared, 723 of 744 dropped,
  1.31 CPU s of checks saving 7.64 of trafilatura; none declared, 67 of 921 dropped,
  1.15 CPU s of checks saving 0.80. Without the title rule (earlier that day): 725 of
  751 and 69 of 1,869, the latter's checks costing 2.18 CPU s to save 0.76;
- the real crawl samples of ../shared/data/warc (Common Crawl, ClueWeb and others):
  another language declared, 4 of 8 dropped; none declared, 49 of 75 dropped (of 80
  without the title rule), 0.05 CPU s of checks saving 0.52.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.langid import LangIdBeforeExtractionStage, declared_language  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.extract import TimedExtractor, decode_html_rows  # noqa: E402
from pipeline.io import expand_inputs  # noqa: E402
from pipeline.warc import read_file  # noqa: E402

GROUPS = ("another declared", "none declared")


def pages_to_check(inputs: list[str], cfg, check: LangIdBeforeExtractionStage) -> dict:
    """The HTML pages the stage checks (`check.checks`: decodable, neither declaring a
    wanted language nor titled in one), by whether they declare another language or none."""
    groups: dict[str, list[str]] = {name: [] for name in GROUPS}
    for path in expand_inputs(inputs):
        for html in decode_html_rows(read_file(path, cfg.read.max_payload_bytes))[1]:
            if check.checks(html):
                groups[GROUPS[declared_language(html) is None]].append(html)
    return groups


def timed(work, pages: list[str], child_cpu) -> tuple[list, float]:
    """`work(pages)` and its CPU seconds: this process's and its child's (`child_cpu()`,
    read from /proc; 0 where there is none)."""
    start = time.process_time() + (child_cpu() or 0.0)
    result = work(pages)
    return result, time.process_time() + (child_cpu() or 0.0) - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="WARC files, directories or globs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    cfg = load_config(None, ["langid.languages=[en]", *args.set])
    if cfg.langid.languages == "all":
        sys.exit("langid.languages must be a list: with 'all' the check has nothing to drop")
    # Both as a run has them, each in its child: the stage itself, and the extractor.
    check = LangIdBeforeExtractionStage(cfg.langid, cfg.extract)
    extract = TimedExtractor(cfg.extract)
    check.classify(["<p>warm-up</p>"])  # the children's imports are not timed
    extract.extract("<p>warm-up</p>")

    print("| pages | checked | dropped | check CPU s | trafilatura CPU s on the dropped |")
    print("|---|---|---|---|---|")
    try:
        for name, pages in pages_to_check(args.inputs, cfg, check).items():
            if not pages:
                continue
            labels, check_cpu = timed(check.classify, pages, check.child_cpu_seconds)
            dropped = [
                page
                for page, label in zip(pages, labels, strict=True)
                if label is not None and check.drops(*label)
            ]
            _, saved_cpu = timed(extract.extract_many, dropped, extract.cpu_seconds)
            print(
                f"| {name} | {len(pages):,} | {len(dropped):,} ({len(dropped) / len(pages):.0%}) "
                f"| {check_cpu:.2f} | {saved_cpu:.2f} |"
            )
    finally:
        check.close()
        extract.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
