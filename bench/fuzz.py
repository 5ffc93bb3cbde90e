"""Fuzz the WARC reader and the extraction stage for a bounded time (`make fuzz`).

    python bench/fuzz.py --seconds 120            # both targets, half the time each
    python bench/fuzz.py --target warc --seconds 60 --first-round 1000

Why: bad input must never kill a run nor vanish (docs/RELIABILITY.md). The hand-written
bad-input corpus (tests/pipeline/test_bad_input.py) covers the damage we thought of; this
covers the damage we did not, with hypothesis generating and shrinking the cases.

**WARC target.** Seeds are real files: tests/data/sample, plus ../shared/data/warc when
present, each cut to a few records, in its own form (one gzip member per record, or plain)
and decompressed. One to three mutations are applied: truncation, garbage insertion, byte
overwrites (inside a gzip member: member damage), deletions, WARC header damage (version
line, a dropped line, LF-only lines, a 100 KB line, NUL bytes) and Content-Length changes.
`scan_chunks`, `read_chunk` on every chunk and `read_file` then run, and must hold:

1. no exception escapes, no case runs longer than `--case-seconds` (a hang);
2. the chunks together give exactly the rows of the whole-file read (the reader's contract);
3. accounting: every row is kept (alive, with a payload) or carries a known drop reason,
   with a unique offset: read = ok + counted errors;
4. nothing good is lost: after one local mutation (truncate, insert, overwrite, delete,
   header damage, a smaller Content-Length) every seed record that does not overlap the
   damaged bytes comes back with the same id, drop reason and payload.

**HTML target.** Generated pages go through the real `ExtractStage` (its child process,
its CPU-time limit): deep nesting (to 20,000 levels), huge attributes (to 2 MB), text in
GBK, Shift-JIS, cp1251, Big5, UTF-16 ... declared right, wrong or not at all, NUL bytes,
random bytes. Invariant: one output row per input row, in order, each either with text or
with an extraction drop reason; no hang.

Every case runs in a sandbox child process (a plain subprocess over pipes), so a crash in
C code or a hang is observed, not suffered: the child is killed and the case reported.
Cases come in hypothesis rounds (round k = hypothesis seed k, reproducible with
`--first-round k`); a failing round is shrunk to a minimal case, which hypothesis prints.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import logging
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "tests" / "data" / "sample"
SHARED_WARC = REPO.parent / "shared" / "data" / "warc"

MAX_PAYLOAD = 5_000_000
SEED_RECORDS = 6  # records per seed slice: small cases, ~10-50 ms each
SEED_MAX_BYTES = 2 << 20  # seed files above this are skipped
CASE_SECONDS = 60.0  # wall-clock bound per case; generous: the machine is shared

EXTRACT_REASONS = {"no_text", "undecodable", "extract_timeout", "extract_error"}


# --- Seeds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A few real records as bytes; `extents` = (start, end) of each record in `data`."""

    name: str
    data: bytes
    plain: bool  # uncompressed WARC bytes (header mutations apply)
    extents: tuple[tuple[int, int], ...]


def seed_files(shared: bool = True) -> list[Path]:
    files = sorted(SAMPLE_DIR.glob("*.warc*"))
    if shared and SHARED_WARC.is_dir():
        files += sorted(
            p
            for p in SHARED_WARC.rglob("*")
            if p.is_file() and re.search(r"\.(warc|wet)", p.name) and not p.name.endswith(".wat")
        )
    return [p for p in files if p.stat().st_size <= SEED_MAX_BYTES]


def load_seeds(files: list[Path]) -> list[Seed]:
    """Each file -> up to two seeds: its first records as stored, and decompressed."""
    from pipeline.warc import read_file

    seeds = []
    for path in files:
        data = path.read_bytes()
        forms = [("", data)]
        if data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):  # damaged gzip: keep it as stored
                forms.append((":plain", gzip.decompress(data)))
        for suffix, blob in forms:
            with tempfile.NamedTemporaryFile(suffix=".warc") as tmp:
                tmp.write(blob)
                tmp.flush()
                offsets = read_file(tmp.name, MAX_PAYLOAD)["offset"].to_pylist()
            marker = b"\x1f\x8b" if blob[:2] == b"\x1f\x8b" else b"WARC/"
            # addressable: every row starts where its offset says (not a decompressed copy)
            if not offsets or any(blob[o : o + len(marker)] != marker for o in offsets):
                continue
            cut = offsets[SEED_RECORDS] if len(offsets) > SEED_RECORDS else len(blob)
            kept = [o for o in offsets if o < cut]
            extents = tuple(zip(kept, [*kept[1:], cut], strict=True))
            plain = marker == b"WARC/"
            seeds.append(Seed(path.name + suffix, blob[:cut], plain, extents))
    return seeds


