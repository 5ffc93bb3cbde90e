"""Extraction stage: real pages through trafilatura and resiliparse, the time limit, a dead
extractor process, and the per-row accounting of the stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline import schema as S
from pipeline.config import ExtractConfig, load_config
from pipeline.decode import decode_html
from pipeline.extract import ExtractStage, TimedExtractor
from pipeline.warc import read_file

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

ARTICLE = """<!doctype html><html><head><title>Shop</title></head><body>
<nav><a href="/">Home</a> | <a href="/cart">Cart</a></nav>
<article><h1>On the migration of Arctic terns</h1>
<p>The Arctic tern makes the longest known annual migration of any animal, travelling from
its Arctic breeding grounds to the Antarctic and back again every year.</p>
<p>Tracking studies with geolocators found round trips averaging about 70,900 kilometres,
with birds following winding routes that exploit prevailing winds over the Atlantic.</p>
<p>Because terns live for thirty years or more, a single bird may fly a distance equal to
three return trips to the Moon over its lifetime.</p></article>
<footer>Copyright 2020. All rights reserved. Cookie policy.</footer></body></html>"""


def raw_batch(rows: list[dict]) -> pa.Table:
    base = {name: None for name in S.RAW_SCHEMA.names}
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=S.RAW_SCHEMA)


@pytest.mark.parametrize("extractor", ["trafilatura", "resiliparse"])
def test_extracts_main_text_and_drops_boilerplate(extractor):
    stage = ExtractStage(ExtractConfig(extractor=extractor))
    try:
        out = stage(
            raw_batch(
                [
                    {
                        S.ID: "a",
                        S.RECORD_TYPE: "response",
                        S.PAYLOAD: ARTICLE.encode(),
                        S.CONTENT_TYPE: "text/html",
                    }
                ]
            )
        )
    finally:
        stage.close()
    text = out[S.TEXT][0].as_py()
    assert "longest known annual migration" in text
    assert "three return trips to the Moon" in text
    assert "Cookie policy" not in text
    assert S.PAYLOAD not in out.column_names
    assert out[S.DROP_REASON][0].as_py() is None


WITH_COMMENTS = ARTICLE.replace(
    "</article>",
    '</article><section id="comments"><h2>3 comments</h2><p>Great read! I saw terns in '
    "Iceland last summer and they dived at us all the way back to the car park.</p></section>",
)


@pytest.mark.parametrize(
    "overrides, keeps_comments",
    [
        ([], False),
        (["extract.trafilatura.include_comments=true"], True),
        (["extract.extractor=resiliparse"], False),
        (["extract.extractor=resiliparse", "extract.resiliparse.comments=true"], True),
    ],
)
def test_comment_sections_are_left_out_by_either_extractor_unless_asked_for(
    overrides, keeps_comments
):
    """Both extractors' defaults leave readers' comments out (resiliparse's own default
    keeps them); each has a setting to keep them."""
    extractor = TimedExtractor(load_config(None, overrides).extract)
    try:
        [(text, reason)] = extractor.extract_many([WITH_COMMENTS])
    finally:
        extractor.close()
    assert reason is None and "three return trips to the Moon" in text
    assert ("terns in Iceland" in text) is keeps_comments


def test_stage_accounts_for_every_row():
    gbk_page = (
        "<html><head><meta charset='gbk'></head><body><p>"
        + "中文网页的正文内容。" * 30
        + "</p></body></html>"
    )
    batch = raw_batch(
        [
            {
                S.ID: "html",
                S.RECORD_TYPE: "response",
                S.PAYLOAD: ARTICLE.encode(),
                S.CONTENT_TYPE: "text/html",
            },
            {
                S.ID: "wet",
                S.RECORD_TYPE: "conversion",
                S.PAYLOAD: b"Plain WET text, already extracted.",
            },
            {
                S.ID: "gbk",
                S.RECORD_TYPE: "response",
                S.PAYLOAD: gbk_page.encode("gbk"),
                S.CONTENT_TYPE: "text/html",
            },
            {
                S.ID: "empty",
                S.RECORD_TYPE: "response",
                S.PAYLOAD: b"<html><body></body></html>",
                S.CONTENT_TYPE: "text/html",
            },
            {
                S.ID: "gone",
                S.RECORD_TYPE: "request",
                S.DROP_REASON: S.Reason.NOT_A_DOCUMENT,
                S.DROP_STAGE: "read",
            },
        ]
    )
    stage = ExtractStage(ExtractConfig())
    try:
        out = stage(batch)
    finally:
        stage.close()
    rows = {r[S.ID]: r for r in out.to_pylist()}
    assert out.num_rows == 5
    assert rows["wet"][S.TEXT] == "Plain WET text, already extracted."
    assert rows["wet"][S.CHARSET] == "utf-8:wet"
    assert "中文网页的正文内容" in rows["gbk"][S.TEXT]
    assert rows["empty"][S.DROP_REASON] == S.Reason.NO_TEXT
    assert rows["empty"][S.DROP_STAGE] == "extract"
    assert rows["gone"][S.DROP_REASON] == S.Reason.NOT_A_DOCUMENT  # first reason wins
    assert rows["gone"][S.DROP_STAGE] == "read"


def slow_page() -> str:
    # ~6 MB of nested tables and paragraphs: trafilatura needs well over a second on it.
    cell = "<td><p>word " * 20 + "</p></td>"
    return "<html><body>" + ("<table><tr>" + cell * 50 + "</tr></table>") * 600 + "</body></html>"


def test_time_limit_turns_a_slow_page_into_a_reject_and_goes_on():
    extractor = TimedExtractor(ExtractConfig(timeout_seconds=0.3))
    try:
        assert extractor.extract(ARTICLE)[0]  # warm start: the child is up
        text, reason = extractor.extract(slow_page())
        assert (text, reason) == (None, "extract_timeout")
        # the child was killed and the next page gets a fresh one
        text, reason = extractor.extract(ARTICLE)
        assert reason is None and "Arctic tern" in text
        assert extractor.restarts == 1
    finally:
        extractor.close()


def test_extractor_process_killed_from_outside_is_replaced():
    extractor = TimedExtractor(ExtractConfig())
    try:
        assert extractor.extract(ARTICLE)[0]
        os.kill(extractor._process.pid, signal.SIGKILL)
        extractor._process.wait(5)
        text, reason = extractor.extract(ARTICLE)
        assert reason is None and "Arctic tern" in text
    finally:
        extractor.close()


def test_slow_page_in_the_middle_of_a_batch_costs_only_that_page():
    extractor = TimedExtractor(ExtractConfig(timeout_seconds=0.3))
    try:
        results = extractor.extract_many([ARTICLE, slow_page(), ARTICLE, ARTICLE])
        assert [reason for _, reason in results] == [None, "extract_timeout", None, None]
        assert all("Arctic tern" in text for text, _ in (results[0], results[2], results[3]))
        assert extractor.restarts == 1
    finally:
        extractor.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU times from /proc")
def test_cpu_seconds_count_the_children_including_one_killed_on_a_timeout():
    # timings.json's CPU per stage adds the extractor children's CPU to the worker's: the
    # work is done in the child, so the child's CPU must show it, and a child killed on a
    # timeout must keep what it used.
    extractor = TimedExtractor(ExtractConfig(timeout_seconds=0.3))
    try:
        assert extractor.cpu_seconds() == 0.0  # no child yet
        extractor.extract(ARTICLE)
        before, parent_before = extractor.cpu_seconds(), time.process_time()
        results = extractor.extract_many(sample_html_pages())
        children = extractor.cpu_seconds() - before
        parent = time.process_time() - parent_before
        assert sum(1 for text, _ in results if text) >= 35
        assert children > 0  # 39 real pages through trafilatura
        assert children > 2 * parent  # the extraction is in the child, not here
        ahead_of_timeout = extractor.cpu_seconds()
        assert extractor.extract(slow_page()) == (None, "extract_timeout")
        assert extractor.restarts == 1
        # the killed child's 0.3 s limit of CPU is kept (ticks are 10 ms)
        assert extractor.cpu_seconds() >= ahead_of_timeout + 0.25
    finally:
        extractor.close()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads a child's maps in /proc")
@pytest.mark.parametrize("extractor_name", ["trafilatura", "resiliparse"])
def test_the_child_loads_its_extractor_and_not_the_stage_modules(extractor_name):
    # Each worker starts two children and a fresh one after each timeout: the child's
    # module keeps pyarrow, numpy and yaml out (0.2 CPU s and ~50 MB each, never used).
    extractor = TimedExtractor(ExtractConfig(extractor=extractor_name))
    try:
        text, reason = extractor.extract(ARTICLE)
        assert reason is None and "Arctic tern" in text
        maps = Path(f"/proc/{extractor._process.pid}/maps").read_text()
        loaded = {Path(line.split()[-1]).name for line in maps.splitlines() if ".so" in line}
        extension = {"trafilatura": "etree.", "resiliparse": "_resiliparse."}[extractor_name]
        assert any(name.startswith(extension) for name in loaded)  # the extractor is there
        heavy = [name for name in loaded if name.startswith(("libarrow", "_multiarray", "_yaml"))]
        assert heavy == []
    finally:
        extractor.close()


def sample_html_pages() -> list[str]:
    """Every decodable HTML page of the bundled real WARCs (39 pages)."""
    pages = []
    for path in sorted(SAMPLE.glob("*.warc.gz")):
        for row in read_file(str(path), 5_000_000).to_pylist():
            if row[S.DROP_REASON] is None and row[S.RECORD_TYPE] != "conversion":
                html, _ = decode_html(row[S.PAYLOAD], row[S.CONTENT_TYPE])
                if html is not None:
                    pages.append(html)
    return pages


STOCK_TRAFILATURA = """
import json, sys
from dataclasses import asdict
from pipeline.config import ExtractConfig
from pipeline.extract_child import make_extractor
extract = make_extractor(asdict(ExtractConfig()), tuned=False)
print(json.dumps([extract(page) for page in json.load(sys.stdin)]))
"""


def test_the_child_extracts_the_same_text_as_stock_trafilatura():
    # The child sets trafilatura up to run faster (pipeline/trafilatura_tuning.py: lxml's
    # element class lookup, guards in front of its regular expressions, jusText's lazy
    # paragraphs); the text must stay what trafilatura as shipped gives. Stock runs in
    # its own process: the changes are process-wide.
    pages = sample_html_pages()
    stock = subprocess.run(
        [sys.executable, "-c", STOCK_TRAFILATURA],
        input=json.dumps(pages),
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(stock.stdout)
    extractor = TimedExtractor(ExtractConfig())
    try:
        got = [text for text, _ in extractor.extract_many(pages)]
    finally:
        extractor.close()
    assert len(pages) == 39
    assert sum(1 for text in expected if len(text) > 200) >= 35  # real articles, not empty
    assert got == expected
