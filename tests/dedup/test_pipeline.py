"""Dedup inside a real run: duplicates across input files leave, with their reason and
cluster in rejected/, and the output is byte-identical whatever the parallelism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline import schema as S
from pipeline.config import ConfigError, load_config
from pipeline.runner import run
from tests.helpers import REBALANCE_OFF

WET = "whatsinthebox-cc-main-2020-50.warc.wet.gz"  # 318 real multilingual WET pages


@pytest.fixture(scope="module")
def two_copies(sample_dir, tmp_path_factory) -> list[str]:
    """The same WET file under two names: every document of b duplicates one of a."""
    directory = tmp_path_factory.mktemp("inputs")
    paths = [directory / "a.warc.wet.gz", directory / "b.warc.wet.gz"]
    for path in paths:
        shutil.copyfile(sample_dir / WET, path)
    return [str(p) for p in paths]


def outputs(out: Path) -> dict[str, bytes]:
    files = [out / "manifest.json", out / "stats.json"]
    files += sorted((out / "shards").iterdir()) + sorted((out / "rejected").iterdir())
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


def test_exact_duplicates_across_input_files(two_copies, ray_local, tmp_path):
    # the text-level exact pass alone (the pass before extraction would take b's copies
    # first: test_pre.py)
    cfg = load_config(None, ["engine.chunk_records=64", "dedup.pre_extraction=[]", *REBALANCE_OFF])
    run(cfg, two_copies, tmp_path / "out", num_cpus=2, log=lambda line: None)
    rejected = pq.read_table(tmp_path / "out" / "rejected")
    exact = rejected.filter(pc.equal(rejected[S.DROP_REASON], S.Reason.EXACT_DUPLICATE))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    from_a = rejected.filter(pc.equal(rejected[S.SOURCE], two_copies[0]))
    from_b = rejected.filter(pc.equal(rejected[S.SOURCE], two_copies[1]))
    dedup_a = from_a.filter(pc.equal(from_a[S.DROP_STAGE], "dedup")).num_rows  # a's own dups
    dedup_b = from_b.filter(pc.equal(from_b[S.DROP_STAGE], "dedup"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    kept = manifest["totals"]["docs"]
    # b's copy of a page ties with a's on quality, length and id: input order keeps a's,
    # so every document of b that reached dedup is an exact duplicate, and none is kept
    assert set(dedup_b[S.DROP_REASON].to_pylist()) == {S.Reason.EXACT_DUPLICATE}
    assert dedup_b.num_rows == kept + dedup_a > 0
    assert set(dedup_b[S.DUP_CLUSTER_SIZE].to_pylist()) >= {2}
    assert all(dedup_b[S.DUP_CLUSTER_ID].is_valid().to_pylist())
    assert stats["dedup"]["exact"]["removed"] == exact.num_rows
    assert stats["rejected_by_reason"][S.Reason.EXACT_DUPLICATE] == exact.num_rows
    assert stats["dedup"]["docs_out"] == kept
    sources = [
        source
        for shard in manifest["shards"]
        for source in pa.ipc.open_file(tmp_path / "out" / shard["file"])
        .read_all()[S.SOURCE]
        .to_pylist()
    ]
    assert set(sources) == {two_copies[0]}
    # every cluster id names a document that is in the shards (chains resolved)
    kept_ids = {
        doc_id
        for shard in manifest["shards"]
        for doc_id in pa.ipc.open_file(tmp_path / "out" / shard["file"])
        .read_all()[S.ID]
        .to_pylist()
    }
    named = set(rejected[S.DUP_CLUSTER_ID].drop_null().to_pylist())
    assert named and named <= kept_ids


def test_same_bytes_whatever_parallelism_batch_and_partitions(two_copies, ray_local, tmp_path):
    small = load_config(
        None, ["engine.chunk_records=50", "engine.batch_rows=7", "engine.dedup_partitions=5"]
    )
    run(small, two_copies, tmp_path / "one", num_cpus=1, log=lambda line: None)
    run(load_config(None), two_copies, tmp_path / "two", num_cpus=2, log=lambda line: None)
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")


def test_inconsistent_lsh_settings_fail_before_any_work(two_copies, tmp_path):
    cfg = load_config(None, ["dedup.near.bands=20", "dedup.near.rows=10"])
    with pytest.raises(ConfigError, match=r"dedup.near.bands x dedup.near.rows"):
        run(cfg, two_copies, tmp_path / "out", log=lambda line: None)
    assert not (tmp_path / "out").exists()
