"""The WARC reader on real files: classification, chunking, and bad input.

Real Common Crawl samples live in tests/data/sample/. The third-party edge cases (warcio's
broken files, ClueWeb quirks, a CRLF-mangled WET) live in ../shared/data/warc/ next to the
repository; tests that need them are skipped with a reason when it is absent. Small WARC
files for single behaviours are written by hand in tmp_path (`warc_record` below).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import zlib
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastwarc import ArchiveIterator
from fastwarc.stream_io import BrotliWriter

from pipeline import schema as S
from pipeline.decode import decode_html
from pipeline.schema import Reason
from pipeline.warc import Chunk, looks_like_html, read_chunk, read_file, scan_chunks

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "sample"
CC_WARC = SAMPLE / "chatnoir-cc-main-2020-34.warc.gz"  # 50 records, one gzip member each
CC_WET = SAMPLE / "whatsinthebox-cc-main-2020-50.warc.wet.gz"  # 319 records
WGET_WARC = SAMPLE / "dolma-sample-0000.warc.gz"  # 48 records, wget crawl
SHARED_WARC = REPO.parent / "shared" / "data" / "warc"

MAX = 5_000_000


def shared(relative: str) -> Path:
    path = SHARED_WARC / relative
    if not path.exists():
        pytest.skip(f"shared test data not found: {path} (it lives outside the repository)")
    return path


def reasons(table: pa.Table) -> Counter:
    return Counter(table.column(S.DROP_REASON).to_pylist())


def fastwarc_count(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in ArchiveIterator(stream, parse_http=False))


def read_in_chunks(path: Path, chunk_records: int) -> pa.Table:
    chunks = scan_chunks(str(path), 3, chunk_records)
    return pa.concat_tables([read_chunk(chunk, MAX) for chunk in chunks])


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    return a.equals(b)


def says_why_on_read_errors_only(table: pa.Table) -> bool:
    """Every read_error row has a message (drop_detail); no other row has one."""
    rows = zip(table[S.DROP_REASON].to_pylist(), table[S.DROP_DETAIL].to_pylist(), strict=True)
    return all(bool(detail) == (reason == Reason.READ_ERROR) for reason, detail in rows)


# --- Hand-made WARC files ---------------------------------------------------------------

_counter = iter(range(1, 10**6))


def warc_record(
    warc_type: str,
    block: bytes,
    *,
    uri: str | None = "http://example.com/page",
    content_type: str | None = None,
    record_id: str | None = "auto",
    content_length: int | None = None,
    digest: bool = False,
) -> bytes:
    """One WARC/1.0 record as bytes (header, block, CRLF CRLF)."""
    if record_id == "auto":
        record_id = f"<urn:uuid:00000000-0000-0000-0000-{next(_counter):012d}>"
    lines = ["WARC/1.0", f"WARC-Type: {warc_type}", "WARC-Date: 2024-05-01T12:00:00Z"]
    if record_id:
        lines.append(f"WARC-Record-ID: {record_id}")
    if uri:
        lines.append(f"WARC-Target-URI: {uri}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if digest:
        value = base64.b32encode(hashlib.sha1(block).digest()).decode()
        lines.append(f"WARC-Block-Digest: sha1:{value}")
    length = len(block) if content_length is None else content_length
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + block + b"\r\n\r\n"


def http_response(body: bytes, status: int = 200, headers: dict | None = None, lf=False) -> bytes:
    """A response record's block: status line, headers, body."""
    if headers is None:
        headers = {"Content-Type": "text/html; charset=utf-8"}
    eol = "\n" if lf else "\r\n"
    head = f"HTTP/1.1 {status} X{eol}" + "".join(f"{k}: {v}{eol}" for k, v in headers.items())
    return (head + eol).encode() + body


def response(body: bytes, status: int = 200, headers: dict | None = None, **kw) -> bytes:
    block = http_response(body, status, headers, lf=kw.pop("lf", False))
    return warc_record("response", block, content_type="application/http; msgtype=response", **kw)


def write_warc(path: Path, records: list[bytes], members: bool = True) -> Path:
    """Gzip with one member per record (members=True), or uncompressed for a .warc name."""
    if path.name.endswith(".gz"):
        data = (
            b"".join(gzip.compress(r) for r in records)
            if members
            else gzip.compress(b"".join(records))
        )
    else:
        data = b"".join(records)
    path.write_bytes(data)
    return path


PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Hello</p></body></html>"
# ~13 KB that gzip cannot shrink much (hex digests), so cutting its tail loses little.
LONG_PAGE = b"<html><body>" + b"".join(
    hashlib.sha256(b"%d" % i).hexdigest().encode() + b"<br>\n" for i in range(200)
)


# --- Classification ---------------------------------------------------------------------


def test_schema_and_one_row_per_record_on_real_samples():
    for path in (CC_WARC, CC_WET, WGET_WARC):
        table = read_file(str(path), MAX)
        assert table.schema == S.RAW_SCHEMA
        assert table.num_rows == fastwarc_count(path)
        assert table.column(S.SOURCE).to_pylist() == [str(path)] * table.num_rows
        assert len(set(table.column(S.ID).to_pylist())) == table.num_rows


def test_common_crawl_warc_rows():
    table = read_file(str(CC_WARC), MAX)
    rows = table.to_pylist()
    # 16 request/response/metadata triplets + warcinfo: every 200 text/html response goes on.
    assert reasons(table) == {None: 16, Reason.NOT_A_DOCUMENT: 34}
    assert rows[0][S.RECORD_TYPE] == "warcinfo" and rows[0][S.OFFSET] == 0
    assert [r[S.OFFSET] for r in rows[:4]] == [0, 481, 940, 11845]  # gzip member starts
    alive = [r for r in rows if r[S.DROP_REASON] is None]
    assert {r[S.RECORD_TYPE] for r in alive} == {"response"}
    assert all(r[S.HTTP_STATUS] == 200 and r[S.PAYLOAD] for r in alive)
    assert all(r[S.ID].startswith("<urn:uuid:") and r[S.URL].startswith("http") for r in rows[1:])
    assert all(r[S.CRAWL_DATE].startswith("2020-08-08T") for r in rows)
    dropped = [r for r in rows if r[S.DROP_REASON] is not None]
    assert all(r[S.DROP_STAGE] == "read" and r[S.PAYLOAD] is None for r in dropped)
    assert all(r[S.DROP_STAGE] is None for r in alive)


def test_wet_conversion_records_carry_their_text():
    rows = read_file(str(CC_WET), MAX).to_pylist()
    assert rows[0][S.DROP_REASON] == Reason.NOT_A_DOCUMENT  # warcinfo
    conversions = rows[1:]
    assert len(conversions) == 318
    assert all(r[S.RECORD_TYPE] == "conversion" and r[S.DROP_REASON] is None for r in conversions)
    assert all(r[S.CONTENT_TYPE] is None and r[S.HTTP_STATUS] is None for r in conversions)
    texts = [r[S.PAYLOAD].decode("utf-8") for r in conversions]
    assert any("的" in t for t in texts)  # ~87 Chinese pages in this sample


def test_record_kinds(tmp_path):
    resource_html = warc_record("resource", PAGE, content_type="text/html")
    records = [
        warc_record(
            "warcinfo", b"software: test\r\n", uri=None, content_type="application/warc-fields"
        ),
        warc_record("request", b"GET / HTTP/1.1\r\n\r\n", content_type="application/http"),
        response(PAGE),
        response(b"not found", status=404),
        response(b"\x89PNG....", headers={"Content-Type": "image/png"}),
        warc_record("revisit", b"", content_type="application/http; msgtype=response"),
        warc_record("metadata", b"fetchTimeMs: 12\r\n", content_type="application/warc-fields"),
        resource_html,
        warc_record("resource", b"GIF89a....", content_type="image/gif"),
        warc_record("conversion", b"Texte brut extrait.", content_type="text/plain"),
        response(PAGE, headers={"Content-Type": "application/xhtml+xml"}),
    ]
    table = read_file(str(write_warc(tmp_path / "kinds.warc.gz", records)), MAX)
    got = list(
        zip(
            table.column(S.RECORD_TYPE).to_pylist(),
            table.column(S.DROP_REASON).to_pylist(),
            strict=True,
        )
    )
    assert got == [
        ("warcinfo", Reason.NOT_A_DOCUMENT),
        ("request", Reason.NOT_A_DOCUMENT),
        ("response", None),
        ("response", Reason.HTTP_STATUS),
        ("response", Reason.NOT_HTML),
        ("revisit", Reason.REVISIT),
        ("metadata", Reason.NOT_A_DOCUMENT),
        ("resource", None),
        ("resource", Reason.NOT_A_DOCUMENT),
        ("conversion", None),
        ("response", None),
    ]
    payloads = table.column(S.PAYLOAD).to_pylist()
    assert payloads[2] == PAGE and payloads[7] == PAGE
    assert payloads[9] == b"Texte brut extrait."
    assert table.column(S.HTTP_STATUS).to_pylist()[2:5] == [200, 404, 200]
    assert table.column(S.CONTENT_TYPE).to_pylist()[4] == "image/png"


