"""The HTML run report, opened in real headless Chromium: it loads with no console error
and no network request, its plots render (screenshot pixels), and the numbers it shows
equal the manifest's and rejected/'s. Plus escaping of crawled text and stats that are
right after a resumed run."""

from __future__ import annotations

import io
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline import schema as S
from pipeline.cli import main
from pipeline.report import render, sample_html, write_report
from pipeline.runner import WORK_DIR
from pipeline.shards import read_manifest
from pipeline.stats import run_stats
from tests.browser import Chromium, find_chromium

FUNNEL_BLUE = (0x3B, 0x6E, 0xA8)  # report.PALETTE[0]: the funnel's bars


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip(
            "chromium is not installed (make test installs Debian's chromium when it runs "
            "as root with apt-get; otherwise: apt-get install chromium)"
        )
    with Chromium(binary, width=1200, height=900) as browser:
        yield browser


@pytest.fixture(scope="module")
def sample_report(sample_run, tmp_path_factory):
    out, _, _ = sample_run
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(out), "-o", str(path)]) == 0
    return out, path


def test_report_loads_without_errors_or_network_and_its_plots_render(sample_report, chromium):
    from PIL import Image

    _, path = sample_report
    chromium.load(path.as_uri())
    assert chromium.errors() == []
    assert chromium.requested_urls() == [path.as_uri()]  # the page itself, nothing else
    sections = chromium.evaluate("[...document.querySelectorAll('section')].map(s => s.id)")
    assert sections[:3] == ["summary", "funnel", "reasons"]
    drawn = chromium.evaluate(
        "[...document.querySelectorAll('svg')]"
        ".filter(s => s.getBoundingClientRect().width > 100 && s.querySelector('rect')).length"
    )
    assert drawn >= 7  # docs/chars/tokens funnels, reasons, languages, lengths, dedup, timings
    image = Image.open(io.BytesIO(chromium.screenshot())).convert("RGB")
    assert image.width == 1200 and image.height > 3000  # the whole page, not the viewport
    colors = {color: n for n, color in image.getcolors(maxcolors=1 << 24)}
    white = colors.get((255, 255, 255), 0)
    assert white < 0.97 * image.width * image.height
    # the funnel's bars are drawn: thousands of pixels of their exact colour
    assert colors.get(FUNNEL_BLUE, 0) > 5_000


def test_report_counts_equal_the_manifest_and_rejected(sample_report, chromium):
    out, path = sample_report
    chromium.load(path.as_uri())
    shown = dict(
        chromium.evaluate(
            "[...document.querySelectorAll('[data-stat]')]"
            ".map(e => [e.dataset.stat, Number(e.dataset.value)])"
        )
    )
    manifest = read_manifest(out)
    rejected = pq.read_table(out / "rejected")
    totals = manifest["totals"]
    repeats = totals["repeats"]  # rebalancing's extra copies are kept docs, not records
    assert shown["records"] == totals["records"] == totals["docs"] - repeats + rejected.num_rows
    assert shown["docs"] == totals["docs"]
    assert shown["rejected"] == totals["rejected"] == rejected.num_rows
    assert shown["tokens"] == totals["tokens"]
    assert shown["chars"] == totals["chars"]
    assert shown["shards"] == len(manifest["shards"])
    by_reason = Counter(rejected[S.DROP_REASON].to_pylist())
    assert {k.split(":", 1)[1]: v for k, v in shown.items() if k.startswith("rejected:")} == dict(
        by_reason
    )
    assert dict(by_reason) == manifest["rejected"]["by_reason"]
    # the funnel ends at the kept documents
    funnel = chromium.evaluate(
        "[...document.querySelectorAll('tr[data-funnel-stage]')]"
        ".map(r => [r.dataset.funnelStage, r.dataset.funnelReason, Number(r.dataset.docsLeft)])"
    )
    assert funnel[0] == ["input", "records read", totals["records"]]
    assert funnel[-1][2] == totals["docs"]
    # one step per drop reason, and rebalancing's repeats as the last step when there are any
    assert len(funnel) == 1 + len(by_reason) + (1 if repeats else 0)


def test_funnel_chars_and_tokens_add_up(sample_run):
    out, _, _ = sample_run
    stats = run_stats(out)
    manifest = read_manifest(out)
    rejected = pq.read_table(out / "rejected")
    first, last = stats["funnel"][0], stats["funnel"][-1]
    assert last["tokens"] == manifest["totals"]["tokens"]
    assert last["chars"] == manifest["totals"]["chars"]
    rejected_tokens = sum(n or 0 for n in rejected[S.N_TOKENS].to_pylist())
    added = stats["funnel"][-1].get("added") or {"tokens": 0}  # rebalancing's repeats
    assert first["tokens"] == manifest["totals"]["tokens"] - added["tokens"] + rejected_tokens
    assert rejected_tokens == manifest["rejected"]["tokens"] > 0
    # rows dropped after extraction weigh something; rows dropped by the reader do not
    by_stage = {d["reason"]: d for d in stats["drop_reasons"]}
    assert by_stage[S.Reason.NOT_A_DOCUMENT]["chars"] == 0
    assert by_stage[S.Reason.LANG_LOW_SCORE]["tokens"] > 0
    # dedup clusters come from rejected/'s dup_cluster_size
    sizes = stats["dedup_clusters"]
    dropped = rejected.filter(rejected[S.DUP_CLUSTER_ID].is_valid())
    assert sizes and dropped.num_rows > 0  # the bundled sample has duplicates
    for reason, histogram in sizes.items():
        rows = dropped.filter(pc.equal(dropped[S.DROP_REASON], reason))
        assert sum((size - 1) * n for size, n in histogram.items()) == rows.num_rows


