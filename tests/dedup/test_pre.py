"""Exact dedup before extraction: a page seen earlier in the input is never extracted, its
row is in rejected/ naming the kept record, and the shards are those the text-level exact
pass alone would give."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dedup.executor import SerialExecutor
from dedup.pre import DROP_STAGE, PRE_DIR, PreDecisions, normalize_url, payload_key, run_pre_dedup
from pipeline import schema as S
from pipeline.config import ConfigError, load_config
from pipeline.runner import WORK_DIR, run
from pipeline.warc import read_chunk, scan_chunks

WHIRLWIND = "whirlwind-cc-main-2024-22.warc.gz"  # one real CC-MAIN-2024-22 page
CHATNOIR = "chatnoir-cc-main-2020-34.warc.gz"  # 16 real CC-MAIN-2020-34 captures
PAGE_ID = "<urn:uuid:2be52b4e-8dbf-4d7e-8050-990fcfdeab0b>"  # a Dutch page the recipe keeps
COPY_ID = "<urn:uuid:ffffffff-ffff-4fff-8fff-ffffffffffff>"  # same length: lengths hold


@pytest.fixture(scope="module")
def inputs(sample_dir, tmp_path_factory) -> list[str]:
    """a = the chatnoir sample; b = the whirlwind page, then a second capture of one of
    a's pages (the same record under another id), uncompressed. b's copy is the duplicate."""
    directory = tmp_path_factory.mktemp("pre-inputs")
    a = directory / "a.warc.gz"
    a.write_bytes((sample_dir / CHATNOIR).read_bytes())
    records = gzip.decompress((sample_dir / CHATNOIR).read_bytes()).split(b"WARC/1.0\r\n")
    (page,) = [r for r in records if f"WARC-Record-ID: {PAGE_ID}".encode() in r]
    copy = b"WARC/1.0\r\n" + page.replace(PAGE_ID.encode(), COPY_ID.encode())
    b = directory / "b.warc"
    b.write_bytes(gzip.decompress((sample_dir / WHIRLWIND).read_bytes()) + copy)
    return [str(a), str(b)]


def test_payload_key_is_body_and_charset():
    body = b"<html><body>caf\xe9</body></html>"
    # the media type itself is not part of the key, only the charset it declares
    assert payload_key(body, "text/html") == payload_key(body, "application/xhtml+xml")
    assert payload_key(body, "text/html") == payload_key(body, None)
    assert payload_key(body, "text/html; charset=ISO-8859-1") == payload_key(
        body, 'text/html;charset="iso-8859-1"'
    )
    # the same bytes declared in another charset are another text
    assert payload_key(body, "text/html; charset=iso-8859-1") != payload_key(
        body, "text/html; charset=windows-1251"
    )
    assert payload_key(body, None) != payload_key(body + b" ", None)


def test_normalized_url():
    assert normalize_url("HTTP://Example.COM:80#top") == "http://example.com/"
    assert normalize_url("https://user@example.com:443/a?b=1") == "https://example.com/a?b=1"
    assert normalize_url("https://example.com:8443/A") == "https://example.com:8443/A"
    assert normalize_url("http://example.com:port/x") == "http://example.com:port/x"


def read_run(out: Path) -> tuple[pa.Table, dict, list[bytes]]:
    manifest = json.loads((out / "manifest.json").read_text())
    shards = [(out / s["file"]).read_bytes() for s in manifest["shards"]]
    stats = json.loads((out / "stats.json").read_text())
    return pq.read_table(out / "rejected"), stats, shards


@pytest.fixture(scope="module")
def pre_run(inputs, ray_local, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pre") / "out"
    run(load_config(None, ["engine.chunk_records=8"]), inputs, out, log=lambda line: None)
    return out


def test_duplicate_page_in_another_file_is_not_extracted(inputs, pre_run):
    rejected, stats, _ = read_run(pre_run)
    dup = rejected.filter(pc.equal(rejected[S.ID], COPY_ID)).to_pylist()
    assert len(dup) == 1 and dup[0][S.SOURCE] == inputs[1]
    assert dup[0][S.DROP_REASON] == S.Reason.PAYLOAD_DUPLICATE
    assert dup[0][S.DROP_STAGE] == DROP_STAGE
    assert dup[0][S.DUP_CLUSTER_ID] == PAGE_ID and dup[0][S.DUP_CLUSTER_SIZE] == 2
    # never extracted: the documents phase's part holds no text and no decoding for it
    parts = pq.read_table(pre_run / WORK_DIR / "docs")
    row = parts.filter(pc.equal(parts[S.ID], COPY_ID)).to_pylist()[0]
    assert row[S.TEXT] is None and row[S.CHARSET] is None and row[S.LANG] is None
    original = parts.filter(pc.equal(parts[S.ID], PAGE_ID)).to_pylist()[0]
    assert original[S.TEXT] and original[S.DROP_REASON] is None  # smaller id: kept
    pre = stats["dedup"]["pre_extraction"]
    assert pre["removed"] == 1 and pre["removed_by_reason"] == {S.Reason.PAYLOAD_DUPLICATE: 1}
    assert pre["checked"] == 18  # a's 16 responses, b's page and its copy
    assert (
        stats["records"]
        == stats["docs_kept"] + stats["rejected"]
        == rejected.num_rows + (stats["docs_kept"])
    )


def test_same_shards_as_the_text_exact_pass_alone(inputs, pre_run, ray_local, tmp_path):
    """Without the pass, the copy is extracted and the text-level exact pass drops it:
    the same documents are kept, the shards are byte-identical."""
    cfg = load_config(None, ["engine.chunk_records=8", "dedup.pre_extraction=[]"])
    run(cfg, inputs, tmp_path / "off", log=lambda line: None)
    rejected_off, stats_off, shards_off = read_run(tmp_path / "off")
    rejected_on, stats_on, shards_on = read_run(pre_run)
    assert shards_on == shards_off and shards_on
    dup = rejected_off.filter(pc.equal(rejected_off[S.ID], COPY_ID)).to_pylist()[0]
    assert (dup[S.DROP_REASON], dup[S.DROP_STAGE]) == (S.Reason.EXACT_DUPLICATE, "dedup")
    assert dup[S.DUP_CLUSTER_ID] == PAGE_ID
    assert stats_off["records"] == stats_on["records"]
    assert stats_off["dedup"]["pre_extraction"] == {"keys": []}


def test_same_bytes_whatever_cpus_and_partitions(inputs, pre_run, ray_local, tmp_path):
    cfg = load_config(None, ["engine.chunk_records=3", "engine.dedup_partitions=3"])
    run(cfg, inputs, tmp_path / "one", num_cpus=1, log=lambda line: None)
    for name in ("manifest.json", "stats.json"):
        one = json.loads((tmp_path / "one" / name).read_text())
        two = json.loads((pre_run / name).read_text())
        if name == "manifest.json":
            assert one["shards"] == two["shards"]
        else:
            assert one == two
    assert read_run(tmp_path / "one")[0] == read_run(pre_run)[0]
    done = json.loads((tmp_path / "one" / WORK_DIR / PRE_DIR / "done.json").read_text())
    assert done["stats"]["removed"] == 1


def read_drops(out: Path) -> pa.Table:
    return pq.read_table(sorted(out.glob("drops-*.parquet")))


def test_pass_alone_url_key_and_task_count(sample_dir, inputs, tmp_path):
    """The pass itself (no Ray): the same decisions for any task size and partitions; the
    url key also removes the copy (same URI); a rerun after done.json skips the pass."""
    chunks = [c for i, path in enumerate(inputs) for c in scan_chunks(path, i, 5)]
    tables = []
    for n, (per_task, partitions) in enumerate([(1, 1), (3, 4), (100, 7)]):
        out = tmp_path / f"pre{n}"
        result = run_pre_dedup(
            chunks,
            ["url", "payload_digest"],
            out,
            max_payload_bytes=10 << 20,
            executor=SerialExecutor(),
            partitions=partitions,
            chunks_per_task=per_task,
            log=lambda line: None,
        )
        assert not result.skipped
        tables.append(read_drops(out))
    assert tables[0] == tables[1] == tables[2]
    rows = tables[0].to_pylist()
    copy = [r for r in rows if r[S.DUP_CLUSTER_ID] == PAGE_ID]
    assert len(copy) == 1 and copy[0]["file_index"] == 1
    assert copy[0][S.DROP_REASON] == S.Reason.URL_DUPLICATE  # url is listed first
    again = run_pre_dedup(chunks, ["url"], tmp_path / "pre0", max_payload_bytes=10 << 20)
    assert again.skipped and again.stats == result.stats


def test_unknown_key_fails_naming_it(inputs, tmp_path):
    cfg_error = "dedup.pre_extraction: expected a list of distinct keys among payload_digest"
    with pytest.raises(ConfigError, match=cfg_error):
        load_config(None, ["dedup.pre_extraction=[payload_digest, warc_digest]"])
    with pytest.raises(ConfigError, match="dedup.pre_extraction"):
        load_config(None, ["dedup.pre_extraction=[url, url]"])


@pytest.mark.parametrize(("survivor", "dropped"), [(["id"], COPY_ID), (["first", "id"], PAGE_ID)])
def test_survivor_rule_before_extraction(inputs, tmp_path, survivor, dropped):
    """b first in input order: `id` still keeps the smaller id (a's page), as the text
    exact pass would; `first` keeps b's copy."""
    chunks = [c for i, path in enumerate(reversed(inputs)) for c in scan_chunks(path, i, 5)]
    out = tmp_path / "pre"
    run_pre_dedup(chunks, ["payload_digest"], out, max_payload_bytes=10 << 20, survivor=survivor)
    rows = read_drops(out).to_pylist()
    assert len(rows) == 1 and rows[0][S.DUP_CLUSTER_ID] == ({PAGE_ID, COPY_ID} - {dropped}).pop()
    assert rows[0]["file_index"] == (0 if dropped == COPY_ID else 1)


def test_a_file_group_without_drops(tmp_path, sample_dir):
    """Most file groups of a crawl have no duplicate at all: their chunks read as none."""
    chunks = scan_chunks(str(sample_dir / WHIRLWIND), 0, 2)
    result = run_pre_dedup(chunks, ["payload_digest", "url"], tmp_path, max_payload_bytes=1 << 20)
    assert result.stats["removed"] == 0 and result.stats["checked"] == 1
    decisions = PreDecisions(tmp_path)
    raw = read_chunk(chunks[0], 1 << 20)
    assert decisions.mark(raw, 0, 0) == raw
    assert decisions.for_chunk(0, 1).num_rows == 0 and decisions.for_chunk(5, 0).num_rows == 0
