"""What runs inside the extractor child: the extractors, and the loop that answers the
parent's pages. pipeline/extract.py's `TimedExtractor` starts it as
`python -m pipeline.extract_child FD` and talks to it over a socket pair.

Kept apart from pipeline/extract.py so that the child imports its extractor and nothing
else. The stage's module pulls in pyarrow and numpy (~0.2 CPU s at every start), which
the child never uses. A run starts one child per worker for the text (two with a
`langid.languages` list and trafilatura: resiliparse's for the language check before
extraction), and a fresh one after every timeout.
Measured here, CPU from start to ready: trafilatura's child 0.33 s -> 0.13 s,
resiliparse's 0.22 s -> 0.03 s. For the same reason the settings come as the plain dict
of an `ExtractConfig` (`dataclasses.asdict`), so unpickling them needs neither
pipeline.config nor yaml.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def make_extractor(settings: dict, tuned: bool = True):
    """Return a function html -> text for `settings` (an `ExtractConfig` as a dict). The
    imports happen here, so a process that never extracts never loads lxml or trafilatura.

    `tuned` (the child's way) makes trafilatura faster with the same text
    (pipeline/trafilatura_tuning.py). False runs it as it ships (the bench's floor,
    "trafilatura alone")."""
    if settings["extractor"] == "trafilatura":
        import trafilatura

        if tuned:
            from pipeline.trafilatura_tuning import tune_trafilatura

            tune_trafilatura()
        options = settings["trafilatura"]

        def extract(html: str) -> str:
            text = trafilatura.extract(
                html,
                output_format="txt",
                with_metadata=False,
                fast=options["fast"],
                favor_precision=options["favor_precision"],
                favor_recall=options["favor_recall"],
                include_comments=options["include_comments"],
                include_tables=options["include_tables"],
                deduplicate=options["deduplicate"],
            )
            return text or ""

    else:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        options = settings["resiliparse"]

        def extract(html: str) -> str:
            return extract_plain_text(
                HTMLTree.parse(html),
                main_content=options["main_content"],
                alt_texts=options["alt_texts"],
                links=options["links"],
                list_bullets=options["list_bullets"],
                comments=options["comments"],
            )

    return extract


def child_loop(conn: Connection) -> None:
    """Receive the settings, then lists of HTML strings; answer each page as soon as it is
    done with ("ok", text) or ("error", message), in order."""
    extract = make_extractor(conn.recv())
    conn.send(("ready", ""))
    while True:
        try:
            pages = conn.recv()
        except EOFError:
            return
        for html in pages:
            try:
                conn.send(("ok", extract(html)))
            except Exception as exc:  # noqa: BLE001 - any extractor failure is a per-page reject
                conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m pipeline.extract_child FD (started by TimedExtractor)")
    child_loop(Connection(int(sys.argv[1])))