# --- Mutations ------------------------------------------------------------------------------


def apply_mutation(seed: Seed, data: bytes, mutation: tuple) -> tuple[bytes, tuple | None]:
    """Apply one mutation; return the new bytes and the damaged byte range of the seed
    (start, end, shift of the bytes after it), or None when no local range applies."""
    kind = mutation[0]
    if kind == "truncate":
        pos = mutation[1] % (len(data) + 1)
        return data[:pos], (pos, len(seed.data), 0)
    if kind == "insert":
        pos, garbage = mutation[1] % (len(data) + 1), mutation[2]
        return data[:pos] + garbage + data[pos:], (pos, pos, len(garbage))
    if kind == "overwrite":
        pos, junk = mutation[1] % max(len(data), 1), mutation[2]
        junk = junk[: len(data) - pos]
        return data[:pos] + junk + data[pos + len(junk) :], (pos, pos + len(junk), 0)
    if kind == "delete":
        pos = mutation[1] % max(len(data), 1)
        size = min(mutation[2], len(data) - pos)
        return data[:pos] + data[pos + size :], (pos, pos + size, -size)
    # header mutations: on one record's WARC header (plain seeds only)
    start, end = seed.extents[mutation[1] % len(seed.extents)]
    head_end = data.find(b"\r\n\r\n", start, end)
    if head_end < 0:
        return data, None
    head = data[start:head_end]
    if kind == "content_length":
        match = re.search(rb"(?im)^content-length:[ \t]*([0-9]+)", head)
        if match is None:
            return data, None
        old, change = int(match.group(1)), mutation[2]
        value = str(max(0, old + change)).encode() if isinstance(change, int) else change
        new_head = head[: match.start(1)] + value + head[match.end(1) :]
        # A longer declared length swallows the next records' bytes: without a digest
        # check no reader can tell, so invariant 4 is not asked of it.
        grows = value.isdigit() and int(value) > old
        damaged = None if grows else (start, end, len(new_head) - len(head))
        return data[:start] + new_head + data[head_end:], damaged
    op = mutation[2]
    if op == "version":
        new_head = b"WRAC/9.9" + head[head.find(b"\r\n") :]
    elif op == "drop_line":
        lines = head.split(b"\r\n")
        if len(lines) > 1:
            del lines[1 + mutation[1] % (len(lines) - 1)]
        new_head = b"\r\n".join(lines)
    elif op == "lf_only":
        new_head = head.replace(b"\r\n", b"\n")
    elif op == "long_line":
        new_head = head + b"\r\nX-Fuzz: " + b"a" * 100_000
    else:  # "nul"
        new_head = head.replace(b": ", b": \x00", 2)
    return data[:start] + new_head + data[head_end:], (start, end, len(new_head) - len(head))


def warc_case_strategy(seeds: list[Seed]):
    """hypothesis strategy: (seed index, [mutation, ...], chunk_records)."""
    from hypothesis import strategies as st

    position = st.integers(0, 1 << 24)
    garbage = st.one_of(
        st.binary(min_size=1, max_size=64),
        st.sampled_from([b"\r\n", b"\x1f\x8b\x08", b"WARC/1.0\r\n", b"\x00" * 512]),
    )
    byte_mutation = st.one_of(
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("insert"), position, garbage),
        st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=32)),
        st.tuples(st.just("delete"), position, st.integers(1, 4096)),
    )
    header_mutation = st.one_of(
        st.tuples(
            st.just("content_length"),
            st.integers(0, 63),
            st.one_of(
                st.integers(-5000, 5000),
                st.sampled_from([b"", b"-5", b"abc", b"99999999999999999999", b"1e3"]),
            ),
        ),
        st.tuples(
            st.just("header"),
            st.integers(0, 63),
            st.sampled_from(["version", "drop_line", "lf_only", "long_line", "nul"]),
        ),
    )

    @st.composite
    def case(draw):
        index = draw(st.integers(0, len(seeds) - 1))
        kinds = st.one_of(byte_mutation, header_mutation) if seeds[index].plain else byte_mutation
        mutations = draw(st.lists(kinds, min_size=1, max_size=3))
        chunk_records = draw(st.sampled_from([1, 2, 3, 100]))
        return index, mutations, chunk_records

    return case()


