"""WARC/WET records -> Arrow batches in RAW_SCHEMA: one row per record, none lost.

The runner works in two steps so that one big file's records spread over all workers:

    chunks = scan_chunks(source, file_index, chunk_records)   # one cheap pass, no payloads
    table = read_chunk(chunk, max_payload_bytes)               # any worker, any order

`scan_chunks` walks the file once and cuts it every `chunk_records` records at a record
start; `read_chunk` seeks to a chunk's first record and reads until the next chunk's first
record. Reading all chunks gives exactly the rows of reading the file as one chunk.

What each record becomes (drop_stage "read", reasons from `schema.Reason`):

- HTTP 200 `response` with HTML content -> alive, payload = HTTP body. HTML means HTTP
  Content-Type text/html or application/xhtml+xml, or a missing/generic type
  (application/octet-stream, text/plain ...) whose first 1 KB starts like HTML. libmagic
  is not used (it calls real HTML "application/javascript"). Chunked transfer-encoding and
  gzip/deflate/br content-encoding still applied to the body are undone here (fastwarc
  leaves them); a header that claims an encoding the bytes do not have is ignored (ClueWeb
  keeps "Content-Encoding: gzip" on bodies it already decompressed).
- other statuses -> HTTP_STATUS; other content types -> NOT_HTML; `revisit` -> REVISIT;
  warcinfo, request, metadata and non-HTML `resource` records -> NOT_A_DOCUMENT;
  `resource` records with an HTML type (wget-style crawls) go on like responses.
- WET `conversion` records -> alive, payload = their UTF-8 text bytes.
- a payload above `max_payload_bytes` -> HTML_TOO_LARGE, payload not kept.

Bad input never raises and is never dropped silently. FastWARC stops for good at the
first bytes it cannot parse, so the reader restarts it at the next record start it can
find: the next gzip member that opens with "WARC/" (files with one gzip member per record,
the Common Crawl layout), or the next line starting "WARC/" (uncompressed files). Each
problem becomes one READ_ERROR row, its message in `drop_detail`:

- a record that is cut short, lacks Content-Length, has an unparseable HTTP head, or whose
  Content-Length runs past the next record (or fails its WARC-Block-Digest, checked only
  after a parse failure) -> that record's own row is READ_ERROR;
- unparseable bytes between records (garbage, a corrupt gzip member, a file that is not a
  WARC at all) -> an extra row with id "<source>@<offset>" at the first bad byte;
- iteration that ends early without an error is caught by checking that the last record
  ends where the chunk ends (only blank bytes may follow);
- FastWARC can also pass over records without an error, after a record whose declared
  block runs over them (`_View.passed_over_record`; uncompressed files only, where it
  costs ~0.8 CPU s per GB: realpages uncompressed, 319 MB, 0.38 -> 0.65 s): that record
  is then the read error and the walk goes back to the records it ran over;
- a header cut short that runs into the next record's (two of a field WARC allows once)
  is that record's read error, and the next record is read from its own start.

Offsets are file offsets: of the record's gzip member, or of the record in an uncompressed
file. A gzip file that is not one member per record (a whole WARC gzipped at once) cannot
be entered in the middle: it is decompressed to a temporary file, read as one chunk, and
its offsets are positions in the decompressed stream.

Speed, one process on this 2-core machine, bench/realpages.warc.gz (3,913 pages, 66 MB):
scan_chunks ~9,000-11,000 records/s (FastWARC decompressing, no payloads), read_chunk over
all 200-record chunks ~4,600 responses/s, against ~6,900/s for a bare FastWARC loop that
reads every payload. The Python work per record is a few header lookups and one append
per column; the table is built once per chunk, the payload column from one joined buffer.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import io
import logging
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

import pyarrow as pa
from fastwarc import ArchiveIterator, WarcRecord, WarcRecordType
from fastwarc.stream_io import BrotliReader
from fastwarc.warc import HeaderMap

from pipeline import schema as S
from pipeline.io import file_size, open_binary
from pipeline.schema import Reason

STAGE = "read"

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
GZIP_MEMBER_START = b"\x1f\x8b\x08"  # magic + deflate, the only method gzip defines

# How much of a payload to look at when the content type does not say whether it is HTML.
SNIFF_BYTES = 1024
HTML_TYPES = {"text/html", "application/xhtml+xml"}
# Content types that say nothing about the payload: sniff it.
GENERIC_TYPES = {
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "application/x-unknown-content-type",
    "unknown/unknown",
    "text/plain",
    "*/*",
}
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")

# Limits for the recovery code paths (never touched when a file reads cleanly).
_SEARCH_BLOCK = 1 << 20  # bytes read per step while looking for the next record start
_HEADER_MAX = 64 << 10  # a WARC header longer than this is not a header (fastwarc: 32 KB)
_BLANK_MAX = 64 << 10  # a stretch longer than this between records is never "blank"
_INFLATE_STEP = 4 << 20  # decompressed bytes produced per zlib call
_PROBE_MAX = 64 << 20  # a first record bigger than this: treat the gzip as one stream

_RECORD_LINE = re.compile(rb"\nWARC/[0-9]")
_RECORD_VERSION = re.compile(rb"WARC/1\.[01]\r\n")  # a record glued to junk, no newline
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")  # where FastWARC ends a header
# Fields a record has once (WARC 1.1, section 5). Twice in one header: a header cut short
# ran into the next record's, which FastWARC reads as one record (bench/fuzz.py's cut
# records and an audit of cut headers: the next record, its block and digest, went under
# the cut one's row and was lost).
_SINGLE_FIELDS = ("WARC-Record-ID", "WARC-Type", "WARC-Date", "Content-Length")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)[ \t]*\r\n", re.IGNORECASE)
_BLOCK_DIGEST = re.compile(rb"\r\nwarc-block-digest:[ \t]*([^\r\n]+?)[ \t]*\r\n", re.IGNORECASE)

# Errors FastWARC and the decompressors raise on bad bytes (FastWARC: OSError/ValueError).
_READ_ERRORS = (OSError, ValueError, EOFError, zlib.error)


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive records of one input file: the unit of work of the read phase."""

    source: str
    file_index: int
    chunk_index: int
    start: int  # byte offset (in the possibly compressed file) of the chunk's first record
    end: int | None  # offset where the next chunk starts; None = read to the end of the file
    n_records: int  # records the scan saw in this chunk


