"""bench/langid_check.py counts what the language check before extraction does, per
<html lang> group. Its counts must be the stage's own on the same real pages (the
bundled sample). No figure here is a speed."""

from __future__ import annotations

from pathlib import Path

from filters.langid import LangIdBeforeExtractionStage, declared_language
from pipeline import schema as S
from pipeline.config import load_config
from pipeline.extract import decode_html_rows
from pipeline.io import expand_inputs
from pipeline.warc import read_file
from tests.helpers import load_bench_script

SAMPLE = Path(__file__).resolve().parent / "data" / "sample"


def test_the_counts_are_the_stages_on_the_same_pages(capsys):
    langid_check = load_bench_script("langid_check")
    settings = ["langid.languages=[en,de]"]  # a second wanted language: some pages declare it
    assert langid_check.main([str(SAMPLE), *[arg for s in settings for arg in ("--set", s)]]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]
    printed = {
        name.strip(): (int(checked), int(dropped.split()[0])) for name, checked, dropped, *_ in rows
    }

    cfg = load_config(None, settings)
    stage = LangIdBeforeExtractionStage(cfg.langid, cfg.extract)
    checked = dropped = declaring_neither = 0
    try:
        for path in expand_inputs([str(SAMPLE)]):
            batch = read_file(path, cfg.read.max_payload_bytes)
            _, pages, _ = decode_html_rows(batch)
            checked += sum(1 for html in pages if stage.checks(html))
            declaring_neither += sum(
                1 for html in pages if html and declared_language(html) not in {"en", "de"}
            )
            out = stage(batch)
            dropped += out[S.DROP_REASON].to_pylist().count(S.Reason.LANG_NOT_WANTED)
    finally:
        stage.close()
    assert checked > 15 and dropped > 5  # the sample has pages checked and dropped
    assert checked < declaring_neither  # and pages whose English title spares them the check
    assert sum(c for c, _ in printed.values()) == checked
    assert sum(d for _, d in printed.values()) == dropped
    assert set(printed) <= {"another declared", "none declared"}
