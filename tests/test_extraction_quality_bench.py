"""The extraction-quality benchmark's own logic (bench/extraction_quality.py): the scores,
reading the labelled sets, and a run of the real extractors on real pages of the bundled
sample. The full labelled sets live in ../shared/data; the last test runs the bench on a
few of their pages and skips where they are absent.

No figure here is a speed: speed lives in the benchmark's output, never in a test.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from tests.helpers import load_bench_script

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "sample" / "dolma-sample-0000.warc.gz"


eq = load_bench_script("extraction_quality")


def sample_pages(n: int) -> list[tuple[str, bytes]]:
    """(URL, HTML bytes) of the first n HTML responses of the bundled sample."""
    pages = []
    with open(SAMPLE, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            if "html" in (record.http_content_type or ""):
                pages.append((record.headers.get("WARC-Target-URI"), record.reader.read()))
            if len(pages) == n:
                break
    return pages


@pytest.mark.parametrize(
    "separator",
    [
        "!@#$%^&*()  COMMENTS",
        "!@ $%^&*()  COMMENTS",
        "#$%^&*()  COMMENTS\t",
        "!@#$%^&*   COMMENTS",
    ],
)
def test_gold_main_text_stops_at_any_spelling_of_the_comments_line(separator):
    gold = f"Title\n\nThe article.\n{separator}\nGreat post!\nI disagree."
    assert eq.gold_main_text(gold) == "Title\n\nThe article.\n"


def test_gold_main_text_keeps_prose_that_mentions_comments():
    gold = "The article.\nREAD THE COMMENTS below, or post COMMENTS of your own.\nEnd."
    assert eq.gold_main_text(gold) == gold


def test_word_overlap_is_case_blind_and_counts_repeats():
    # extracted: the x3, cat, sat; gold: the x2, cat x2, mat
    shared, extracted, gold = eq.word_overlap(
        eq.words("The the THE cat sat."), eq.words("the cat, the cat; mat")
    )
    assert (shared, extracted, gold) == (3, 5, 5)  # the x2 + cat x1
    assert eq.f1(shared, extracted, gold) == pytest.approx(0.6)
    assert eq.f1(0, 0, 4) == 0.0  # no text: nothing found
    assert eq.f1(0, 0, 0) == 1.0  # nothing to find, nothing found


def test_dragnet_scores_are_micro_over_words_and_median_over_pages():
    overlaps = [(9, 10, 10), (0, 0, 30), (40, 100, 40)]
    scores = eq.dragnet_scores(overlaps)
    assert scores["precision"] == pytest.approx(49 / 110)
    assert scores["recall"] == pytest.approx(49 / 80)
    assert scores["f1"] == pytest.approx(2 * 49 / 190)
    assert scores["f1_median"] == pytest.approx(80 / 140)  # pages: 0.9, 0.0, 0.571
    assert scores["empty"] == 1


def test_snippets_score_like_trafilaturas_comparison():
    item = {"with": ["main point", "second"], "without": ["Impressum", "31. Mai"]}
    counts = eq.snippet_counts("The main point. Impressum", item)
    assert counts == Counter(tp=1, fn=1, fp=1, tn=1)
    # no text: every wanted snippet missed, every unwanted one rightly absent
    assert eq.snippet_counts("", item) == Counter(tp=0, fn=2, fp=0, tn=2)
    scores = eq.snippet_scores(counts + eq.snippet_counts("main point second", item))
    assert (scores["precision"], scores["recall"]) == (pytest.approx(3 / 4), pytest.approx(3 / 4))
    assert scores["accuracy"] == pytest.approx(6 / 8)


def test_dragnet_pages_pair_html_with_gold_by_name(tmp_path):
    pages = sample_pages(3)
    folder = tmp_path / "dragnet"
    (folder / "GoldStandard").mkdir(parents=True)
    with tarfile.open(folder / "input-html.tar.gz", "w:gz") as tar:
        for name, (_, html) in zip(["b", "a", "c"], pages, strict=True):
            info = tarfile.TarInfo(f"input/{name}.html")
            info.size = len(html)
            tar.addfile(info, io.BytesIO(html))
    # page "c" has no gold file: left out; gold files use CRLF, as dragnet's do
    (folder / "GoldStandard" / "a.txt").write_bytes(b"Main A\r\n!@#$%^&*()  COMMENTS\r\nNice\r\n")
    (folder / "GoldStandard" / "b.txt").write_bytes(b"Main B\r\n")

    got = eq.dragnet_pages(folder, None)
    assert [(main, whole) for _, main, whole in got] == [
        ("Main A\n", "Main A\n!@#$%^&*()  COMMENTS\nNice\n"),
        ("Main B\n", "Main B\n"),
    ]
    # in name order: a is the sample's second page, b its first; decoded to str
    assert [html for html, _, _ in got] == [pages[1][1].decode(), pages[0][1].decode()]
    assert len(eq.dragnet_pages(folder, 1)) == 1


def test_evaldata_pages_are_found_by_url_in_the_warc(tmp_path):
    (url_a, html_a), (url_b, _) = sample_pages(2)
    items = {
        url_a: {"with": ["x"], "without": ["y"]},
        "http://not-in-the-warc.invalid/": {"with": ["z"], "without": []},
    }
    evaldata = tmp_path / "evaldata.json"
    evaldata.write_text(json.dumps(items))
    got = eq.evaldata_pages(evaldata, SAMPLE, None)
    assert got == [(html_a.decode(), items[url_a])]


def test_evaluate_runs_each_extractor_on_every_page_in_order(tmp_path):
    """Real extractors on real pages: the gold of each page is trafilatura's own text of
    it, so trafilatura scores 1 exactly when every text is scored against its own page."""
    htmls = [html.decode() for _, html in sample_pages(4)]
    texts, _ = eq.run_extractor(eq.EXTRACTORS["trafilatura"], htmls)
    assert all(texts)
    dragnet = [(html, text, text) for html, text in zip(htmls, texts, strict=True)]
    first_words = [text.split()[0] for text in texts]
    evaldata = [
        (html, {"with": [w], "without": []}) for html, w in zip(htmls, first_words, strict=True)
    ]

    results = eq.evaluate(dragnet, evaldata, ["trafilatura", "resiliparse"], log=lambda _: None)
    ours = results["trafilatura"]
    assert ours["dragnet"]["f1"] == 1.0 and ours["dragnet"]["empty"] == 0
    assert ours["evaldata"]["recall"] == 1.0
    assert ours["failed"] == {} and ours["ms_per_page"] > 0
    # resiliparse's text of the same pages is a different text, not a copy
    assert 0 < results["resiliparse"]["dragnet"]["f1"] < 1.0


def test_the_bench_on_a_few_labelled_pages(tmp_path, capsys):
    missing = [p for p in (eq.DRAGNET, eq.EVALDATA, eq.REALPAGES) if not p.exists()]
    if missing:
        pytest.skip(f"labelled extraction data absent (../shared/data): {missing[0]}")
    out = tmp_path / "EXTRACTION.md"
    argv = ["--pages", "5", "--extractors", "trafilatura,resiliparse", "--results", str(out)]
    assert eq.main(argv) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["meta"]["dragnet_pages"] == report["meta"]["evaldata_pages"] == 5
    for name in ("trafilatura", "resiliparse"):
        scores = report["results"][name]
        # a main-text extractor on news pages finds most of the gold words
        assert scores["dragnet"]["recall"] > 0.5 and scores["evaldata"]["recall"] > 0.5
    assert "| trafilatura | (default) |" in out.read_text()