# --- Public API --------------------------------------------------------------------------


def scan_chunks(source: str, file_index: int, chunk_records: int) -> list[Chunk]:
    """Walk `source` once (headers only) and cut it every `chunk_records` records."""
    if chunk_records <= 0:
        raise ValueError(f"chunk_records must be positive, got {chunk_records}")
    starts: list[int] = []
    ids: list[str | None] = []

    def note(record: WarcRecord) -> None:
        starts.append(record.stream_pos)
        ids.append(record.record_id)

    with _open_view(source) as view:
        _walk(view, 0, None, note, _ignore_problem)
        first_records = range(chunk_records, len(starts), chunk_records)  # of chunks 1, 2 ...
        cuts = [0] + [starts[i] for i in first_records]
        # A cut must be a place where a fresh iterator finds that same record. Not so in
        # files with several records per gzip member (offsets inside a member are vague)
        # or with offsets out of order: such a file is read as one chunk.
        in_order = all(a < b for a, b in pairwise(starts))
        if not in_order or not all(view.starts_record(starts[i], ids[i]) for i in first_records):
            cuts = [0]
    chunks = []
    for index, start in enumerate(cuts):
        end = cuts[index + 1] if index + 1 < len(cuts) else None
        first = bisect.bisect_left(starts, start)
        last = bisect.bisect_left(starts, end) if end is not None else len(starts)
        chunks.append(Chunk(source, file_index, index, start, end, last - first))
    return chunks


def read_chunk(chunk: Chunk, max_payload_bytes: int) -> pa.Table:
    """Read the records of one chunk into a RAW_SCHEMA table, one row per record."""
    rows = _Rows(chunk.source, max_payload_bytes)
    with _open_view(chunk.source) as view:
        if view.size == 0:
            rows.add_problem(_Problem(0, "empty file", blame_last_record=False))
        else:
            _walk(view, chunk.start, chunk.end, rows.add_record, rows.add_problem)
    return rows.table()


def read_file(source: str, max_payload_bytes: int) -> pa.Table:
    """Read a whole file as one chunk (tests, small inputs)."""
    return read_chunk(Chunk(source, 0, 0, 0, None, 0), max_payload_bytes)


# --- Walking the records of a file, with recovery -----------------------------------------


@dataclass(frozen=True)
class _Problem:
    """Why reading stopped early: blame the last record read, or report a gap of bad bytes."""

    offset: int
    message: str
    blame_last_record: bool


def _ignore_problem(problem: _Problem) -> None:
    pass


def _walk(
    view: _View,
    start: int,
    end: int | None,
    visit: Callable[[WarcRecord], None],
    report: Callable[[_Problem], None],
) -> None:
    """Call `visit` on every record starting in [start, end), `report` on every problem.

    `visit` may raise _BrokenStream (a payload that cannot be read): the walk then treats
    the stream as broken after that record, exactly as if FastWARC had raised.
    """
    limit = view.size if end is None else end
    position = start
    while position < limit:
        view.file.seek(position)
        last = None  # stream_pos of the last record visited in this run
        last_length = 0  # its Content-Length, as FastWARC read it
        error = None
        try:
            for record in ArchiveIterator(view.file, parse_http=False):
                # (before the limit test: a record passed over may lie before the limit)
                if last is not None and view.passed_over_record(last, last_length, record):
                    error = "a record start inside or after its declared block"
                    break
                if record.stream_pos >= limit:
                    return
                last, last_length = record.stream_pos, record.content_length
                visit(record)
        except (*_READ_ERRORS, _BrokenStream) as exc:
            error = str(exc) or type(exc).__name__
        resume = _recover(view, position, last, limit, error, report)
        if resume is None:
            return
        position = resume


