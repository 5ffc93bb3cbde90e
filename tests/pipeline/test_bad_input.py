"""Bad input never kills a run and is never lost: a corpus of nasty files built here goes
through the real pipeline; every problem is a counted row with a reason, and every good
record around the bad ones still becomes a document."""

from __future__ import annotations

import gzip
import json
import uuid
from html import escape
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import schema as S
from pipeline.cli import _format_summary
from pipeline.config import load_config
from pipeline.report import render
from pipeline.runner import run
from pipeline.shards import ShardReader, read_manifest
from pipeline.tokenize import load_tokenizer
from tests.helpers import QUALITY_RULES_OFF

GOOD_SENTENCES = [
    "The lighthouse keeper logged every passing ship in a leather-bound journal for forty years.",
    "Glaciers carve U-shaped valleys as they advance and leave moraines behind when they retreat.",
    "A well-tempered sourdough starter doubles in volume within six hours at room temperature.",
]
CHARSET_PAGES = {  # (text, encoding, where it is declared)
    "gbk-undeclared": ("北京的秋天天高气爽，是一年中最适合旅游的季节。" * 6, "gbk", None),
    "sjis-misdeclared": (
        "東京の地下鉄は毎日数百万人の乗客を運んでいます。" * 6,
        "shift_jis",
        "http:iso-8859-1",
    ),
    "cp1251-meta": (
        "Московский метрополитен открылся в тысяча девятьсот тридцать пятом году. " * 5,
        "cp1251",
        "meta",
    ),
    "big5-http": ("台北的夜市以各式各樣的小吃聞名，吸引了許多觀光客。" * 6, "big5", "http:big5"),
}


def article(sentence: str) -> str:
    paragraphs = "".join(
        f"<p>{sentence} {filler}</p>"
        for filler in (
            "Observers noted the pattern repeated across many seasons and places.",
            "Later studies confirmed the account with careful measurements and records.",
            "The details were published and discussed widely by specialists at the time.",
        )
    )
    return f"<html><head><title>t</title></head><body><article>{paragraphs}</article></body></html>"


def warc_record(
    rec_type: str,
    url: str,
    block: bytes,
    *,
    content_length: int | None = None,
    content_type: str = "application/http; msgtype=response",
) -> bytes:
    head = (
        f"WARC/1.0\r\nWARC-Type: {rec_type}\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\n"
        f"WARC-Date: 2024-05-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(block) if content_length is None else content_length}\r\n\r\n"
    )
    return head.encode() + block + b"\r\n\r\n"


def response(
    url: str, body: bytes, content_type: str = "text/html", status: str = "200 OK", **kw
) -> bytes:
    http = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return warc_record("response", url, http.encode() + body, **kw)


def charset_page(text: str, encoding: str, declared: str | None) -> tuple[bytes, str]:
    meta = f'<meta charset="{encoding}">' if declared == "meta" else ""
    body = f"<body><article><p>{text}</p></article></body>"
    html = f"<html><head>{meta}<title>x</title></head>{body}</html>"
    content_type = "text/html"
    if declared and declared.startswith("http:"):
        content_type += f"; charset={declared[5:]}"
    return html.encode(encoding), content_type


def slow_page() -> bytes:  # ~4 MB of nested tables (under the 5 MB cap): seconds of trafilatura
    cell = "<td><p>word " * 20 + "</p></td>"
    return (
        "<html><body>" + ("<table><tr>" + cell * 50 + "</tr></table>") * 400 + "</body></html>"
    ).encode()