@pytest.mark.parametrize(
    ("content_type", "body", "kept"),
    [
        (None, PAGE, True),  # no Content-Type header at all
        ("", b"\n  <html><body>x</body></html>", True),
        ("application/octet-stream", b"\xef\xbb\xbf \r\n<!doctype HTML><title>x</title>", True),
        ("text/plain", b"<!-- generated -->\n<HTML><HEAD><TITLE>x</TITLE>", True),
        ("text/plain", b"User-agent: *\nDisallow: /private\n", False),
        ("application/octet-stream", b"\x89PNG\r\n\x1a\n<html>", False),
        ("text/plain", b"Some text that mentions <html> later on", False),
        ("application/javascript", PAGE, False),  # a declared non-HTML type is believed
    ],
)
def test_content_type_sniffing(tmp_path, content_type, body, kept):
    headers = {} if content_type is None else {"Content-Type": content_type}
    path = write_warc(tmp_path / "sniff.warc.gz", [response(body, headers=headers)])
    (row,) = read_file(str(path), MAX).to_pylist()
    assert row[S.DROP_REASON] == (None if kept else Reason.NOT_HTML)
    assert row[S.PAYLOAD] == (body if kept else None)


def test_looks_like_html():
    assert looks_like_html(b"  <!DOCTYPE html>")
    assert looks_like_html(b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">')
    assert not looks_like_html(b'{"html": "<html>"}')
    assert not looks_like_html(b"")


def test_payload_size_limit(tmp_path):
    big = b"<html><body>" + b"x" * 5000 + b"</body></html>"
    bomb = gzip.compress(b"<html>" + b" " * 200_000)  # 200 KB from ~200 bytes
    records = [
        response(big),
        response(PAGE),
        response(bomb, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}),
        warc_record("conversion", b"w" * 5000),
    ]
    table = read_file(str(write_warc(tmp_path / "big.warc.gz", records)), 4096)
    assert table.column(S.DROP_REASON).to_pylist() == [
        Reason.HTML_TOO_LARGE,
        None,
        Reason.HTML_TOO_LARGE,
        Reason.HTML_TOO_LARGE,
    ]
    assert table.column(S.PAYLOAD).to_pylist() == [None, PAGE, None, None]


def test_http_encodings_are_undone(tmp_path):
    def brotli(data: bytes) -> bytes:
        out = io.BytesIO()
        writer = BrotliWriter(out)
        writer.write(data)
        writer.close()
        return out.getvalue()

    def chunked(data: bytes, size: int = 17) -> bytes:
        parts = [data[i : i + size] for i in range(0, len(data), size)]
        return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    html = {"Content-Type": "text/html"}
    records = [
        response(gzip.compress(PAGE), headers={**html, "Content-Encoding": "gzip"}),
        response(zlib.compress(PAGE), headers={**html, "Content-Encoding": "deflate"}),
        response(zlib.compress(PAGE)[2:-4], headers={**html, "Content-Encoding": "deflate"}),
        response(brotli(PAGE), headers={**html, "Content-Encoding": "br"}),
        response(chunked(PAGE), headers={**html, "Transfer-Encoding": "chunked"}),
        response(
            chunked(gzip.compress(PAGE)),
            headers={**html, "Transfer-Encoding": "chunked", "Content-Encoding": "gzip"},
        ),
        # Headers that lie: the crawler already decoded the body (ClueWeb09 does this).
        response(PAGE, headers={**html, "Content-Encoding": "gzip"}),
        response(PAGE, headers={**html, "Transfer-Encoding": "chunked"}),
        # A cut-off gzip body keeps what decodes; a corrupt one is a read error.
        response(gzip.compress(LONG_PAGE)[:-200], headers={**html, "Content-Encoding": "gzip"}),
        response(b"\x1f\x8b\x08\x00garbage" * 20, headers={**html, "Content-Encoding": "gzip"}),
    ]
    rows = read_file(str(write_warc(tmp_path / "enc.warc.gz", records)), MAX).to_pylist()
    assert [r[S.PAYLOAD] for r in rows[:8]] == [PAGE] * 8
    assert rows[8][S.DROP_REASON] is None and LONG_PAGE.startswith(rows[8][S.PAYLOAD])
    assert len(LONG_PAGE) // 2 < len(rows[8][S.PAYLOAD]) < len(LONG_PAGE)
    assert rows[9][S.DROP_REASON] == Reason.READ_ERROR and rows[9][S.PAYLOAD] is None


