"""HTML -> main text, with a per-document time limit that cannot be dodged.

Extraction is the pipeline's bottleneck (trafilatura ~29 pages/s per core here, 30-100x
slower than every other stage), and it is where bad input bites: pathological HTML can
make trafilatura run for minutes (trafilatura #704) and deeply nested markup can crash
lxml outright. So the extractor runs in a child process that the stage owns:

- the stage sends one page at a time and waits at most `extract.timeout_seconds`;
- on a timeout the child is killed (SIGKILL: works even inside C code, unlike SIGALRM,
  which Ray's worker threads cannot use anyway) and a fresh child is started lazily;
- if the child dies (segfault, out of memory) the page becomes `extract_error`.

The page, not the run, pays: the row gets `drop_reason=extract_timeout` and the batch goes
on. Sending a page through a pipe costs ~0.1 ms, against ~35 ms to extract it.

WET conversion records already hold text: they skip the extractor. Responses are decoded
first (pipeline.decode: BOM, HTTP charset, <meta>, detection), undecodable bytes becoming
an `undecodable` reject.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection

import pyarrow as pa

from pipeline import schema as S
from pipeline.config import ExtractConfig
from pipeline.decode import decode_html, decode_text
from pipeline.stage import alive_mask, mark_dropped, set_column

STAGE = "extract"


# --- The extractors (run inside the child process) --------------------------------------


def _make_extractor(cfg: ExtractConfig):
    """Return a function html -> text for the configured extractor (imports happen here,
    in the child, so the parent never loads lxml/trafilatura)."""
    if cfg.extractor == "trafilatura":
        import trafilatura

        settings = cfg.trafilatura

        def extract(html: str) -> str:
            text = trafilatura.extract(
                html,
                output_format="txt",
                with_metadata=False,
                fast=settings.fast,
                favor_precision=settings.favor_precision,
                favor_recall=settings.favor_recall,
                include_comments=settings.include_comments,
                include_tables=settings.include_tables,
                deduplicate=settings.deduplicate,
            )
            return text or ""

        return extract

    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    settings = cfg.resiliparse

    def extract(html: str) -> str:
        return extract_plain_text(
            HTMLTree.parse(html),
            main_content=settings.main_content,
            alt_texts=settings.alt_texts,
            links=settings.links,
            list_bullets=settings.list_bullets,
        )

    return extract


def _child_loop(conn: Connection, cfg: ExtractConfig) -> None:
    """Child process: receive HTML strings, answer ("ok", text) or ("error", message)."""
    extract = _make_extractor(cfg)
    conn.send(("ready", ""))
    while True:
        try:
            html = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", extract(html)))
        except Exception as exc:  # noqa: BLE001 - any extractor failure is a per-page reject
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))


class TimedExtractor:
    """Runs the configured extractor in a killable child process."""

    # Starting a child imports trafilatura/lxml (~1-2 s); allow for a slow, loaded machine.
    START_TIMEOUT_SECONDS = 120.0

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self._context = multiprocessing.get_context(
            "spawn"
        )  # fork is unsafe in threaded Ray workers
        self._process = None
        self._conn: Connection | None = None
        self.restarts = 0

    def _start(self) -> None:
        parent_conn, child_conn = self._context.Pipe()
        self._process = self._context.Process(
            target=_child_loop, args=(child_conn, self.cfg), daemon=True, name="crawlmill-extract"
        )
        self._process.start()
        child_conn.close()
        self._conn = parent_conn
        if not parent_conn.poll(self.START_TIMEOUT_SECONDS):
            self._kill()
            raise RuntimeError("extractor process did not start")
        parent_conn.recv()

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
        self.restarts += 1

    def extract(self, html: str) -> tuple[str | None, str | None]:
        """Return (text, None) or (None, drop_reason)."""
        if self._process is not None and not self._process.is_alive():
            self._kill()  # died between pages (killed from outside): not this page's fault
        if self._process is None:
            self._start()
        try:
            self._conn.send(html)
            if not self._conn.poll(self.cfg.timeout_seconds):
                self._kill()
                return None, S.Reason.EXTRACT_TIMEOUT
            status, value = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):  # the child died under this page
            self._kill()
            return None, S.Reason.EXTRACT_ERROR
        if status != "ok":
            return None, S.Reason.EXTRACT_ERROR
        return value, None

    def close(self) -> None:
        if self._process is not None:
            self._kill()

    def __del__(self):
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


# --- The stage ----------------------------------------------------------------------------


class ExtractStage:
    """RAW batch (payload bytes) -> batch with `text` and `charset`; payload dropped."""

    name = STAGE

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self.extractor = TimedExtractor(cfg)

    def __call__(self, batch: pa.Table) -> pa.Table:
        alive = alive_mask(batch).to_pylist()
        payloads = batch[S.PAYLOAD].to_pylist()
        record_types = batch[S.RECORD_TYPE].to_pylist()
        content_types = batch[S.CONTENT_TYPE].to_pylist()

        texts: list[str | None] = [None] * batch.num_rows
        charsets: list[str | None] = [None] * batch.num_rows
        reasons: dict[str, list[bool]] = {}

        def reject(i: int, reason: str) -> None:
            reasons.setdefault(reason, [False] * batch.num_rows)[i] = True

        for i in range(batch.num_rows):
            if not alive[i]:
                continue
            payload = payloads[i] or b""
            if record_types[i] == "conversion":  # WET: already text
                text, charsets[i] = decode_text(payload), "utf-8:wet"
            else:
                html, charsets[i] = decode_html(payload, content_types[i])
                if html is None:
                    reject(i, S.Reason.UNDECODABLE)
                    continue
                text, reason = self.extractor.extract(html)
                if reason is not None:
                    reject(i, reason)
                    continue
            text = text.strip()
            if len(text) < max(self.cfg.min_text_chars, 1):
                reject(i, S.Reason.NO_TEXT)
                continue
            texts[i] = text

        batch = batch.drop_columns([S.PAYLOAD])
        batch = set_column(batch, S.CHARSET, pa.array(charsets, pa.string()), pa.string())
        batch = set_column(batch, S.TEXT, pa.array(texts, pa.large_string()), pa.large_string())
        for reason, mask in reasons.items():
            batch = mark_dropped(batch, mask, reason, STAGE)
        return batch

    def close(self) -> None:
        self.extractor.close()


def time_extractor(cfg: ExtractConfig, pages: list[str]) -> tuple[float, int]:
    """Seconds to extract `pages` in-process with no time limit (the bench floor)."""
    extract = _make_extractor(cfg)
    start = time.perf_counter()
    n = sum(1 for page in pages if extract(page))
    return time.perf_counter() - start, n