@pytest.fixture(scope="module")
def nasty_corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("nasty")
    members = [
        gzip.compress(response("http://good.example/1", article(GOOD_SENTENCES[0]).encode())),
        b"\x00garbage between records\xff" * 40,  # not a gzip member at all
        gzip.compress(
            response(
                "http://big.example/", b"<html><body>" + b"<p>x</p>" * 6_600_000 + b"</body></html>"
            )
        ),
        gzip.compress(
            response(
                "http://deep.example/",
                b"<html><body>"
                + b"<div>" * 100_000
                + b"deep"
                + b"</div>" * 100_000
                + b"</body></html>",
            )
        ),
        gzip.compress(response("http://slow.example/", slow_page())),
        gzip.compress(response("http://empty.example/", b"")),
        gzip.compress(warc_record("response", "http://zero.example/", b"")),
        gzip.compress(response("http://good.example/2", article(GOOD_SENTENCES[1]).encode())),
    ]
    for name, (text, encoding, declared) in CHARSET_PAGES.items():
        body, content_type = charset_page(text, encoding, declared)
        members.append(
            gzip.compress(response(f"http://charset.example/{name}", body, content_type))
        )
    members.append(
        gzip.compress(response("http://good.example/3", article(GOOD_SENTENCES[2]).encode()))
    )
    # wrong Content-Length: claims far more bytes than the record holds, then the file ends
    cut = gzip.compress(
        response("http://liar.example/", article("never complete").encode(), content_length=999_999)
    )
    members.append(cut)
    (d / "nasty.warc.gz").write_bytes(b"".join(members))
    # a truncated gzip member: the last record is cut mid-stream
    good = gzip.compress(
        response("http://good.example/4", article(GOOD_SENTENCES[0] + " Again.").encode())
    )
    tail = gzip.compress(response("http://cut.example/", article("cut short").encode()))
    (d / "truncated.warc.gz").write_bytes(good + tail[: len(tail) // 2])
    # only non-HTML responses
    (d / "not-html.warc").write_bytes(
        response("http://img.example/a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")
        + response("http://api.example/x.json", b'{"a": 1}', "application/json")
        + response("http://moved.example/", b"", status="301 Moved Permanently")
    )
    (d / "empty.warc.gz").write_bytes(b"")
    (d / "pure-garbage.warc.gz").write_bytes(b"\x1f\x8b\x08 this is not gzip at all" * 10)
    return d


@pytest.fixture(scope="module")
def nasty_run(ray_local, nasty_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("nasty-run") / "out"
    # This test is about reading and decoding: the text-quality rules (which would rightly
    # drop these short, repetitive pages) are off; the URL filter stays on.
    settings = ["extract.timeout_seconds=0.5", "engine.chunk_records=3", *QUALITY_RULES_OFF]
    cfg = load_config(None, settings)
    summary = run(cfg, [str(nasty_corpus)], out, num_cpus=2)
    return out, summary, cfg


def kept_texts(out: Path, cfg) -> dict[str, str]:
    tokenizer = load_tokenizer(cfg.tokenizer)
    texts = {}
    for shard in read_manifest(out)["shards"]:
        reader = ShardReader(out / shard["file"])
        for i in range(len(reader)):
            texts[reader.row(i)[S.URL]] = tokenizer.decode(reader.tokens(i)[:-1].tolist())
    return texts


def test_run_completes_and_accounts_for_every_record(nasty_run):
    out, summary, _ = nasty_run
    stats = json.loads((out / "stats.json").read_text())
    rejected = pq.read_table(out / "rejected")
    assert summary.records == stats["records"] == summary.docs + rejected.num_rows
    assert rejected[S.DROP_REASON].null_count == 0
    reasons = stats["rejected_by_reason"]
    assert reasons[S.Reason.HTML_TOO_LARGE] == 1
    assert reasons[S.Reason.EXTRACT_TIMEOUT] >= 1
    assert reasons[S.Reason.NOT_HTML] == 2 and reasons[S.Reason.HTTP_STATUS] == 1
    assert reasons[S.Reason.READ_ERROR] >= 4  # garbage, wrong length, truncated, pure garbage
    by_url = {r[S.URL]: r[S.DROP_REASON] for r in rejected.to_pylist() if r[S.URL]}
    assert by_url["http://big.example/"] == S.Reason.HTML_TOO_LARGE
    assert by_url["http://slow.example/"] == S.Reason.EXTRACT_TIMEOUT
    assert by_url["http://liar.example/"] == S.Reason.READ_ERROR
    assert by_url["http://cut.example/"] == S.Reason.READ_ERROR
    assert by_url["http://empty.example/"] == S.Reason.NO_TEXT
    # garbage with no record gets its own row, located by file and offset
    assert any(
        r[S.URL] is None and r[S.DROP_REASON] == S.Reason.READ_ERROR for r in rejected.to_pylist()
    )


def test_good_records_around_the_bad_ones_survive(nasty_run):
    out, _, cfg = nasty_run
    texts = kept_texts(out, cfg)
    for i, sentence in enumerate(GOOD_SENTENCES, start=1):
        assert sentence in texts[f"http://good.example/{i}"]
    assert GOOD_SENTENCES[0] + " Again." in texts["http://good.example/4"]  # before the cut


def test_every_charset_case_decodes_to_the_right_text(nasty_run):
    out, _, cfg = nasty_run
    texts = kept_texts(out, cfg)
    for name, (text, _, _) in CHARSET_PAGES.items():
        first_sentence = text.split("。")[0].split(". ")[0]
        assert first_sentence in texts[f"http://charset.example/{name}"], name


def test_read_errors_say_why(nasty_run):
    # Each read_error row carries the reader's message (drop_detail), and only those rows;
    # stats.json counts the messages and lists the first rows; the CLI summary shows some.
    out, summary, _ = nasty_run
    stats = json.loads((out / "stats.json").read_text())
    rows = pq.read_table(out / "rejected").to_pylist()
    details = {
        r[S.URL] or f"{Path(r[S.SOURCE]).name}@{r[S.OFFSET]}": r[S.DROP_DETAIL] for r in rows
    }
    assert all(bool(r[S.DROP_DETAIL]) == (r[S.DROP_REASON] == S.Reason.READ_ERROR) for r in rows)
    assert details["empty.warc.gz@0"] == "empty file"
    assert "cut short" in details["http://cut.example/"]
    assert "cut short" in details["http://liar.example/"]
    read_errors = stats["read_errors"]
    assert sum(read_errors["by_detail"].values()) == stats["rejected_by_reason"]["read_error"]
    examples = read_errors["examples"]
    assert len(examples) == stats["rejected_by_reason"]["read_error"]  # fewer than the cap
    inputs = [i["source"] for i in stats["inputs"]]
    places = [(inputs.index(e[S.SOURCE]), e[S.OFFSET]) for e in examples]
    assert places == sorted(places)  # input order
    text = _format_summary(summary)
    first = examples[0]
    assert f"{first[S.SOURCE]}@{first[S.OFFSET]}: {first[S.DROP_DETAIL]}" in text
    # the report's sampled read_error rows show theirs next to the reason
    html = render(out)
    assert any(f"drop_detail: <b>{escape(d)}</b>" in html for d in read_errors["by_detail"])