def html_case_strategy():
    """hypothesis strategy: a list of (payload bytes, HTTP content type) pages."""
    from hypothesis import strategies as st

    charsets = ["utf-8", "gbk", "shift_jis", "cp1251", "big5", "utf-16", "latin-1", "euc-kr"]
    samples = [
        "Deutsch ß ä ö",
        "中文网页的正文内容",
        "日本語のテキスト",
        "Русский текст",
        "ascii text",
    ]

    @st.composite
    def page(draw):
        shape = draw(st.sampled_from(["nested", "attribute", "charset", "random", "siblings"]))
        text = draw(st.sampled_from(samples)) * draw(st.integers(1, 50))
        if shape == "nested":
            depth = draw(st.integers(1, 20_000))
            tag = draw(st.sampled_from(["div", "span", "b", "table", "li", "p", "a", "font"]))
            closed = draw(st.booleans())
            html = f"<{tag}>" * depth + text + (f"</{tag}>" * depth if closed else "")
        elif shape == "attribute":
            size = draw(st.integers(1, 2_000_000))
            html = f"<div data-x=\"{'x' * size}\" class='{'y' * (size // 7)}'>{text}</div>"
        elif shape == "siblings":
            html = "<p>" + "</p><p>".join([text] * draw(st.integers(1, 5_000))) + "</p>"
        else:
            html = f"<p>{text}</p>"
        if shape == "random":
            body = draw(st.binary(max_size=4096))
        else:
            actual = draw(st.sampled_from(charsets))
            declared = draw(st.sampled_from([None, "bogus-charset", *charsets]))
            meta = f'<meta charset="{declared}">' if declared else ""
            document = f"<!doctype html><html><head>{meta}</head><body>{html}</body></html>"
            body = document.encode(actual, errors="replace")
            if draw(st.booleans()):
                position = draw(st.integers(0, len(body)))
                body = body[:position] + b"\x00" * draw(st.integers(1, 64)) + body[position:]
        header_charset = draw(st.sampled_from([None, "utf-8", "gbk", "windows-1251", "nonsense"]))
        content_type = "text/html" + (f"; charset={header_charset}" if header_charset else "")
        return body, content_type

    return st.lists(page(), min_size=1, max_size=4)


# --- Targets and invariants (these run in the sandbox child) -------------------------------


class InvariantError(AssertionError):
    """A fuzz case broke one of the invariants in this module's docstring."""


def row_key(row: dict, offset: int | None = None) -> tuple:
    """What must survive of a record: id, drop reason, payload. A record without a
    WARC-Record-ID is named "<source>@<offset>"; it is compared by (shifted) offset."""
    payload = row["payload"]
    digest = None if payload is None else hashlib.sha1(payload).hexdigest()
    name = row["id"]
    if name == f"{row['source']}@{row['offset']}":
        name = f"@{row['offset'] if offset is None else offset}"
    return name, row["drop_reason"], digest