def test_crawled_text_is_escaped():
    row = {
        S.ID: "<urn:uuid:x>",
        S.URL: 'http://e.com/"><script>alert(1)</script>',
        S.DROP_REASON: "gopher_stop_words",
        S.TEXT: "<img src=x onerror=alert(1)> & </pre>",
        S.GOPHER_STOP_WORDS: 0,
    }
    html = sample_html(row)
    assert "<script>" not in html and "<img" not in html and "</pre> &" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt; &amp;" in html


def test_report_of_a_run_without_timings_or_domains(sample_run, tmp_path):
    out, _, _ = sample_run
    bare = tmp_path / "bare"
    shutil.copytree(out, bare, ignore=shutil.ignore_patterns(WORK_DIR, "timings.json"))
    page = write_report(bare, tmp_path / "r.html").read_text()
    assert "No timings.json" in page and "no domain labels" not in page
    # a run written without domain labels: the columns are absent from its files
    manifest = read_manifest(bare)
    for shard in manifest["shards"]:
        path = bare / shard["file"]
        table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
        table = table.drop_columns([n for n in table.schema.names if n.startswith("domain")])
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table)
    page = write_report(bare, tmp_path / "r2.html").read_text()
    assert "no domain labels" in page


def test_the_browser_check_sees_errors_and_requests(chromium, tmp_path):
    """The checks above can fail: a page with a script error, a console error and an
    outside image is caught by each of them."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img src='https://example.invalid/x.png'>"
        "<script>console.error('boom'); undefined_function();</script></body></html>"
    )
    chromium.load(page.as_uri())
    errors = chromium.errors()
    assert any("console.error" in e for e in errors)
    assert any(e.startswith("exception") for e in errors)
    assert "https://example.invalid/x.png" in chromium.requested_urls()


def test_domains_before_and_after_rebalancing(sample_run):
    """The sample run has real domain labels and rebalancing (on by default): the stats
    computed from the files agree with the rebalancing barrier's own report."""
    out, _, _ = sample_run
    stats = run_stats(out)
    manifest = read_manifest(out)
    after, before = stats["kept"]["by_domain"], stats["domain_before_rebalance"]
    report = stats["rebalance"]["domains"]
    assert before is not None and report
    for domain, row in report.items():
        assert before.get(domain, {}).get("docs", 0) == row["docs_before"], domain
        assert after.get(domain, {}).get("docs", 0) == row["docs_after"], domain
        assert after.get(domain, {}).get("tokens", 0) == row["tokens_after"], domain
    assert stats["repeats"] == manifest["totals"]["repeats"]
    # the funnel ends on the kept documents, repeats added last
    assert stats["funnel"][-1]["docs"] == manifest["totals"]["docs"]
    if stats["repeats"]:
        assert stats["funnel"][-1]["reason"] == "repeats added"
    page = render(out)
    assert "before and after rebalancing" in page and "rebalance.json" in page
    from pipeline.inspect import inspect_run

    for domain in after:
        info = inspect_run(out, where=[f"domain={domain}"])
        assert info["kept"]["docs"] == after[domain]["docs"]


def report_error(capsys, *args: str) -> str:
    """Run `crawlmill report ARGS`, expecting exit 2; its one stderr line."""
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_report_of_a_missing_run_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "no" / "run"
    assert "no manifest" in report_error(capsys, str(missing))
    assert not (tmp_path / "no").exists()


def test_report_output_that_is_a_directory_or_under_a_file(tmp_path, capsys, monkeypatch):
    run_dir, taken = tmp_path / "run", tmp_path / "taken"
    run_dir.mkdir()
    taken.mkdir()
    err = report_error(capsys, str(run_dir), "-o", str(taken))
    assert err.startswith(f"crawlmill report: error: --output {taken}: is a directory")
    # a file where the report's directory should be; the page itself renders fine
    monkeypatch.setattr("pipeline.report.render", lambda directory, seed=0: "<html></html>")
    afile = tmp_path / "afile"
    afile.write_text("x")
    err = report_error(capsys, str(run_dir), "-o", str(afile / "r.html"))
    assert err == (
        f"crawlmill report: error: --output {afile / 'r.html'}: cannot write it: "
        f"{afile} is not a directory"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "run", "taken"]
    assert not any(taken.iterdir()) and not any(run_dir.iterdir())
    # the same stub is written where the output can go, creating its directory
    assert main(["report", str(run_dir), "-o", str(tmp_path / "new" / "r.html")]) == 0
    assert (tmp_path / "new" / "r.html").read_text() == "<html></html>"