def _recover(
    view: _View,
    position: int,
    last: int | None,
    limit: int,
    error: str | None,
    report: Callable[[_Problem], None],
) -> int | None:
    """FastWARC stopped before `limit`: report what is wrong and return where to go on.

    `position` is where this run of the iterator started, `last` the start of the last
    record it returned (None if none), `error` its exception (None if it just stopped).
    """
    if last is None:  # not even one record at `position`
        resume = view.next_record_start(position, limit)
        if error is None and view.is_blank(position, resume or limit):
            return resume  # only blank bytes, e.g. newlines at the end of the file
        report(_Problem(position, error or "no WARC record here", blame_last_record=False))
        return resume

    # Trust the last record's own framing (Content-Length) when it fits and, after a
    # parse error, when its block digest proves it: the trouble is then after it.
    framing = view.framing(last, limit, verify_digest=error is not None)
    proven = framing.digest_ok is True or (framing.digest_ok is None and error is None)
    if framing.complete and proven:
        resume = view.next_record_start(framing.end - 1, limit)
        stop = limit if resume is None else resume
        if framing.end < stop and not view.is_blank(framing.end, stop):
            message = error or "bytes after the last record that are not a WARC record"
            report(_Problem(framing.end, message, blame_last_record=False))
        return resume

    # Otherwise the next record start decides: if the last record's declared length runs
    # past it (truncated record, wrong Content-Length) the last record is what is broken.
    resume = view.next_record_start(last, limit)
    stop = limit if resume is None else resume
    if framing.complete and framing.digest_ok is None:
        framing = view.framing(last, stop, verify_digest=False)
        if framing.complete:
            if framing.end < stop and not view.is_blank(framing.end, stop):
                report(_Problem(framing.end, error or "unreadable bytes", blame_last_record=False))
            return resume
    report(_Problem(last, _why_broken(view, last, error), blame_last_record=True))
    return resume


def _why_broken(view: _View, start: int, error: str | None) -> str:
    """Why the record at `start` is a read error, in words (its row's drop_detail). Its
    framing is checked against the whole file here, not the chunk: how far a chunk lets it
    look must not change a row (reading all chunks gives the rows of reading the file)."""
    framing = view.framing(start, view.size, verify_digest=True)
    if not framing.complete:
        why = "record is cut short"  # (its block runs past the end of the file)
    elif framing.digest_ok is False:
        why = "block digest does not match"
    else:
        why = "its declared block runs over the next record"
    return f"{error}; {why}" if error else why


class _BrokenStream(Exception):
    """Raised by a visitor when a record's payload cannot be read: stop this iterator."""


class _Unreadable(Exception):
    """Raised while classifying a record that cannot be read although the stream around it
    is sound (no Content-Length, an HTTP head that does not parse, a body that does not
    decode): the record becomes a read_error row with this message, the walk goes on."""


# --- The bytes being walked: a file, or a decompressed copy of it -------------------------


@dataclass(frozen=True)
class _Framing:
    """What a record's own header says about its extent, checked against the bytes."""

    complete: bool  # header parsed and the declared block fits before the limit
    end: int  # where the record (and its trailing CRLF CRLF) ends, if complete
    digest_ok: bool | None  # WARC-Block-Digest verdict; None = not checked or no digest


_INCOMPLETE = _Framing(complete=False, end=0, digest_ok=None)


