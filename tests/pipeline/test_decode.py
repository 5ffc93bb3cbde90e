"""Charset decoding of HTML payloads: real sentences in legacy encodings, honest and lying.

Each page is a small HTML document around one real sentence, encoded in GBK, Shift-JIS,
windows-1251, Big5 or EUC-KR, then declared in the HTTP header, in a <meta> tag only, not at
all, or wrongly. Every case must decode to exactly the text that was encoded.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from pipeline import schema as S
from pipeline.decode import codec_for_label, decode_html, decode_text, meta_charset
from pipeline.warc import read_file

SENTENCES = {
    # (codec the bytes are in, a label pages use for it, the codec we decode with)
    "zh": (
        "gbk",
        "gb2312",
        "gb18030",
        "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。"
        "这座城市有三千多年的建城史，名胜古迹众多。",
    ),
    "ja": (
        "shift_jis",
        "Shift_JIS",
        "cp932",
        "東京は日本の首都であり、世界有数の大都市です。春には多くの人々が桜を見に公園を訪れます。",
    ),
    "ru": (
        "cp1251",
        "windows-1251",
        "cp1251",
        "Москва — столица России, крупнейший по численности населения город страны. "
        "Летом в парках много отдыхающих.",
    ),
    "zh-hant": (
        "big5",
        "big5",
        "big5hkscs",
        "臺北是臺灣的政治、經濟與文化中心，夜市裡有許多美味的小吃，吸引各地的遊客。",
    ),
    "ko": (
        "euc_kr",
        "euc-kr",
        "cp949",
        "서울은 대한민국의 수도이며 가장 큰 도시이다. 한강이 도시를 가로질러 흐른다.",
    ),
}
LANGS = sorted(SENTENCES)


def page(text: str, meta: str = "") -> str:
    return (
        f"<!DOCTYPE html>\n<html><head>{meta}<title>{text[:8]}</title></head>\n"
        f"<body><h1>{text[:12]}</h1><p>{text}</p></body></html>\n"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_declared_in_http_header(lang):
    encoding, label, codec, text = SENTENCES[lang]
    html = page(text)
    assert decode_html(html.encode(encoding), f"text/html; charset={label}") == (
        html,
        f"{codec}:http",
    )


@pytest.mark.parametrize("lang", LANGS)
def test_declared_in_meta_only(lang):
    encoding, label, codec, text = SENTENCES[lang]
    for meta in (
        f'<meta charset="{label}">',
        f"<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset={label}'>",
    ):
        html = page(text, meta)
        assert decode_html(html.encode(encoding), "text/html") == (html, f"{codec}:meta")


@pytest.mark.parametrize("lang", LANGS)
def test_undeclared_is_detected(lang):
    encoding, _, codec, text = SENTENCES[lang]
    html = page(text)
    assert decode_html(html.encode(encoding), None) == (html, f"{codec}:detected")


@pytest.mark.parametrize("lang", LANGS)
def test_latin1_header_on_other_script_is_overruled(lang):
    # Servers send "charset=iso-8859-1" by default; Latin-1 decoding never fails, so only
    # detection can catch the lie.
    encoding, _, codec, text = SENTENCES[lang]
    html = page(text)
    got = decode_html(html.encode(encoding), "text/html; charset=ISO-8859-1")
    assert got == (html, f"{codec}:detected")


@pytest.mark.parametrize("lang", LANGS)
def test_utf8_header_on_legacy_bytes_falls_through(lang):
    encoding, label, codec, text = SENTENCES[lang]
    html = page(text, f'<meta charset="{label}">')
    assert decode_html(html.encode(encoding), "text/html; charset=utf-8") == (html, f"{codec}:meta")
    html = page(text)
    got = decode_html(html.encode(encoding), "text/html; charset=utf-8")
    assert got == (html, f"{codec}:detected")


@pytest.mark.parametrize("lang", LANGS)
def test_legacy_label_on_utf8_bytes_is_utf8(lang):
    # Pages converted to UTF-8 that kept their old label.
    _, label, _, text = SENTENCES[lang]
    html = page(text, f'<meta charset="{label}">')
    assert decode_html(html.encode("utf-8"), f"text/html; charset={label}") == (
        html,
        "utf-8:detected",
    )


@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != "ru"])  # ru: 1 byte/char
def test_page_cut_in_the_middle_of_a_character(lang):
    encoding, label, codec, text = SENTENCES[lang]
    html = page(text, f'<meta charset="{label}">') + text[:2]  # ends with a 2-byte character
    got, how = decode_html(html.encode(encoding)[:-1], None)
    assert (got, how) == (html[:-1], f"{codec}:meta")  # the incomplete character is left out


def test_bom_wins():
    html = page("Grüße aus Köln")
    assert decode_html(b"\xef\xbb\xbf" + html.encode(), "text/html; charset=gbk") == (
        html,
        "utf-8:bom",
    )
    assert decode_html(b"\xff\xfe" + html.encode("utf-16-le"), None) == (html, "utf-16-le:bom")


def test_meta_in_a_comment_is_ignored_and_meta_cannot_say_utf16():
    text = SENTENCES["ru"][3]
    html = page(text, '<!-- <meta charset="big5"> --><meta charset="windows-1251">')
    assert decode_html(html.encode("cp1251"), None) == (html, "cp1251:meta")
    html = page("plain text", '<meta charset="utf-16">')
    assert decode_html(html.encode(), None) == (html, "utf-8:meta")


def test_windows_1252_is_what_latin1_means():
    data = b"<p>\x93Quoted\x94 \x96 caf\xe9 \x81</p>"
    assert decode_html(data, "text/html; charset=iso-8859-1") == (
        "<p>“Quoted” – café \x81</p>",
        "cp1252:http",
    )


def test_damaged_pages():
    # Declared UTF-8 with real multi-byte text and one stray Latin-1 byte: lossy UTF-8.
    text = SENTENCES["zh"][3]
    data = page(text).encode() + b"caf\xe9 au lait"
    got, how = decode_html(data, "text/html; charset=utf-8")
    assert how == "utf-8:lossy" and got == page(text) + "caf\ufffd au lait"
    # Declared UTF-8 but otherwise ASCII with Latin-1 bytes: detection reads it right (the
    # detector may say cp1250 or cp1252 here; both give the same text for these bytes).
    data = b"<html><body><p>Welcome to the Caf\xe9 on the corner, it\x92s open.</p></body></html>"
    got, how = decode_html(data, "text/html; charset=utf-8")
    assert got == "<html><body><p>Welcome to the Café on the corner, it’s open.</p></body></html>"
    assert how.endswith(":detected")
    # Binary junk served as HTML: nothing decodes it well enough.
    assert decode_html(gzip.compress(os.urandom(4000)), "text/html") == (None, "undecodable")


def test_nul_in_a_charset_label_is_an_unknown_label():
    # Found by bench/fuzz.py: codecs.lookup raises ValueError (not LookupError) on a NUL,
    # which escaped ExtractStage and failed the whole chunk.
    assert codec_for_label("\x00utf-8") is None
    assert codec_for_label("bogus\x00") is None
    data = b'<html><head><meta charset=\x00"bogus"></head><body><p>Stra\xc3\x9fe</p></body></html>'
    got, how = decode_html(data, "text/html; charset=ut\x00f-8")
    assert got is not None and "Straße" in got, how


def test_iso_2022_jp_is_not_mistaken_for_ascii():
    text = SENTENCES["ja"][3]
    html = page(text)
    assert decode_html(html.encode("iso2022_jp"), None) == (html, "iso2022_jp:detected")


def test_labels_map_to_superset_codecs():
    expected = {
        "gb2312": "gb18030",
        "GBK": "gb18030",
        "x-gbk": "gb18030",
        "cp936": "gb18030",
        "gb18030": "gb18030",
        "shift_jis": "cp932",
        "sjis": "cp932",
        "x-sjis": "cp932",
        "windows-31j": "cp932",
        "euc-kr": "cp949",
        "ks_c_5601-1987": "cp949",
        "big5": "big5hkscs",
        "iso-8859-1": "cp1252",
        "latin1": "cp1252",
        "us-ascii": "cp1252",
        "windows-1252": "cp1252",
        "windows-1251": "cp1251",
        "koi8-r": "koi8-r",
        "iso-8859-2": "iso8859-2",
        "tis-620": "cp874",
        ' "UTF8" ': "utf-8",
        "euc-jp": "euc_jp",
    }
    assert {label: codec_for_label(label) for label in expected} == expected
    for nonsense in ("foo", "", "base64", "rot13", "utf-7", "x-user-defined"):
        assert codec_for_label(nonsense) is None, nonsense


def test_meta_prescan_limits():
    assert (
        meta_charset(b'<head><meta http-equiv="content-type" content="text/html;charset=koi8-r">')
        == "koi8-r"
    )
    assert meta_charset(b"<script>" + b"x" * 5000 + b'</script><meta charset="gbk">') is None
    assert meta_charset(b"<p>charset=gbk</p>") is None


def test_wet_text():
    assert decode_text("Grüße".encode()) == "Grüße"
    assert decode_text(b"ok \xff end") == "ok \ufffd end"


def test_gbk_page_end_to_end_from_a_warc(tmp_path: Path):
    # A response record whose GBK body is declared only in the HTTP header.
    text = SENTENCES["zh"][3]
    body = page(text).encode("gbk")
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=GBK\r\n\r\n" + body
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
        "WARC-Target-URI: http://example.cn/\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n"
    )
    path = tmp_path / "gbk.warc.gz"
    path.write_bytes(gzip.compress(head.encode() + http + b"\r\n\r\n"))
    (row,) = read_file(str(path), 5_000_000).to_pylist()
    assert decode_html(row[S.PAYLOAD], row[S.CONTENT_TYPE]) == (page(text), "gb18030:http")