def test_ids_urls_and_lf_only_http_heads(tmp_path):
    records = [
        response(PAGE, record_id=None),  # no WARC-Record-ID: id = source@offset
        response(PAGE, uri="<http://example.com/wget>"),  # wget writes the WARC 1.0 brackets
        response(PAGE, lf=True),  # LF-only HTTP head (ClueWeb09)
        warc_record("response", b"garbage head\r\n\r\n<html>", content_type="application/http"),
        # HTTP responses whose WARC Content-Type is missing or in capitals
        warc_record("response", http_response(PAGE)),
        warc_record("response", http_response(PAGE), content_type="Application/HTTP"),
        warc_record("response", b"example.com. A 93.184.216.34", content_type="text/dns"),
    ]
    path = write_warc(tmp_path / "ids.warc", records)
    rows = read_file(str(path), MAX).to_pylist()
    assert rows[0][S.ID] == f"{path}@0"
    assert rows[1][S.URL] == "http://example.com/wget"
    assert rows[2][S.DROP_REASON] is None and rows[2][S.PAYLOAD] == PAGE
    assert rows[2][S.CONTENT_TYPE] == "text/html; charset=utf-8"
    assert rows[3][S.DROP_REASON] == Reason.READ_ERROR  # HTTP status line unparseable
    assert [r[S.PAYLOAD] for r in rows[4:6]] == [PAGE, PAGE]
    assert rows[6][S.DROP_REASON] == Reason.NOT_HTML