class _View:
    """A seekable stream of WARC records whose positions become row offsets.

    `gzip_members` views are files with one gzip member per record (positions are member
    starts in the compressed file); other views are uncompressed bytes.
    """

    def __init__(
        self, file: BinaryIO, size: int, *, gzip_members: bool = False, copy: bool = False
    ):
        self.file = file
        self.size = size
        self.gzip_members = gzip_members
        self.copy = copy  # a decompressed temporary copy: only readable from its start

    def __enter__(self) -> _View:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()

    def read_at(self, position: int, size: int) -> bytes:
        self.file.seek(position)
        return self.file.read(size)

    def starts_record(self, position: int, record_id: str | None) -> bool:
        """Does a fresh iterator started here return this record first? (chunk boundaries)"""
        if self.copy:
            return False  # each chunk would have to decompress the file up to its start
        self.file.seek(position)
        try:
            record = next(iter(ArchiveIterator(self.file, parse_http=False)))
        except (StopIteration, *_READ_ERRORS):
            return False
        return record.stream_pos == position and record.record_id == record_id

    def is_blank(self, start: int, stop: int) -> bool:
        if stop - start > _BLANK_MAX:
            return False
        return not self.read_at(start, stop - start).strip()

    def passed_over_record(self, previous: int, length: int, record: WarcRecord) -> bool:
        """Did FastWARC pass over a record between the record at `previous` (Content-Length
        `length`) and `record`, the one it returned next? Uncompressed files only (a gzip
        member per record frames each record by itself).

        FastWARC frames a record by its header's first blank line and its Content-Length.
        When damage moves that blank line (a NUL in it: the HTTP head becomes header lines)
        or shortens the block (bytes deleted), the declared block runs over the next
        record, and after it FastWARC skips to the next "WARC/" line that parses, without
        an error (bench/fuzz.py, rounds 1650 and 1940: the records in between were lost).
        Evidence: a record start after the declared block, before `record`; or one inside
        it when bytes that are not blank follow the block (FastWARC skipped them), or when
        the block fails its WARC-Block-Digest. Otherwise a record start inside a block may
        be payload (a page about WARC files)."""
        if self.gzip_members:
            return False
        resume_at = self.file.tell()  # FastWARC goes on reading the same file object
        try:
            return self._passed_over_record(previous, length, record.stream_pos)
        finally:
            self.file.seek(resume_at)

    def _passed_over_record(self, previous: int, length: int, start: int) -> bool:
        head = self.read_at(previous, min(_HEADER_MAX, start - previous))
        blank = _BLANK_LINE.search(head)
        if blank is None:
            return False
        block_start = previous + blank.end()
        block_end = block_start + length
        # From block_end - 1 when the block is empty: a record may start right at its end.
        first = self.next_record_start(min(block_start, block_end - 1), start)
        if first is None:
            return False
        if first >= block_end:
            return True  # a record start after the block
        # A record start inside the block: payload, unless the block does not end cleanly
        # (FastWARC skipped bytes after it, a record start among them or not) or fails its
        # digest.
        if block_end < start and not self.is_blank(block_end, start):
            return True
        digest = _BLOCK_DIGEST.search(head, 0, blank.start() + 2)
        return (
            bool(digest) and self.digest_matches(digest.group(1), block_start, block_end) is False
        )

    def next_record_start(self, after: int, limit: int) -> int | None:
        """The first position in (after, limit) where a WARC record starts, or None."""
        if self.gzip_members:
            return self._next_member_start(after, limit)
        line_start = self._next_line_start(after, limit)
        glued = self._next_glued_start(after + 1, limit if line_start is None else line_start)
        return line_start if glued is None else glued

    def _next_line_start(self, after: int, limit: int) -> int | None:
        """A record starts right after a "\n" that is followed by "WARC/<digit>"; the "\n"
        may be the byte at `after` itself."""
        position = after
        while position < limit:
            block = self.read_at(position, min(_SEARCH_BLOCK, limit - position))
            match = _RECORD_LINE.search(block)
            if match:
                start = position + match.start() + 1
                return start if start < limit else None
            if len(block) < _SEARCH_BLOCK:
                return None
            position += len(block) - 6  # overlap: a match may straddle two blocks
        return None

    def _next_glued_start(self, position: int, stop: int) -> int | None:
        """A record whose "WARC/1.x" line follows junk without a newline ("\x00WARC/1.0"),
        before `stop`. Accepted only if its whole header parses (found by bench/fuzz.py:
        such a record used to vanish into the junk's read-error row)."""
        while position < stop:
            block = self.read_at(position, min(_SEARCH_BLOCK, stop - position))
            for match in _RECORD_VERSION.finditer(block):
                start = position + match.start()
                if _parse_header(self.read_at(start, min(_HEADER_MAX, stop - start))):
                    return start
            if len(block) < _SEARCH_BLOCK:
                return None
            position += len(block) - 10  # overlap: a match may straddle two blocks
        return None

    def _next_member_start(self, after: int, limit: int) -> int | None:
        """The next gzip member that decompresses to "WARC/" (magic bytes also occur at
        random inside compressed data, about once per 16 MB)."""
        position = after + 1
        while True:
            candidate = _find_member_start(self.file, position, limit)
            if candidate is None or _opens_with_warc(self.read_at(candidate, 4096)):
                return candidate
            position = candidate + 1

    def framing(self, start: int, limit: int, verify_digest: bool) -> _Framing:
        """Check the record at `start` against its own header (and digest if asked)."""
        if self.gzip_members:
            return self._member_framing(start, limit, verify_digest)
        head = self.read_at(start, min(_HEADER_MAX, limit - start))
        header = _parse_header(head)
        if header is None:
            return _INCOMPLETE
        header_length, content_length, digest = header
        block_end = start + header_length + content_length
        if block_end > limit:
            return _INCOMPLETE
        trailer = self.read_at(block_end, min(4, limit - block_end))
        end = block_end + len(trailer) - len(trailer.lstrip(b"\r\n"))
        digest_ok = None
        if verify_digest and digest:
            digest_ok = self.digest_matches(digest, start + header_length, block_end)
        return _Framing(True, end, digest_ok)

    def digest_matches(self, digest: bytes, start: int, stop: int) -> bool | None:
        """Whether the bytes in [start, stop) have this WARC digest; None for an algorithm
        hashlib does not know."""
        hasher = _digest_hasher(digest)
        if hasher is None:
            return None
        for piece in self._pieces(start, stop):
            hasher.update(piece)
        return _digest_matches(digest, hasher)

    def _pieces(self, start: int, stop: int) -> Iterator[bytes]:
        self.file.seek(start)
        while start < stop:
            piece = self.file.read(min(_SEARCH_BLOCK, stop - start))
            if not piece:
                return
            start += len(piece)
            yield piece

    def _member_framing(self, start: int, limit: int, verify_digest: bool) -> _Framing:
        """The gzip member at `start` must hold exactly one whole record."""
        member = _GzipMember(self.file, start, limit)
        head = b""
        header = None
        hasher = None
        seen = 0  # decompressed bytes so far
        for piece in member:
            if header is None:
                head += piece
                header = _parse_header(head[:_HEADER_MAX])
                if header is None:
                    if len(head) >= _HEADER_MAX:
                        return _INCOMPLETE
                    continue
                header_length, content_length, digest = header
                if verify_digest and digest:
                    hasher = _digest_hasher(digest)
                piece, seen = head, 0
            if hasher is not None:
                block_start, block_end = header_length, header_length + content_length
                low, high = max(block_start - seen, 0), max(block_end - seen, 0)
                hasher.update(piece[low:high])
            seen += len(piece)
        if header is None or member.end is None:
            return _INCOMPLETE
        header_length, content_length, _ = header
        record_length = header_length + content_length
        # The member may end with the record's trailing CRLF CRLF, nothing else.
        if not record_length <= seen <= record_length + 4:
            return _INCOMPLETE
        digest_ok = _digest_matches(header[2], hasher) if hasher is not None else None
        return _Framing(True, member.end, digest_ok)