def check_warc_rows(chunked, whole, size: int) -> None:
    """Invariants 2 and 3 on the tables read from one mutated file."""
    from pipeline.schema import Reason

    if not chunked.equals(whole):
        raise InvariantError(
            f"chunked read ({chunked.num_rows} rows) differs from whole-file read "
            f"({whole.num_rows} rows)"
        )
    known = {
        Reason.NOT_A_DOCUMENT,
        Reason.REVISIT,
        Reason.HTTP_STATUS,
        Reason.NOT_HTML,
        Reason.HTML_TOO_LARGE,
        Reason.READ_ERROR,
    }  # the reader's reasons
    offsets = whole["offset"].to_pylist()
    if len(set(offsets)) != len(offsets):
        raise InvariantError(f"duplicate offsets: {offsets}")
    for row in whole.select(["id", "drop_reason", "payload"]).to_pylist():
        if row["id"] is None:
            raise InvariantError("a row without an id")
        if row["drop_reason"] is None and row["payload"] is None:
            raise InvariantError(f"{row['id']}: kept without a payload")
        if row["drop_reason"] is not None and row["drop_reason"] not in known:
            raise InvariantError(f"{row['id']}: unknown drop reason {row['drop_reason']!r}")
    if size == 0 and whole.num_rows != 1:
        raise InvariantError("an empty file must give one read_error row")


def check_survivors(original_rows: list[dict], seed: Seed, damaged: tuple, mutated) -> None:
    """Invariant 4: records of the seed that do not overlap the damaged bytes survive."""
    start, end, shift = damaged
    found = Counter(row_key(row) for row in mutated.to_pylist() if row["record_type"])
    for row, (rec_start, rec_end) in zip(original_rows, seed.extents, strict=True):
        if end > start:
            outside = rec_end <= start or rec_start >= end
        else:  # an insertion at `start`: only a record around it is damaged
            outside = not rec_start < start < rec_end
        if not row["record_type"] or row["drop_reason"] == "read_error" or not outside:
            continue  # bytes that were never a good record may merge into the damage
        expected = row_key(row, rec_start + shift if rec_start >= start else rec_start)
        if found[expected] <= 0 and not _digest_fails(seed, rec_start, rec_end):
            same_id = [key for key in found if key[0] == expected[0]]
            raise InvariantError(
                f"record {expected[0]} at {rec_start}..{rec_end} lies outside the damage "
                f"{start}..{end} but came back as {same_id}, not {expected}"
            )
        found[expected] -= 1  # a multiset: files may repeat a record id


def _digest_fails(seed: Seed, start: int, end: int) -> bool:
    """Does the seed record's own WARC-Block-Digest fail? The reader checks digests only
    after a parse error and then blames the record before it, so such a record may take
    the blame for its neighbour's damage (warcio's example-wrong-chunks.warc)."""
    from pipeline.warc import _open_view

    with tempfile.NamedTemporaryFile(suffix=".warc") as tmp:
        tmp.write(seed.data)
        tmp.flush()
        with _open_view(tmp.name) as view:
            return view.framing(start, end, verify_digest=True).digest_ok is False


def run_warc_case(seed: Seed, mutations: list, chunk_records: int) -> dict:
    from pipeline.warc import read_chunk, read_file, scan_chunks

    data, damaged = seed.data, None
    for mutation in mutations:
        data, damaged = apply_mutation(seed, data, mutation)
    if len(mutations) > 1:
        damaged = None  # coordinates of several mutations do not compose: skip invariant 4
    with tempfile.TemporaryDirectory(prefix="crawlmill-fuzz-") as tmp:
        path = os.path.join(tmp, "case.warc")
        Path(path).write_bytes(data)
        chunks = scan_chunks(path, 0, chunk_records)
        tables = [read_chunk(chunk, MAX_PAYLOAD) for chunk in chunks]
        whole = read_file(path, MAX_PAYLOAD)
        import pyarrow as pa

        chunked = pa.concat_tables(tables) if tables else whole.schema.empty_table()
        check_warc_rows(chunked, whole, len(data))
        if damaged is not None:
            original = read_file(_write(tmp, "seed.warc", seed.data), MAX_PAYLOAD).to_pylist()
            check_survivors(original, seed, damaged, whole)
    reasons = Counter(whole["drop_reason"].to_pylist())
    return {"rows": whole.num_rows, "kept": reasons.pop(None, 0), "reasons": dict(reasons)}


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    Path(path).write_bytes(data)
    return path


_STAGES: dict = {}