# --- Chunking ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CC_WARC, CC_WET, WGET_WARC], ids=lambda p: p.name)
def test_chunks_give_the_same_rows_as_one_read(path):
    whole = read_file(str(path), MAX)
    for chunk_records in (1, 3, 7, 50, 1000):
        chunks = scan_chunks(str(path), 3, chunk_records)
        assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
        assert chunks[0].start == 0 and chunks[-1].end is None
        assert all(a.end == b.start for a, b in pairwise(chunks))
        assert sum(c.n_records for c in chunks) == whole.num_rows
        assert len(chunks) == -(-whole.num_rows // chunk_records)
        parts = [read_chunk(chunk, MAX) for chunk in chunks]
        assert [p.num_rows for p in parts] == [c.n_records for c in chunks]
        assert same_rows(pa.concat_tables(parts), whole), chunk_records


def test_uncompressed_file_chunks_at_plain_offsets(tmp_path):
    plain = tmp_path / "cc.warc"
    plain.write_bytes(gzip.decompress(CC_WARC.read_bytes()))  # all members, concatenated
    whole = read_file(str(plain), MAX)
    assert reasons(whole) == {None: 16, Reason.NOT_A_DOCUMENT: 34}
    assert whole.column(S.OFFSET).to_pylist()[:3] == [0, 764, 1428]
    data = plain.read_bytes()
    assert all(data[o : o + 5] == b"WARC/" for o in whole.column(S.OFFSET).to_pylist())
    for chunk_records in (1, 4, 9):
        assert same_rows(read_in_chunks(plain, chunk_records), whole)


def test_whole_file_gzip_is_one_chunk_with_decompressed_offsets(tmp_path):
    single = tmp_path / "single.warc.gz"
    single.write_bytes(gzip.compress(gzip.decompress(CC_WARC.read_bytes())))
    chunks = scan_chunks(str(single), 0, 5)
    assert chunks == [Chunk(str(single), 0, 0, 0, None, 50)]
    table = read_chunk(chunks[0], MAX)
    assert reasons(table) == {None: 16, Reason.NOT_A_DOCUMENT: 34}
    assert table.column(S.OFFSET).to_pylist()[:3] == [0, 764, 1428]


def test_read_errors_say_why(tmp_path):
    # drop_detail: the reader's message on read_error rows, null on every other row.
    html = {"Content-Type": "text/html"}
    records = [
        response(b"\x28\xb5\x2f\xfd" + PAGE, headers={**html, "Content-Encoding": "zstd"}),
        response(b"\x1f\x8b\x08\x00garbage" * 20, headers={**html, "Content-Encoding": "gzip"}),
        response(PAGE),
        response(PAGE, status=404),
    ]
    rows = read_file(str(write_warc(tmp_path / "why.warc.gz", records)), MAX).to_pylist()
    assert [r[S.DROP_DETAIL] for r in rows] == [
        "Content-Encoding 'zstd' is not supported",
        "body does not decode as Content-Encoding gzip",
        None,
        None,
    ]
    empty = tmp_path / "empty.warc"
    empty.write_bytes(b"")
    assert read_file(str(empty), MAX)[S.DROP_DETAIL].to_pylist() == ["empty file"]
    cut = tmp_path / "cut.warc"
    cut.write_bytes(CC_PLAIN[:20000])  # inside the first response's payload
    assert read_file(str(cut), MAX)[S.DROP_DETAIL].to_pylist()[-1] == "record is cut short"


def test_a_read_errors_detail_does_not_depend_on_the_chunking(tmp_path):
    # bench/fuzz.py: 40 bytes deleted in the first response's WARC header. Read whole, the
    # record's framing reaches its digest (which fails); read a record per chunk, it stops
    # at the chunk's end (it looked cut short). The detail is now the file's view in both.
    path = tmp_path / "deleted.warc"
    path.write_bytes(CC_PLAIN[:1967] + CC_PLAIN[2007:])
    table = read_file(str(path), MAX)
    assert "block digest does not match" in table[S.DROP_DETAIL].to_pylist()[2]
    assert same_rows(read_in_chunks(path, 1), table)


def test_empty_file_is_one_read_error(tmp_path):
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    assert scan_chunks(str(empty), 0, 10) == [Chunk(str(empty), 0, 0, 0, None, 0)]
    (row,) = read_file(str(empty), MAX).to_pylist()
    assert row[S.DROP_REASON] == Reason.READ_ERROR and row[S.ID] == f"{empty}@0"


# --- Damaged files made from the real sample ---------------------------------------------

CC_BYTES = CC_WARC.read_bytes()
CC_PLAIN = gzip.decompress(CC_BYTES)
# Offsets of the records around the damage: the response at 940 (gz) / 1428 (plain) and
# the metadata record after it at 11845 (gz) / 38592 (plain).
DAMAGED = {
    "gz_garbage_between.warc.gz": CC_BYTES[:11845] + b"GARBAGE" * 30 + CC_BYTES[11845:],
    "gz_zeros_between.warc.gz": CC_BYTES[:11845] + bytes(500) + CC_BYTES[11845:],
    "gz_junk_at_end.warc.gz": CC_BYTES + b"junk at end\n" * 5,
    "gz_junk_at_start.warc.gz": b"hello world\n" + CC_BYTES,
    # found by bench/fuzz.py: junk that starts like an uncompressed WARC
    "gz_warc_line_at_start.warc.gz": b"WARC/" + CC_BYTES,
    "plain_garbage_between.warc": CC_PLAIN[:38592] + b"GARBAGE\r\n" * 30 + CC_PLAIN[38592:],
    "plain_junk_at_end.warc": CC_PLAIN + b"junk\r\n" * 5,
    "plain_junk_at_start.warc": b"some junk\n" + CC_PLAIN,
    # found by bench/fuzz.py: junk with no newline before the next "WARC/1.0" line
    "plain_nul_at_start.warc": b"\x00" + CC_PLAIN,
    "plain_gzip_magic_at_start.warc": b"\x1f\x8b" + CC_PLAIN,
    "plain_glued_garbage_between.warc": CC_PLAIN[:38592] + b"GARBAGE" + CC_PLAIN[38592:],
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_garbage_becomes_one_read_error_row_and_every_record_survives(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(DAMAGED[name])
    clean = read_file(str(CC_WARC), MAX)
    table = read_file(str(path), MAX)
    assert reasons(table) == {None: 16, Reason.NOT_A_DOCUMENT: 34, Reason.READ_ERROR: 1}
    (error,) = [r for r in table.to_pylist() if r[S.DROP_REASON] == Reason.READ_ERROR]
    assert error[S.ID] == f"{path}@{error[S.OFFSET]}" and error[S.RECORD_TYPE] is None
    records = table.filter(pc.is_valid(table[S.RECORD_TYPE]))
    assert records.column(S.ID).to_pylist() == clean.column(S.ID).to_pylist()
    assert records.column(S.PAYLOAD).to_pylist() == clean.column(S.PAYLOAD).to_pylist()
    assert says_why_on_read_errors_only(table)
    for chunk_records in (1, 6):
        assert same_rows(read_in_chunks(path, chunk_records), table)


def test_corrupt_gzip_member_is_the_lost_record(tmp_path):
    # 200 zero bytes inside the member of the metadata record at 11845: that record is
    # gone, a read error at its offset stands for it, and reading goes on after it.
    path = tmp_path / "corrupt_member.warc.gz"
    path.write_bytes(CC_BYTES[: 11845 + 20] + bytes(200) + CC_BYTES[11845 + 220 :])
    table = read_file(str(path), MAX)
    assert reasons(table) == {None: 16, Reason.NOT_A_DOCUMENT: 33, Reason.READ_ERROR: 1}
    offsets = table.column(S.OFFSET).to_pylist()
    assert offsets == read_file(str(CC_WARC), MAX).column(S.OFFSET).to_pylist()
    assert table.column(S.DROP_REASON).to_pylist()[offsets.index(11845)] == Reason.READ_ERROR
    assert same_rows(read_in_chunks(path, 2), table)


def test_garbage_row_points_at_the_first_bad_byte(tmp_path):
    for name, bad_offset in [
        ("gz_garbage_between.warc.gz", 11845),
        ("plain_junk_at_end.warc", len(CC_PLAIN)),
    ]:
        path = tmp_path / name
        path.write_bytes(DAMAGED[name])
        rows = read_file(str(path), MAX).to_pylist()
        assert [r[S.OFFSET] for r in rows if r[S.RECORD_TYPE] is None] == [bad_offset]


@pytest.mark.parametrize(
    ("name", "data", "rows", "last_reason"),
    [
        # cut inside the metadata record's header: it has no Content-Length any more
        ("cut_in_header.warc.gz", CC_BYTES[:12000], 4, Reason.READ_ERROR),
        # cut inside the first response's payload
        ("cut_in_payload.warc.gz", CC_BYTES[:5000], 3, Reason.READ_ERROR),
        ("cut_in_payload.warc", CC_PLAIN[:20000], 3, Reason.READ_ERROR),
        # cut inside a request record nobody reads the payload of: caught by its framing
        ("cut_in_request.warc", CC_PLAIN[:1000], 2, Reason.READ_ERROR),
    ],
)
def test_truncated_files(tmp_path, name, data, rows, last_reason):
    path = tmp_path / name
    path.write_bytes(data)
    table = read_file(str(path), MAX)
    assert table.num_rows == rows
    assert table.column(S.DROP_REASON).to_pylist()[-1] == last_reason
    assert table.column(S.DROP_REASON).to_pylist()[0] == Reason.NOT_A_DOCUMENT  # warcinfo
    assert says_why_on_read_errors_only(table)
    assert same_rows(read_in_chunks(path, 1), table)


def test_wrong_content_length_blames_the_record_and_reads_on(tmp_path):
    # Content-Length 30 bytes short, with a digest that exposes it: the record is broken.
    # Content-Length right, digest right, garbage after it: the record is fine.
    body = http_response(PAGE)
    short = warc_record(
        "response",
        body,
        content_type="application/http",
        content_length=len(body) - 30,
        digest=True,
    )
    good = warc_record("response", body, content_type="application/http", digest=True)
    records = [short, response(PAGE), good, b"\r\nthis is not a record\r\n\r\n", response(PAGE)]
    for path in (tmp_path / "cl.warc", tmp_path / "cl.warc.gz"):
        table = read_file(str(write_warc(path, records)), MAX)
        assert table.column(S.DROP_REASON).to_pylist() == [
            Reason.READ_ERROR,
            None,
            None,
            Reason.READ_ERROR,  # the garbage, its own row
            None,
        ]
        assert table.column(S.RECORD_TYPE).to_pylist()[3] is None


@pytest.mark.parametrize("name", ["cut_header.warc", "cut_header.warc.gz"])
@pytest.mark.parametrize("cut_fraction", [0.3, 0.7])
def test_a_header_cut_short_does_not_take_the_next_record_with_it(tmp_path, name, cut_fraction):
    """A record cut inside its WARC header runs into the next record's header, which
    FastWARC reads as one header (the next record's Content-Length and digest, so its
    block checks out): the next record used to be lost under the cut one's row (plain
    file), or read twice under one id (a gzip member per record). Now the cut record is
    one read error and every other record is read, each id once."""
    records = [response(PAGE) for _ in range(4)]
    header_end = records[1].index(b"\r\n\r\n")
    records[1] = records[1][: int(header_end * cut_fraction)]
    path = write_warc(tmp_path / name, records)
    table = read_file(str(path), MAX)
    ids = table.column(S.ID).to_pylist()
    assert table.num_rows == 4 and len(set(ids)) == 4
    assert reasons(table) == {None: 3, Reason.READ_ERROR: 1}
    assert table.column(S.DROP_REASON).to_pylist()[1] == Reason.READ_ERROR
    for i in (0, 2, 3):  # each whole record under its own id
        assert ids[i].encode() in records[i]
    assert same_rows(read_in_chunks(path, 1), table)


def records_fastwarc_reads_past() -> list[bytes]:
    """Five records; in the second (a response with a block digest) a NUL stands over the
    CR of the blank line that ends its WARC header. FastWARC then takes the HTTP head for
    more header lines, so the block it reads starts later by the head's length: with the
    head padded to the length of the request record after it, that block runs exactly
    over the request, and FastWARC returns the record after it, without an error."""
    block = http_response(LONG_PAGE, headers={"Content-Type": "text/html", "X-Pad": "p" * 177})
    damaged = warc_record("response", block, content_type="application/http", digest=True)
    header_end = damaged.index(b"\r\n\r\n")
    damaged = damaged[: header_end + 2] + b"\x00" + damaged[header_end + 3 :]
    request = warc_record("request", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    return [response(PAGE), damaged, request, response(PAGE), response(PAGE)]


@pytest.mark.parametrize("chunk_records", [None, 1, 2])
def test_a_record_fastwarc_reads_past_is_not_lost(tmp_path, chunk_records):
    # bench/fuzz.py round 1940: the request was lost. Now the damaged response (its
    # digest fails, a record starts inside its block) is the read error, the rest is read.
    records = records_fastwarc_reads_past()
    path = write_warc(tmp_path / "read_past.warc", records)
    starts = [sum(map(len, records[:i])) for i in range(5)]
    with path.open("rb") as f:  # the premise: FastWARC alone passes over the request
        assert [r.stream_pos for r in ArchiveIterator(f, parse_http=False)] == [
            starts[0],
            starts[1],
            starts[3],
            starts[4],
        ]
    if chunk_records is None:
        table = read_file(str(path), MAX)
    else:
        table = read_in_chunks(path, chunk_records)
    assert table.column(S.OFFSET).to_pylist() == starts
    assert table.column(S.DROP_REASON).to_pylist() == [
        None,
        Reason.READ_ERROR,
        Reason.NOT_A_DOCUMENT,
        None,
        None,
    ]
    ids = table.column(S.ID).to_pylist()
    assert all(ids[i].encode() in records[i] for i in (0, 2, 3, 4))


def test_a_block_without_its_status_line_gives_back_the_record_it_ran_over(tmp_path):
    # bench/fuzz.py round 440: bytes deleted at the start of a response's block (its HTTP
    # status line with them) let its declared block run over the request after it, the
    # last record of the file. The response is the read error; the request is read.
    request = warc_record("request", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    records = [response(PAGE), response(LONG_PAGE), request]
    block = records[1].index(b"HTTP/1.1")
    damaged = records[1][:block] + records[1][block + len(request) :]
    path = write_warc(tmp_path / "no_status.warc", [records[0], damaged, request])
    table = read_file(str(path), MAX)
    assert table.column(S.DROP_REASON).to_pylist() == [
        None,
        Reason.READ_ERROR,
        Reason.NOT_A_DOCUMENT,
    ]
    assert table.column(S.ID).to_pylist()[2].encode() in request
    assert same_rows(read_in_chunks(path, 1), table)


def test_not_a_warc_file(tmp_path):
    path = tmp_path / "notes.warc"
    path.write_text("just some text\nWARC is a format\n")
    (row,) = read_file(str(path), MAX).to_pylist()
    assert row[S.DROP_REASON] == Reason.READ_ERROR and row[S.OFFSET] == 0


# --- Third-party edge cases (../shared/data/warc) ------------------------------------------


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        # warcio: a whole WARC gzipped as one member (warcio refuses it): all 6 records read
        (
            "webrecorder-warcio/example-bad.warc.gz.bad",
            {None: 1, "not_a_document": 3, "revisit": 1, "http_status": 1},
        ),
        (
            "webrecorder-warcio/example-bad-non-chunked.warc.gz",
            {None: 1, "not_a_document": 4, "revisit": 1},
        ),
        # the response's Content-Length runs into the next record: it is the read error
        ("webrecorder-warcio/example-trunc.warc", {"not_a_document": 3, "read_error": 1}),
        # HTTP Content-Length disagrees with the body; the WARC framing is right
        ("webrecorder-warcio/example-wrong-chunks.warc.gz", {None: 1, "not_a_document": 1}),
        ("webrecorder-warcio/example-wget-bad-target-uri.warc.gz", {None: 1, "not_a_document": 5}),
        ("webrecorder-warcio/example-iana.org-chunked.warc", {None: 1, "not_a_document": 2}),
        ("webrecorder-warcio/example.arc.gz", {"read_error": 1}),  # ARC is not WARC
        ("chatnoir-resiliparse/clueweb-quirk.warc.gz", {None: 29, "not_a_document": 1}),
        ("chatnoir-resiliparse/clipped.warc.gz", {"read_error": 1}),  # payload cut short
        ("facebookresearch-cc_net/sample.warc.wet.txt", {"read_error": 4}),  # LF-only headers
    ],
)
def test_third_party_edge_cases(relative, expected):
    path = shared(relative)
    table = read_file(str(path), MAX)
    assert dict(reasons(table)) == expected
    assert says_why_on_read_errors_only(table)
    # record types are WARC-Type tokens, even from headers read as one line (LF-only)
    assert all(t is None or t.isalpha() for t in table.column(S.RECORD_TYPE).to_pylist())
    assert same_rows(read_in_chunks(path, 1), table)
    assert same_rows(read_in_chunks(path, 4), table)


def test_warcio_files_payloads():
    chunked = read_file(str(shared("webrecorder-warcio/example-iana.org-chunked.warc")), MAX)
    page = chunked.column(S.PAYLOAD).to_pylist()[1]
    assert page.startswith(b"<!doctype html>") and page.rstrip().endswith(b"</html>")
    gzipped = read_file(str(shared("webrecorder-warcio/example-bad-non-chunked.warc.gz")), MAX)
    assert gzipped.column(S.PAYLOAD).to_pylist()[2].startswith(b"<!doctype html>")
    wget = read_file(str(shared("webrecorder-warcio/example-wget-bad-target-uri.warc.gz")), MAX)
    assert wget.column(S.URL).to_pylist()[2] == "http://example.com/"
    trunc = read_file(str(shared("webrecorder-warcio/example-trunc.warc")), MAX).to_pylist()
    assert trunc[2][S.RECORD_TYPE] == "response" and trunc[2][S.DROP_REASON] == Reason.READ_ERROR
    assert trunc[3][S.RECORD_TYPE] == "request"  # the record after the damage is read


def test_clueweb_quirks_keep_the_http_head():
    rows = read_file(str(shared("chatnoir-resiliparse/clueweb-quirk.warc.gz")), MAX).to_pylist()
    pages = [r for r in rows if r[S.DROP_REASON] is None]
    assert all(r[S.CONTENT_TYPE] == "text/html; charset=EUC-JP" for r in pages)
    assert all(r[S.PAYLOAD].startswith(b"<html>") for r in pages)
    text, how = decode_html(pages[0][S.PAYLOAD], pages[0][S.CONTENT_TYPE])
    assert how == "euc_jp:http" and "ブラウ" in text


def test_crlf_mangled_wet_loses_nothing_silently():
    fixed = read_file(str(shared("josephdviviano-whatsinthebox/test.fixed.warc.wet.gz")), MAX)
    mangled_path = shared("josephdviviano-whatsinthebox/test.warc.wet.gz.ORIGINAL-crlf-mangled")
    mangled = read_file(str(mangled_path), MAX)
    # Same 319 records; those whose Content-Length no longer fits are read errors (their
    # block digests confirm it), the rest are read, with the same text up to line ends.
    assert mangled.num_rows == fixed.num_rows == 319
    assert sorted(mangled.column(S.ID).to_pylist()) == sorted(fixed.column(S.ID).to_pylist())
    counts = reasons(mangled)
    assert counts[Reason.READ_ERROR] > 250 and counts[None] > 0
    text_of = dict(
        zip(fixed.column(S.ID).to_pylist(), fixed.column(S.PAYLOAD).to_pylist(), strict=True)
    )
    for row in mangled.to_pylist():
        if row[S.DROP_REASON] is None:
            assert row[S.PAYLOAD].rstrip(b"\r\n") == text_of[row[S.ID]].rstrip(b"\r\n")