class _GzipMember:
    """Decompressed pieces of the gzip member at `start`; then `.end` = where it ended.

    `.end` stays None if the member is corrupt or cut off before `limit`.
    """

    def __init__(self, file: BinaryIO, start: int, limit: int):
        self.file, self.start, self.limit = file, start, limit
        self.end: int | None = None

    def __iter__(self) -> Iterator[bytes]:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper required
        position = self.start
        while position < self.limit:
            self.file.seek(position)
            data = self.file.read(min(_SEARCH_BLOCK, self.limit - position))
            if not data:
                return
            pending = data
            while pending:
                try:
                    piece = inflater.decompress(pending, _INFLATE_STEP)
                except zlib.error:
                    return
                if piece:
                    yield piece
                if inflater.eof:
                    self.end = position + len(data) - len(inflater.unused_data)
                    return
                pending = inflater.unconsumed_tail
            position += len(data)


def _opens_with_warc(compressed: bytes) -> bool:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return inflater.decompress(compressed, 8).startswith(b"WARC/")
    except zlib.error:
        return False


def _parse_header(head: bytes) -> tuple[int, int, bytes | None] | None:
    """(header length incl. blank line, Content-Length, block digest) of a WARC header."""
    if not head.startswith(b"WARC/"):
        return None
    header_end = head.find(b"\r\n\r\n")
    if header_end < 0:
        return None
    fields = head[: header_end + 2]
    if _RECORD_VERSION.search(fields, 1):
        return None  # a cut header running into the next record's: not one header
    length = _CONTENT_LENGTH.search(fields)
    if length is None:
        return None
    digest = _BLOCK_DIGEST.search(fields)
    return header_end + 4, int(length.group(1)), digest.group(1) if digest else None


def _digest_hasher(digest: bytes):  # -> hashlib hash object or None
    algorithm = digest.split(b":", 1)[0].decode("ascii", "replace").lower().replace("-", "")
    try:
        return hashlib.new(algorithm)
    except ValueError:
        return None


def _digest_matches(digest: bytes, hasher) -> bool:
    """WARC digests are "algorithm:value", value in base32 (usual) or hex."""
    value = digest.split(b":", 1)[-1].strip()
    raw = hasher.digest()
    base32 = base64.b32encode(raw).rstrip(b"=")
    return value.upper().rstrip(b"=") == base32 or value.lower() == binascii.hexlify(raw)


def _open_view(source: str) -> _View:
    """Open `source` and pick how to walk it (see the module docstring)."""
    handle = open_binary(source)
    try:
        size = file_size(source)
        first_member = _first_member_start(handle, size)
        if first_member is None:
            return _View(handle, size)
        if _one_record_per_member(handle, first_member, size):
            return _View(handle, size, gzip_members=True)
        copy = _gunzip_to_tempfile(handle, size)
        handle.close()
        copy.seek(0, io.SEEK_END)
        return _View(copy, copy.tell(), copy=True)
    except BaseException:
        handle.close()
        raise


def _first_member_start(handle: BinaryIO, size: int) -> int | None:
    """Where the first gzip member starts, or None for an uncompressed (or non-gzip) file.

    Normally 0 or None; junk before the first member (a damaged file) is looked past for
    up to 1 MB, but only if the file does not start with a whole uncompressed WARC header.
    A bare "WARC/" line in front of gzip members is junk too, and so are gzip magic bytes
    in front of an uncompressed WARC (both found by bench/fuzz.py: the file was taken for
    the wrong kind and every record became one read error).
    """
    handle.seek(0)
    head = handle.read(5)
    if head.startswith(GZIP_MAGIC):
        handle.seek(0)
        if _opens_with_warc(handle.read(4096)):
            return 0
        # Two junk bytes that look like gzip in front of a plain WARC (bench/fuzz.py), or a
        # damaged first member: decided by the search below, as for other junk.
    if head.startswith(b"WARC/"):
        handle.seek(0)
        if _parse_header(handle.read(_HEADER_MAX)) is not None:
            return None
    position = 0
    while (candidate := _find_member_start(handle, position, min(size, _SEARCH_BLOCK))) is not None:
        handle.seek(candidate)
        if _opens_with_warc(handle.read(4096)):
            return candidate
        position = candidate + 1
    return None