def run_html_case(pages: list[tuple[bytes, str]], extractor: str) -> dict:
    import pyarrow as pa

    from pipeline import schema as S
    from pipeline.config import ExtractConfig
    from pipeline.extract import ExtractStage

    stage = _STAGES.get(extractor)
    if stage is None:
        stage = _STAGES[extractor] = ExtractStage(ExtractConfig(extractor=extractor))
    base = {name: None for name in S.RAW_SCHEMA.names}
    rows = [
        {**base, S.ID: f"page{i}", S.RECORD_TYPE: "response", S.HTTP_STATUS: 200}
        | {S.CONTENT_TYPE: content_type, S.PAYLOAD: payload}
        for i, (payload, content_type) in enumerate(pages)
    ]
    out = stage(pa.Table.from_pylist(rows, schema=S.RAW_SCHEMA))
    if out[S.ID].to_pylist() != [row[S.ID] for row in rows]:
        raise InvariantError(f"rows in {len(rows)}, out {out[S.ID].to_pylist()}")
    reasons: Counter = Counter()
    for row in out.select([S.ID, S.TEXT, S.DROP_REASON]).to_pylist():
        text, reason = row[S.TEXT], row[S.DROP_REASON]
        if reason is None and not text:
            raise InvariantError(f"{row[S.ID]}: kept without text")
        if reason is not None and reason not in EXTRACT_REASONS:
            raise InvariantError(f"{row[S.ID]}: unexpected drop reason {reason!r}")
        reasons[reason] += 1
    return {"rows": len(rows), "kept": reasons.pop(None, 0), "reasons": dict(reasons)}


def child_main(read_fd: int, write_fd: int) -> None:
    """The sandbox child: answer (target, args) messages until the pipe closes."""
    seeds: dict[str, Seed] = {}
    with os.fdopen(read_fd, "rb") as inbox, os.fdopen(write_fd, "wb") as outbox:
        while True:
            header = inbox.read(8)
            if len(header) < 8:
                return
            message = inbox.read(struct.unpack("<Q", header)[0])
            try:
                target, args = pickle.loads(message)  # builtins only: any importer can send
                if target == "warc":
                    seed_fields, mutations, chunk_records = args
                    seed = seeds.setdefault(seed_fields[0], Seed(*seed_fields))
                    answer = ("ok", run_warc_case(seed, mutations, chunk_records))
                elif target == "html":
                    answer = ("ok", run_html_case(*args))
                elif target == "sleep":  # the sandbox's own test: a case that hangs
                    time.sleep(args)
                    answer = ("ok", {})
                else:
                    answer = ("error", f"unknown target {target!r}")
            except InvariantError as exc:
                answer = ("invariant", str(exc))
            except Exception:  # any escaping exception is the finding
                answer = ("exception", traceback.format_exc())
            blob = pickle.dumps(answer)
            outbox.write(struct.pack("<Q", len(blob)) + blob)
            outbox.flush()


# --- The sandbox (parent side) ------------------------------------------------------------


