"""HTML -> main text, with a per-document time limit that cannot be dodged.

Extraction is the pipeline's bottleneck (trafilatura ~70 pages/s per core on realpages
here, ~80% of a run's CPU), and it is where bad input bites: pathological HTML can
make trafilatura run for minutes (trafilatura #704) and deeply nested markup can crash
lxml outright. So the extractor runs in a child process that the stage owns:

- the stage sends a batch's pages in one message and lets the child spend at most
  `extract.timeout_seconds` of *CPU time* on each (read from /proc). CPU time, not wall
  time: on a loaded machine (2 cores, a dozen Ray workers) a 1 s page can take 5 s of
  wall time, and a wall-clock limit then rejects different pages on different runs,
  which breaks determinism. A wall-clock backstop of WALL_BACKSTOP x the limit still
  catches a child that hangs without using CPU;
- on a timeout the child is killed (SIGKILL: works even inside C code, unlike SIGALRM,
  which Ray's worker threads cannot use anyway) and a fresh child is started lazily;
- if the child dies (segfault, out of memory) the page becomes `extract_error`.

The page, not the run, pays: the row gets `drop_reason=extract_timeout` and the batch goes
on. Sending a page through the socket costs ~0.15 ms, against ~10 ms to extract it.

The child (pipeline/extract_child.py) does nothing but extract, so it sets trafilatura
up for speed, with byte-identical text (pipeline/trafilatura_tuning.py: lxml's element
class lookup at C level, native guards in front of trafilatura's regular expressions in
XPath, jusText's paragraphs made lazily and its stoplist looked up by identity; ~20-25%
less CPU together).

WET conversion records already hold text: they skip the extractor. Responses are decoded
first (pipeline.decode: BOM, HTTP charset, <meta>, detection), undecodable bytes becoming
an `undecodable` reject.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from multiprocessing.connection import Connection

import pyarrow as pa

from pipeline import schema as S
from pipeline.config import ExtractConfig
from pipeline.decode import decode_html, decode_text
from pipeline.extract_child import make_extractor
from pipeline.stage import alive_mask, mark_dropped, set_column

STAGE = "extract"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_HAS_PROC = os.path.exists("/proc/self/stat")  # where a child's CPU time can be read


class TimedExtractor:
    """Runs the configured extractor in a killable child process.

    The child is a plain `python -m pipeline.extract_child FD` (pipeline/extract_child.py)
    talking over a socket pair, not a multiprocessing.Process: "fork" is unsafe in Ray's
    multi-threaded workers, and "spawn" re-runs the parent's main script in the child.
    """

    # A child is ready after ~0.15 s of CPU here (pipeline/extract_child.py); allow for a
    # slow, loaded machine.
    START_TIMEOUT_SECONDS = 120.0
    # A child blocked without burning CPU (it should never be) is killed after this many
    # times the CPU limit of wall time: 60 s with the default 2 s.
    WALL_BACKSTOP = 30.0
    POLL_SECONDS = 0.05

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._ready = False  # the child answered "ready"
        self.restarts = 0  # children replaced after a timeout or a crash
        self._retired_cpu = 0.0  # CPU seconds of the children already replaced

    def start(self) -> None:
        """Launch the child without waiting for it: it imports its extractor while the
        caller goes on (a Ray worker loads its other models and reads its first
        chunk). The first extraction waits for it to be ready."""
        if self._process is not None:
            return
        parent_sock, child_sock = socket.socketpair()
        child_fd = child_sock.fileno()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.extract_child", str(child_fd)],
            pass_fds=(child_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # stderr stays: a crash's traceback reaches the log
        )
        child_sock.close()
        self._conn = Connection(parent_sock.detach())
        self._conn.send(asdict(self.cfg))  # a plain dict: the child never imports our config
        self._ready = False

    def _wait_ready(self) -> None:
        if not self._conn.poll(self.START_TIMEOUT_SECONDS):
            self._kill()
            raise RuntimeError("extractor process did not start")
        self._conn.recv()
        self._ready = True

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _kill(self) -> None:
        if self._process is not None:
            if self._process.returncode is None:  # not reaped yet: its /proc entry is its own
                self._retired_cpu += self._cpu_seconds() or 0.0
            self._process.kill()
            self._process.wait(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def _cpu_seconds(self) -> float | None:
        """The child's user + system CPU time from /proc, or None where there is no /proc."""
        try:
            with open(f"/proc/{self._process.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime

    def cpu_seconds(self) -> float | None:
        """CPU seconds used by every child this extractor started (the live one and those
        it replaced), for the per-stage accounting in timings.json; None without /proc."""
        if not _HAS_PROC:
            return None
        if self._process is None or self._process.returncode is not None:
            return self._retired_cpu  # (a child that died by itself took its CPU with it)
        return self._retired_cpu + (self._cpu_seconds() or 0.0)

    def _wait_answer(self) -> bool:
        """Wait for the child's next answer; False once it used more than its budget."""
        limit = self.cfg.timeout_seconds
        start_cpu, start_wall = self._cpu_seconds(), time.monotonic()
        while not self._conn.poll(self.POLL_SECONDS):
            wall = time.monotonic() - start_wall
            cpu = self._cpu_seconds()
            if start_cpu is None or cpu is None:  # no /proc: fall back to wall time
                if wall > limit:
                    return False
            elif cpu - start_cpu > limit or wall > limit * self.WALL_BACKSTOP:
                return False
        return True

    def extract(self, html: str) -> tuple[str | None, str | None]:
        """Return (text, None) or (None, drop_reason)."""
        return self.extract_many([html])[0]

    def extract_many(self, pages: list[str]) -> list[tuple[str | None, str | None]]:
        """Extract pages in order; each gets (text, None) or (None, drop_reason).

        The pages go to the child in one message and come back one by one, so the child
        does not wait for the parent between pages. Each page still gets its own
        `timeout_seconds` of child CPU time, counted from the previous page's answer. On a
        timeout or a dead child, the rest of the list goes to a fresh child. Cost of the
        child, measured on 1,284 real pages with resiliparse: 1.08 CPU s in-process, 1.18
        in the child + 0.08 here (~0.15 ms a page; trafilatura's ~10 ms a page hides it).
        """
        results: list[tuple[str | None, str | None]] = []
        while len(results) < len(pages):
            if self._process is not None and not self._alive():
                self._kill()  # died between calls (killed from outside): no page's fault
            self.start()
            try:
                if not self._ready:
                    self._wait_ready()
            except (EOFError, OSError):  # died while starting: no page's fault
                self._kill()
                raise RuntimeError("extractor process did not start") from None
            remaining = pages[len(results) :]
            try:
                self._conn.send(remaining)
                for _ in remaining:
                    if not self._wait_answer():
                        self._kill()
                        self.restarts += 1
                        results.append((None, S.Reason.EXTRACT_TIMEOUT))
                        break
                    status, value = self._conn.recv()
                    ok = status == "ok"
                    results.append((value, None) if ok else (None, S.Reason.EXTRACT_ERROR))
            except (EOFError, OSError):  # the child died under the current page
                self._kill()
                self.restarts += 1
                results.append((None, S.Reason.EXTRACT_ERROR))
        return results

    def close(self) -> None:
        if self._process is not None:
            self._kill()

    def __del__(self):
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


# --- The stage ----------------------------------------------------------------------------


def decode_html_rows(batch: pa.Table) -> tuple[list[int], list[str | None], list[str | None]]:
    """The alive HTML rows of a RAW batch (WET conversions hold text already, they are not
    here), each decoded: (rows, HTML or None when undecodable, charset)."""
    alive = alive_mask(batch).to_pylist()
    payloads = batch[S.PAYLOAD].to_pylist()
    record_types = batch[S.RECORD_TYPE].to_pylist()
    content_types = batch[S.CONTENT_TYPE].to_pylist()
    rows, pages, charsets = [], [], []
    for i in range(batch.num_rows):
        if alive[i] and record_types[i] != "conversion":
            html, charset = decode_html(payloads[i] or b"", content_types[i])
            rows.append(i)
            pages.append(html)
            charsets.append(charset)
    return rows, pages, charsets


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

        texts: list[str | None] = [None] * batch.num_rows
        charsets: list[str | None] = [None] * batch.num_rows
        reasons: dict[str, list[bool]] = {}

        def reject(i: int, reason: str) -> None:
            reasons.setdefault(reason, [False] * batch.num_rows)[i] = True

        # WET text is final; live HTML pages are decoded and queue for the extractor.
        for i in range(batch.num_rows):
            if alive[i] and record_types[i] == "conversion":
                texts[i], charsets[i] = decode_text(payloads[i] or b""), "utf-8:wet"
        html_rows: list[int] = []
        html_pages: list[str] = []
        for i, html, charset in zip(*decode_html_rows(batch), strict=True):
            charsets[i] = charset
            if html is None:
                reject(i, S.Reason.UNDECODABLE)
                continue
            html_rows.append(i)
            html_pages.append(html)

        for i, (text, reason) in zip(
            html_rows, self.extractor.extract_many(html_pages), strict=True
        ):
            if reason is not None:
                reject(i, reason)
            texts[i] = text

        for i, text in enumerate(texts):
            if text is None:
                continue
            text = text.strip()
            texts[i] = text if len(text) >= max(self.cfg.min_text_chars, 1) else None
            if texts[i] is None:
                reject(i, S.Reason.NO_TEXT)

        batch = batch.drop_columns([S.PAYLOAD])
        batch = set_column(batch, S.CHARSET, pa.array(charsets, pa.string()), pa.string())
        batch = set_column(batch, S.TEXT, pa.array(texts, pa.large_string()), pa.large_string())
        for reason, mask in reasons.items():
            batch = mark_dropped(batch, mask, reason, STAGE)
        return batch

    def start(self) -> None:
        """Launch the extractor child now, rather than at the first batch."""
        self.extractor.start()

    def child_cpu_seconds(self) -> float | None:
        """CPU seconds of the extractor children so far (the runner's per-stage CPU)."""
        return self.extractor.cpu_seconds()

    def close(self) -> None:
        self.extractor.close()


def time_extractor(cfg: ExtractConfig, pages: list[str], tuned: bool = False) -> dict:
    """Extract `pages` in-process with no time limit: the bench's floor, the extractor as
    it ships, or with `tuned` as crawlmill's child runs it. Returns wall and CPU seconds
    of the extraction alone (imports excluded) and the pages that gave text."""
    extract = make_extractor(asdict(cfg), tuned)
    start, start_cpu = time.perf_counter(), time.process_time()
    extracted = sum(1 for page in pages if extract(page))
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - start_cpu,
        "extracted": extracted,
    }