def _one_record_per_member(handle: BinaryIO, start: int, size: int) -> bool:
    """Does the first gzip member hold exactly one WARC record? (Common Crawl: yes.)"""
    member = _GzipMember(handle, start, size)
    head = b""
    total = 0
    for piece in member:
        if len(head) < _HEADER_MAX:
            head += piece[: _HEADER_MAX - len(head)]
        total += len(piece)
        header = _parse_header(head)
        if header is not None and total > header[0] + header[1] + 4:
            return False  # more than one record in this member
        if total > _PROBE_MAX:
            return False
    header = _parse_header(head)
    if header is None or member.end is None:
        return False
    return total >= header[0] + header[1]


def _gunzip_to_tempfile(handle: BinaryIO, size: int) -> BinaryIO:
    """Decompress every readable gzip member into a temporary file, skipping bad bytes.

    A corrupt or cut-off member leaves a record cut short in the copy, which the walk then
    reports like any other truncated record.
    """
    copy = tempfile.TemporaryFile(prefix="crawlmill-gunzip-")  # noqa: SIM115 (returned open)
    position = 0
    while position < size:
        member = _GzipMember(handle, position, size)
        for piece in member:
            copy.write(piece)
        if member.end is not None and member.end > position:
            position = member.end
            handle.seek(position)
            if handle.read(3) == GZIP_MEMBER_START:
                continue
        # Garbage, corruption or the end: go on at the next member start, if any.
        position = _find_member_start(handle, position + 1, size)
        if position is None:
            break
    copy.flush()
    return copy


def _find_member_start(handle: BinaryIO, position: int, limit: int) -> int | None:
    """The first gzip magic at or after `position` and before `limit`, or None."""
    while position < limit:
        handle.seek(position)
        block = handle.read(min(_SEARCH_BLOCK, limit - position))
        index = block.find(GZIP_MEMBER_START)
        if index >= 0:
            return position + index if position + index < limit else None
        if len(block) < _SEARCH_BLOCK:
            return None
        position += len(block) - 2  # overlap: the magic may straddle two blocks
    return None


# --- Turning records into rows -----------------------------------------------------------


class _Rows:
    """Column lists for one chunk; `table()` builds the Arrow table once at the end."""

    def __init__(self, source: str, max_payload_bytes: int):
        self.source = source
        self.max_payload_bytes = max_payload_bytes
        self.ids: list[str] = []
        self.urls: list[str | None] = []
        self.dates: list[str | None] = []
        self.offsets: list[int] = []
        self.types: list[str | None] = []
        self.statuses: list[int | None] = []
        self.content_types: list[str | None] = []
        self.payloads: list[bytes | None] = []
        self.reasons: list[str | None] = []
        self.details: list[str | None] = []  # a read_error's message (schema.DROP_DETAIL)

    def add_record(self, record: WarcRecord) -> None:
        offset = record.stream_pos
        headers = record.headers
        if any(len(headers.get_multiple(name)) > 1 for name in _SINGLE_FIELDS):
            # Two headers in one (see _SINGLE_FIELDS): a row for the cut record, then the
            # walk goes on at the next record's start. Its fields come first, so of two
            # ids the first is its own; a single id is the next record's (the cut took
            # the record's own): the row is then named by its offset.
            ids = headers.get_multiple("WARC-Record-ID")
            row_id = ids[0] if len(ids) > 1 else f"{self.source}@{offset}"
            message = "record header cut short, running into the next record's"
            self._append(
                row_id, None, None, offset, None, None, None, None, Reason.READ_ERROR, message
            )
            raise _BrokenStream(message)
        row_id = record.record_id or f"{self.source}@{offset}"
        url = _clean_uri(headers.get("WARC-Target-URI"))
        date = headers.get("WARC-Date")
        # A token (WARC-Type's grammar); a header mangled into one line (LF-only line ends)
        # would otherwise make the rest of it the type.
        record_type = (headers.get("WARC-Type") or str(record.record_type)).split(None, 1)
        record_type = record_type[0].lower() if record_type else ""
        try:
            classified = _classify(record, self.max_payload_bytes)
        except (_Unreadable, _BrokenStream) as exc:
            self._append(
                row_id,
                url,
                date,
                offset,
                record_type,
                None,
                None,
                None,
                Reason.READ_ERROR,
                str(exc),
            )
            if isinstance(exc, _BrokenStream):
                raise  # the walk reports it (and blames this row) once it recovers
            return  # this record only: the walk goes on
        self._append(row_id, url, date, offset, record_type, *classified)

    def _append(
        self,
        row_id: str,
        url: str | None,
        date: str | None,
        offset: int,
        record_type: str | None,
        status: int | None,
        content_type: str | None,
        payload: bytes | None,
        reason: str | None,
        detail: str | None = None,
    ) -> None:
        self.ids.append(row_id)
        self.urls.append(url)
        self.dates.append(date)
        self.offsets.append(offset)
        self.types.append(record_type)
        self.statuses.append(status)
        self.content_types.append(content_type)
        self.payloads.append(payload)
        self.reasons.append(reason)
        self.details.append(detail)

    def add_problem(self, problem: _Problem) -> None:
        self._log(problem.offset, problem.message)
        if problem.blame_last_record:
            self.reasons[-1] = Reason.READ_ERROR
            self.payloads[-1] = None
            self.details[-1] = problem.message
        else:
            self.add_gap(problem.offset, problem.message)

    def add_gap(self, offset: int, message: str) -> None:
        """A row for bytes that are no record: id "<source>@<offset>", no record type."""
        row_id = f"{self.source}@{offset}"
        self._append(row_id, None, None, offset, None, None, None, None, Reason.READ_ERROR, message)

    def _log(self, offset: int, message: str) -> None:
        log.warning("%s@%d: read error: %s", self.source, offset, message)

    def table(self) -> pa.Table:
        n = len(self.ids)
        stages = [None if reason is None else STAGE for reason in self.reasons]
        return pa.table(
            {
                S.ID: self.ids,
                S.URL: self.urls,
                S.CRAWL_DATE: self.dates,
                S.SOURCE: [self.source] * n,
                S.OFFSET: self.offsets,
                S.RECORD_TYPE: self.types,
                S.HTTP_STATUS: self.statuses,
                S.CONTENT_TYPE: self.content_types,
                S.PAYLOAD: _binary_array(self.payloads),
                S.DROP_REASON: self.reasons,
                S.DROP_STAGE: stages,
                S.DROP_DETAIL: self.details,
            },
            schema=S.RAW_SCHEMA,
        )