class Sandbox:
    """A child process that runs cases; killed and replaced when a case exceeds its time."""

    def __init__(self, case_seconds: float = CASE_SECONDS):
        self.case_seconds = case_seconds
        self.process = None

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stderr=subprocess.DEVNULL,  # the reader logs every read error it counts
            cwd=REPO,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.inbox = os.fdopen(from_child_r, "rb")
        self.outbox = os.fdopen(to_child_w, "wb")

    def run(self, target: str, args) -> tuple[str, object, float]:
        """(status, detail, seconds); status ok | invariant | exception | hang | crash."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        blob = pickle.dumps((target, args))
        start = time.perf_counter()
        try:
            self.outbox.write(struct.pack("<Q", len(blob)) + blob)
            self.outbox.flush()
        except BrokenPipeError:
            self.close()
            return "crash", "the sandbox died before the case", 0.0
        header = self._read(8, start)
        body = (
            None if isinstance(header, str) else self._read(struct.unpack("<Q", header)[0], start)
        )
        seconds = time.perf_counter() - start
        if isinstance(body, str) or body is None:
            status = header if isinstance(header, str) else body
            self.close()
            return status, f"no answer after {seconds:.1f}s", seconds
        status, detail = pickle.loads(body)
        return status, detail, seconds

    def _read(self, size: int, start: float) -> bytes | str:
        """`size` bytes from the child, or "hang" (out of time) or "crash" (it died)."""
        data = b""
        fd = self.inbox.fileno()
        while len(data) < size:
            left = self.case_seconds - (time.perf_counter() - start)
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return "hang"
            piece = os.read(fd, size - len(data))
            if not piece:
                return "crash"
            data += piece
        return data

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            for stream in (self.inbox, self.outbox):
                with contextlib.suppress(OSError):
                    stream.close()
            self.process = None


# --- The driver: hypothesis rounds for a bounded time -------------------------------------


@dataclass
class Tally:
    cases: int = 0
    rows: int = 0
    kept: int = 0
    reasons: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)  # (status, detail, case)
    max_seconds: float = 0.0


def fuzz(
    target: str,
    sandbox: Sandbox,
    *,
    seconds: float | None = None,
    rounds: int | None = None,
    examples: int = 25,
    seeds: list[Seed] | None = None,
    extractor: str = "trafilatura",
    first_round: int = 0,
) -> Tally:
    """Run hypothesis rounds of `examples` cases (round k uses seed k) until `seconds` or
    `rounds` run out. Each failing round is shrunk to a minimal case and recorded."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    tally = Tally()
    strategy = warc_case_strategy(seeds) if target == "warc" else html_case_strategy()

    def one_case(case) -> None:
        if target == "warc":
            seed = seeds[case[0]]
            args = ((seed.name, seed.data, seed.plain, seed.extents), case[1], case[2])
        else:
            args = (case, extractor)
        status, detail, took = sandbox.run(target, args)
        tally.max_seconds = max(tally.max_seconds, took)
        if status != "ok":
            raise InvariantError(f"{status}: {detail}")
        tally.cases += 1
        tally.rows += detail["rows"]
        tally.kept += detail["kept"]
        tally.reasons.update(detail["reasons"])

    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )(given(strategy)(one_case))

    deadline = None if seconds is None else time.monotonic() + seconds
    index = first_round
    while (rounds is None or index < first_round + rounds) and (
        deadline is None or time.monotonic() < deadline
    ):
        try:
            hypothesis_seed(index)(test)()
        except InvariantError as exc:  # hypothesis notes hold the shrunk case
            notes = "\n".join(getattr(exc, "__notes__", []))
            tally.failures.append((index, f"{exc}\n{notes}"))
        index += 1
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="total time budget")
    parser.add_argument("--target", choices=["warc", "html", "both"], default="both")
    parser.add_argument(
        "--extractor", choices=["trafilatura", "resiliparse"], default="trafilatura"
    )
    parser.add_argument("--case-seconds", type=float, default=CASE_SECONDS)
    parser.add_argument("--examples", type=int, default=25, help="cases per hypothesis round")
    parser.add_argument("--first-round", type=int, default=0, help="hypothesis seed of round 1")
    parser.add_argument("--no-shared", action="store_true", help="seeds from tests/data only")
    args = parser.parse_args(argv)

    targets = ["warc", "html"] if args.target == "both" else [args.target]
    logging.getLogger("pipeline.warc").setLevel(logging.ERROR)  # seeds' own read errors
    seeds = load_seeds(seed_files(shared=not args.no_shared))
    print(f"{len(seeds)} WARC seeds ({sum(len(s.extents) for s in seeds)} records); ", end="")
    print(f"{args.seconds:.0f}s over {', '.join(targets)}; load {os.getloadavg()[0]:.1f}")
    failed = False
    for target in targets:
        sandbox = Sandbox(args.case_seconds)
        start = time.perf_counter()
        try:
            tally = fuzz(
                target,
                sandbox,
                seconds=args.seconds / len(targets),
                examples=args.examples,
                seeds=seeds,
                extractor=args.extractor,
                first_round=args.first_round,
            )
        finally:
            sandbox.close()
        took = time.perf_counter() - start
        print(
            f"{target:5s} {tally.cases:6,} cases in {took:6.1f}s  rows {tally.rows:,} "
            f"(kept {tally.kept:,})  slowest case {tally.max_seconds:.2f}s  "
            f"failing rounds {len(tally.failures)}"
        )
        for reason, count in tally.reasons.most_common():
            print(f"        {count:8,}  {reason}")
        for index, message in tally.failures:
            failed = True
            print(f"  FAIL round {index} (hypothesis seed {index}):\n{message}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.path.insert(0, str(REPO))
        child_main(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