def _binary_array(values: list[bytes | None]) -> pa.Array:
    """large_binary array built from its buffers: one join instead of a copy per value.

    pa.array() on a list of bytes runs at ~0.7 GB/s here; this at ~4 GB/s, which matters
    when a chunk of 200 pages carries ~16 MB of HTML.
    """
    offsets = [0]
    total = 0
    for value in values:
        total += 0 if value is None else len(value)
        offsets.append(total)
    valid = [value is not None for value in values]
    data = b"".join(value for value in values if value is not None)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(values),
        [
            pa.array(valid, pa.bool_()).buffers()[1],
            pa.array(offsets, pa.int64()).buffers()[1],
            pa.py_buffer(data),
        ],
        null_count=valid.count(False),
    )


def _clean_uri(uri: str | None) -> str | None:
    """WARC 1.0's grammar showed "<uri>"; wget writes the brackets. Strip them."""
    if uri is None:
        return None
    uri = uri.strip()
    if uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1].strip()
    return uri


# (http_status, content_type, payload, drop_reason) of one record.
_Classified = tuple[int | None, str | None, bytes | None, str | None]


def _classify(record: WarcRecord, max_bytes: int) -> _Classified:
    declared_length = record.headers.get("Content-Length")
    if declared_length is None or not declared_length.strip().isdigit():
        raise _Unreadable("no Content-Length")  # header cut off or not a WARC header
    record_type = record.record_type
    if record_type == WarcRecordType.response:
        if _holds_http(record):
            return _classify_http_response(record, max_bytes)
        content_type = record.headers.get("Content-Type")
        payload, reason = _html_payload(record, content_type, None, max_bytes)
        return None, content_type, payload, reason
    if record_type == WarcRecordType.resource:
        content_type = record.headers.get("Content-Type")
        payload, reason = _html_payload(record, content_type, None, max_bytes)
        if reason == Reason.NOT_HTML:
            reason = Reason.NOT_A_DOCUMENT  # wget's logs and manifests, images ...
        return None, content_type, payload, reason
    if record_type == WarcRecordType.conversion:
        if record.content_length > max_bytes:
            return None, None, None, Reason.HTML_TOO_LARGE
        payload = _read(record)
        if len(payload) < record.content_length:
            raise _Unreadable("record is cut short")
        return None, None, payload, None
    if record_type == WarcRecordType.revisit:
        return None, None, None, Reason.REVISIT
    return None, None, None, Reason.NOT_A_DOCUMENT


def _holds_http(record: WarcRecord) -> bool:
    """FastWARC's is_http wants "application/http" exactly; crawlers also write it in
    capitals or leave the WARC Content-Type out (then it is HTTP in practice)."""
    if record.is_http:
        return True
    content_type = (record.headers.get("Content-Type") or "").strip().lower()
    if content_type and not content_type.startswith("application/http"):
        return False
    record.is_http = True
    return True


def _classify_http_response(record: WarcRecord, max_bytes: int) -> _Classified:
    try:
        # quirks_mode: accept LF-only HTTP heads (ClueWeb09); without it the whole head of
        # such a page ends up in the body and its Content-Type is lost.
        record.parse_http(quirks_mode=True)
    except _READ_ERRORS as exc:
        raise _Unreadable(f"HTTP head does not parse: {exc or type(exc).__name__}") from None
    http = record.http_headers
    status = http.status_code
    content_type = http.get("Content-Type")
    if status is None:
        # No status line where the block should start: its framing may be off (bytes
        # deleted before it; bench/fuzz.py round 440 lost the record its block then ran
        # over). The walk checks it as after a parse error, blaming this record.
        raise _BrokenStream("no HTTP status line at the start of the block")
    if status != 200:
        return status, content_type, None, Reason.HTTP_STATUS
    payload, reason = _html_payload(record, content_type, http, max_bytes)
    return status, content_type, payload, reason


def _html_payload(
    record: WarcRecord, content_type: str | None, http: HeaderMap | None, max_bytes: int
) -> tuple[bytes | None, str | None]:
    """(payload, None) for an HTML body within the size limit, else (None, reason)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in HTML_TYPES:
        must_sniff = False
    elif media_type in GENERIC_TYPES:
        must_sniff = True
    else:
        return None, Reason.NOT_HTML
    chunked = http is not None and "chunked" in (http.get("Transfer-Encoding") or "").lower()
    codings = _content_codings(http.get("Content-Encoding") if http is not None else None)
    encoded = chunked or bool(codings)
    length = record.content_length  # of the body (FastWARC subtracts the HTTP head)

    head = b""
    if must_sniff and not encoded:
        head = _read(record, SNIFF_BYTES)
        if not looks_like_html(head):
            return None, Reason.NOT_HTML
    if length > max_bytes:
        return None, Reason.HTML_TOO_LARGE
    body = head + _read(record)
    if len(body) < length:
        raise _Unreadable("record is cut short")
    if encoded:
        body, reason = _undo_http_encodings(body, chunked, codings, max_bytes)
        if reason is not None:
            return None, reason
        if must_sniff and not looks_like_html(body[:SNIFF_BYTES]):
            return None, Reason.NOT_HTML
    return body, None


def _read(record: WarcRecord, size: int = -1) -> bytes:
    """Read the payload; a stream error means the rest of the file must be re-entered."""
    try:
        if size < 0:
            return record.reader.read()
        pieces, wanted = [], size
        while wanted > 0:
            piece = record.reader.read(wanted)
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return b"".join(pieces)
    except _READ_ERRORS as exc:
        raise _BrokenStream(f"payload unreadable: {exc}") from None


def looks_like_html(head: bytes) -> bool:
    """Sniff: after a BOM and whitespace the payload opens a tag, and an HTML tag is near."""
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head.startswith(b"<"):
        return False
    head = head[:SNIFF_BYTES].lower()
    return any(marker in head for marker in _HTML_MARKERS)


def _content_codings(header: str | None) -> list[str]:
    """Content-Encoding values, in the order they were applied, without no-ops."""
    if not header:
        return []
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c not in ("", "identity", "none")]


def _undo_http_encodings(
    body: bytes, chunked: bool, codings: list[str], max_bytes: int
) -> tuple[bytes | None, str | None]:
    """Undo transfer and content encodings still applied to an HTTP body.

    Returns (body, None) or (None, HTML_TOO_LARGE); raises _Unreadable for a coding that
    does not decode. Headers that lie (the bytes are already plain) are ignored; a cut-off
    compressed or chunked body keeps what could be decoded.
    """
    if chunked:
        body = _dechunk(body)
    for coding in reversed(codings):
        if _looks_like_markup(body):
            break  # already decoded by the crawler, whatever the header says
        if coding in ("gzip", "x-gzip", "deflate"):
            decoded = _inflate_body(body, max_bytes, raw_deflate_too=coding == "deflate")
        elif coding == "br":
            try:
                decoded = BrotliReader(io.BytesIO(body)).read(max_bytes + 1)
            except OSError:
                decoded = None
        else:  # zstd, compress, nonsense
            raise _Unreadable(f"Content-Encoding {coding!r} is not supported")
        if decoded is None:
            raise _Unreadable(f"body does not decode as Content-Encoding {coding}")
        if len(decoded) > max_bytes:
            return None, Reason.HTML_TOO_LARGE
        body = decoded
    return body, None


def _looks_like_markup(body: bytes) -> bool:
    return body.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"<"


def _inflate_body(body: bytes, max_bytes: int, raw_deflate_too: bool) -> bytes | None:
    """gzip or zlib (and raw deflate for "deflate": servers mix them up), <= max_bytes + 1.

    A cut-off stream yields what it holds; corrupt data yields None.
    """
    windows = [32 + zlib.MAX_WBITS]  # 32: detect a gzip or zlib header
    if raw_deflate_too:
        windows.append(-zlib.MAX_WBITS)
    for window_bits in windows:
        try:
            return zlib.decompressobj(window_bits).decompress(body, max_bytes + 1)
        except zlib.error:
            continue
    return None


def _dechunk(body: bytes) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding; a body that is not chunked is returned as is."""
    pieces = []
    position = 0
    while position < len(body):
        line_end = body.find(b"\n", position)
        size_field = body[position:line_end].split(b";", 1)[0].strip() if line_end > 0 else b""
        try:
            size = int(size_field, 16)
        except ValueError:
            if not pieces:
                return body  # never was chunked: the header lies
            break  # cut off or damaged: keep the chunks decoded so far
        if size == 0:
            break
        start = line_end + 1
        pieces.append(body[start : start + size])
        position = start + size
        position += 2 if body[position : position + 2] == b"\r\n" else 1
    return b"".join(pieces)
