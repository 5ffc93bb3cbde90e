"""The side-by-side benchmark's own logic (bench/side_by_side.py), on real files and
processes: the WARC split, process-tree memory sampling and clean-up, the accounting of
silent losses, the crawlmill settings that make the work equal, and the datatrove peer on
a few real records (skipped when its virtualenv, `make bench-venv`, is absent).

No figure here is a speed: speed lives in the benchmark's output, never in a test.
"""

from __future__ import annotations

import json
import struct
import sys
import textwrap
import uuid
from pathlib import Path

import psutil
import pytest
from fastwarc.warc import ArchiveIterator

from tests.helpers import load_bench_script

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "sample" / "dolma-sample-0000.warc.gz"


sbs = load_bench_script("side_by_side")


def record_ids(path: Path) -> list[str]:
    return [r.record_id for r in ArchiveIterator(str(path), parse_http=False)]


def test_split_is_round_robin_and_byte_exact(tmp_path):
    ids = record_ids(SAMPLE)
    files = sbs.split_warc(SAMPLE, tmp_path, 2)
    assert [record_ids(f) for f in files] == [ids[0::2], ids[1::2]]
    # every record's bytes are copied as they are: payloads read back the same
    from pipeline.warc import read_file

    original = {r["id"]: r["payload"] for r in read_file(str(SAMPLE), 10**7).to_pylist()}
    for f in files:
        for row in read_file(str(f), 10**7).to_pylist():
            assert row["payload"] == original[row["id"]]


def test_split_takes_only_the_first_records(tmp_path):
    ids = record_ids(SAMPLE)
    files = sbs.split_warc(SAMPLE, tmp_path, 3, records=7)
    assert sorted(i for f in files for i in record_ids(f)) == sorted(ids[:7])
    assert [len(record_ids(f)) for f in files] == [3, 2, 2]


def warc_records(path: Path) -> dict[str, tuple[str | None, bytes]]:
    """record id -> (target URI as written, block bytes)."""
    return {
        r.record_id: (r.headers.get("WARC-Target-URI"), r.reader.read())
        for r in ArchiveIterator(str(path), parse_http=False)
    }


def test_split_with_repeat_adds_renamed_copies_of_the_same_pages(tmp_path):
    from pipeline.warc import scan_chunks

    original = list(warc_records(SAMPLE).items())[:5]
    files = sbs.split_warc(SAMPLE, tmp_path, 2, records=5, repeat=3)
    written = {k: v for f in files for k, v in warc_records(f).items()}
    assert len(written) == 15  # every copy its own record id
    # each copy its own gzip member, as crawlmill's scan (and datatrove's reader) expect
    assert sum(c.n_records for f in files for c in scan_chunks(str(f), 0, 1)) == 15
    # round-robin, copy after copy: file 0 holds records 0, 2, 4 of each copy
    assert record_ids(files[0])[:3] == [original[i][0] for i in (0, 2, 4)]
    for record_id, (uri, block) in original:
        assert written[record_id] == (uri, block)  # copy 0: the record as it was
        for copy in (1, 2):
            old_uuid = record_id.removeprefix("<urn:uuid:").removesuffix(">")
            copy_id = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{copy}:{old_uuid}')}>"
            copy_uri, copy_block = written[copy_id]
            assert copy_block == block
            if uri is None:  # a warcinfo record has no target
                assert copy_uri is None
            else:  # the sample writes <uri>: the query goes inside the brackets
                bare = uri.strip("<>")
                sep = "&" if "?" in bare else "?"
                assert copy_uri == uri.replace(bare, f"{bare}{sep}crawlmill-copy={copy}")


def test_silent_losses_are_what_no_output_and_no_reject_explains():
    assert sbs.silent_losses(3913, 1969, 1642) == 302
    assert sbs.silent_losses(10, 4, 6) == 0


def test_word_agreement_is_order_blind_and_counts_repeats():
    assert sbs.word_agreement("a b c", "c b a") == 1.0
    assert sbs.word_agreement("a b", "c d") == 0.0
    assert sbs.word_agreement("a a b", "a b") == pytest.approx(2 / 3)
    assert sbs.word_agreement("", "") == 1.0


def test_equal_settings_are_valid_config_and_narrow_the_recipe():
    from pipeline.config import Config, load_config

    cfg = load_config(None, [*sbs.EQUAL_SETTINGS])
    assert cfg.langid.languages == ["en"] and cfg.langid.min_score == 0.65
    assert not cfg.filters.urls.enabled and not cfg.filters.safety.enabled
    assert not cfg.filters.classifier.enabled and not cfg.dedup.exact
    near = cfg.dedup.near
    assert (near.num_perm, near.bands, near.rows, near.verify) == (112, 14, 8, False)
    # the rule filters the peer runs stay on, with the recipe's thresholds
    default = Config()
    for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb"):
        assert getattr(cfg.filters, name) == getattr(default.filters, name)


def test_summary_ratios_and_overhead():
    def run(wall, docs=None):
        r = {"wall": wall}
        if docs is not None:
            r.update(peak_rss_mb=100.0, docs_out=docs, tokens_out=docs * 10, recorded_rejects=5)
        return r

    results = {
        "datatrove": [run(200.0, 90), run(220.0, 90)],
        "crawlmill": [run(50.0, 95), run(70.0, 95)],
        "crawlmill-langid-after": [run(55.0, 95)],
        "floor": [run(40.0), run(40.0)],
        "floor-tuned": [run(36.0)],
    }
    for name, cpu in {
        "datatrove": [380.0, 400.0],
        "crawlmill": [96.0, 90.0],
        "floor": [80.0, 78.0],
    }.items():
        for r, seconds in zip(results[name], cpu, strict=True):
            r["cpu_seconds"] = seconds
    summary = sbs.summarize(results, records_in=100, cores=2)
    # the best run of each: load from other processes only ever adds time
    assert summary["datatrove"]["wall_best"] == 200.0
    assert summary["crawlmill"]["per_core"] == pytest.approx(100 / 50 / 2)
    assert summary["crawlmill"]["speed_vs_datatrove"] == pytest.approx(200 / 50)
    assert summary["crawlmill"]["overhead_above_extraction"] == pytest.approx(50 / 40 - 1)
    # held to the same trafilatura floor
    assert summary["crawlmill-langid-after"]["overhead_above_extraction"] == pytest.approx(
        55 / 40 - 1
    )
    # and, beside it, against trafilatura as crawlmill's child runs it
    assert summary["crawlmill"]["overhead_above_tuned_extraction"] == pytest.approx(50 / 36 - 1)
    assert "overhead_above_tuned_extraction" not in summary["datatrove"]
    # CPU: the lowest of the runs, against datatrove's and the floor's
    assert summary["crawlmill"]["cpu_best"] == 90.0
    assert summary["crawlmill"]["cpu_vs_datatrove"] == pytest.approx(380 / 90)
    assert summary["crawlmill"]["cpu_above_extraction"] == pytest.approx(90 / 78 - 1)
    assert summary["datatrove"]["cpu_above_extraction"] == pytest.approx(380 / 78 - 1)
    assert "cpu_best" not in summary["crawlmill-langid-after"]  # not measured: left out
    assert summary["datatrove"]["silent"] == 5 and summary["crawlmill"]["silent"] == 0
    assert summary["crawlmill"]["same_output_every_run"]


def test_phase_peaks_come_from_the_samples_taken_while_the_phase_ran():
    mb = 2**20
    samples = [(10.0, 100 * mb), (10.2, 300 * mb), (10.4, 200 * mb), (10.6, 50 * mb)]
    assert sbs.peak_between(samples, 10.1, 10.5) == 300
    assert sbs.peak_between(samples, 10.35, 10.5) == 200
    # shorter than the interval: the sample nearest its middle
    assert sbs.peak_between(samples, 10.51, 10.55) == 50
    assert sbs.peak_between([], 0.0, 1.0) is None


def test_per_phase_summary_and_table():
    def phases(documents: float, dedup: float, write: float, kept: int) -> dict:
        flow = {"documents": (100, 60), "dedup": (60, kept), "tokens and shards": (60, kept)}
        walls = {"documents": documents, "dedup": dedup, "tokens and shards": write}
        return {
            phase: {"wall": walls[phase], "peak_rss_mb": 500.0, "docs_in": n_in,
                    "docs_out": n_out, "tokens_out": 999 if phase == "tokens and shards" else None}
            for phase, (n_in, n_out) in flow.items()
        }  # fmt: skip

    def run(wall: float, common: dict) -> dict:
        return {"wall": wall, "peak_rss_mb": 900.0, "docs_out": 50, "tokens_out": 999,
                "recorded_rejects": 50, "common_phases": common}  # fmt: skip

    results = {
        "datatrove": [run(100.0, phases(80.0, 5.0, 10.0, 50))],
        # the best run's phases are the ones reported
        "crawlmill": [run(60.0, phases(50.0, 1.0, 1.0, 50)), run(40.0, phases(20.0, 0.5, 2.0, 50))],
    }
    summary = sbs.summarize(results, records_in=100, cores=2)
    documents = summary["crawlmill"]["phases"]["documents"]
    assert documents["wall"] == 20.0 and documents["per_core"] == pytest.approx(100 / 20 / 2)
    assert documents["vs_datatrove"] == pytest.approx(80.0 / 20.0)
    assert summary["crawlmill"]["phases"]["tokens and shards"]["vs_datatrove"] == pytest.approx(5)
    assert "vs_datatrove" not in summary["datatrove"]["phases"]["dedup"]
    table = "\n".join(sbs.phase_table(summary, cores=2))
    assert "| documents | crawlmill | 20.00 | 100 -> 60 | 2.5 | 4.00x | 500 | – |" in table
    assert "| tokens and shards | datatrove | 10.00 | 60 -> 50 | 3.0 | – | 500 | 999 |" in table
    # results saved before the harness had phases render without the table
    del results["crawlmill"][0]["common_phases"], results["crawlmill"][1]["common_phases"]
    del results["datatrove"][0]["common_phases"]
    assert sbs.phase_table(sbs.summarize(results, 100, 2), cores=2) == []


CHILD_MB, PARENT_MB, CHILD_CPU_S = 300, 100, 1.0
TREE = textwrap.dedent(
    f"""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import time; b = bytearray({CHILD_MB} * 2**20); b[::4096] = b'x' * len(b[::4096]);"
        "t = time.process_time()\\nwhile time.process_time() - t < {CHILD_CPU_S}: pass\\n"
        "time.sleep(2.5)"])
    # a grandchild re-parented to init, like datatrove's forkserver: sampled, then ended
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              start_new_session=True)
    print(orphan.pid, flush=True)
    buf = bytearray({PARENT_MB} * 2**20); buf[::4096] = b"y" * len(buf[::4096])
    child.wait()
    """
)


def test_run_measured_sums_the_tree_and_ends_what_it_left_behind():
    result = sbs.run_measured([sys.executable, "-c", TREE], interval=0.05)
    assert result["rc"] == 0, result["output"]
    # parent + child were alive together: the peak counts both (a single process: < 310)
    assert result["peak_rss_mb"] > CHILD_MB + PARENT_MB * 0.9
    # the child's busy second is counted (the rest of the tree mostly sleeps)
    assert CHILD_CPU_S * 0.9 < result["cpu_seconds"] < CHILD_CPU_S + 1.5
    orphan = int(result["output"].split()[0])
    try:
        proc = psutil.Process(orphan)
        proc.wait(timeout=10)  # killed by run_measured: reaped by init
    except psutil.NoSuchProcess:
        pass
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == "zombie"


@pytest.fixture(scope="module")
def datatrove_python() -> Path:
    if not sbs.DATATROVE_PYTHON.exists():
        pytest.skip(f"{sbs.DATATROVE_PYTHON} is absent: `make bench-venv` builds the peer's venv")
    return sbs.DATATROVE_PYTHON


def test_datatrove_peer_runs_offline_on_our_models(tmp_path, datatrove_python):
    """A few real records through datatrove's whole pipeline: every record accounted for,
    tokens from our Qwen tokenizer.json (EOS 151643 ends every document)."""
    from pipeline.assets import lid_model_path, qwen_tokenizer_json_path

    files = sbs.split_warc(SAMPLE, tmp_path / "input", 2)
    models = {"lid": str(lid_model_path()), "tokenizer": str(qwen_tokenizer_json_path())}
    out = tmp_path / "dt"
    records = sum(len(record_ids(f)) for f in files)
    result = sbs.run_datatrove(tmp_path / "input", out, 2, models, records)
    silent = sbs.silent_losses(records, result["docs_out"], result["recorded_rejects"])
    assert result["docs_out"] > 0 and 0 <= silent < records
    forwarded = result["step_stats"]["tokenize/MinHash stage 4"].get("forwarded", 0)
    assert forwarded == result["docs_out"]
    ends, tokens = [], []
    for index in sorted((out / "tokens").rglob("*.ds.index")):
        data = index.read_bytes()
        ends = [e for (e,) in struct.iter_unpack("<Q", data)]
        ids = [t for (t,) in struct.iter_unpack("<I", index.with_suffix("").read_bytes())]
        tokens += ids
        assert all(ids[e - 1] == 151643 for e in ends)
    assert len(tokens) == result["tokens_out"] and max(tokens) < 151665
    # its phases, joined: the records in, the documents through its filters into the
    # dedup, the dedup's survivors out with every token
    phases = result["common_phases"]
    assert phases["documents"]["docs_in"] == records
    assert phases["documents"]["docs_out"] == phases["dedup"]["docs_in"] >= result["docs_out"]
    assert phases["tokens and shards"]["docs_out"] == result["docs_out"]
    assert phases["tokens and shards"]["tokens_out"] == result["tokens_out"]
    assert all(p["peak_rss_mb"] > 0 and p["wall"] > 0 for p in phases.values())
    assert json.loads((out / "logs" / "documents" / "executor.json").read_text())


def test_crawlmill_and_floor_account_for_every_record(tmp_path):
    """crawlmill with the equal settings on a real WARC loses nothing silently; the
    floor extracts no more pages than there are records."""
    files = sbs.split_warc(SAMPLE, tmp_path / "input", 2)
    result = sbs.run_crawlmill(files, tmp_path / "cm", 2, ["extract.extractor=trafilatura"])
    records = sum(len(record_ids(f)) for f in files)
    assert sbs.silent_losses(records, result["docs_out"], result["recorded_rejects"]) == 0
    assert result["docs_out"] > 0 and result["tokens_out"] > result["docs_out"]
    assert set(result["phases"]) == {"scan", "documents (read..tokenize)", "dedup", "write"}
    phases = result["common_phases"]
    assert phases["documents"]["docs_in"] == records
    assert phases["documents"]["docs_out"] == phases["dedup"]["docs_in"] >= result["docs_out"]
    assert phases["dedup"]["docs_out"] == phases["tokens and shards"]["docs_out"]
    assert phases["tokens and shards"]["docs_out"] == result["docs_out"]
    assert phases["tokens and shards"]["tokens_out"] == result["tokens_out"]
    # the tree held Ray, the actors and their extractors while documents were processed
    assert phases["documents"]["peak_rss_mb"] > 300
    assert sum(p["wall"] for p in phases.values()) < result["wall"]
    floor = sbs.run_floor(files, "resiliparse")
    assert 0 < floor["extracted"] <= floor["pages"] <= records
    # CPU of the whole tree (driver, Ray, actors, extractor children) and of the floor
    assert result["cpu_seconds"] > floor["cpu_seconds"] > 0
    tuned = sbs.run_floor(files, "trafilatura", tuned=True)
    assert tuned["pages"] == floor["pages"] and 0 < tuned["extracted"] <= tuned["pages"]


def test_same_shards_compares_every_byte_and_every_name(tmp_path):
    def shards(name: str, files: dict[str, bytes]) -> Path:
        (tmp_path / name / "shards").mkdir(parents=True)
        for file, data in files.items():
            (tmp_path / name / "shards" / file).write_bytes(data)
        return tmp_path / name

    a = shards("a", {"shard-00000.arrow": b"abc", "shard-00001.arrow": b"de"})
    assert sbs.same_shards(
        a, shards("b", {"shard-00000.arrow": b"abc", "shard-00001.arrow": b"de"})
    )
    assert not sbs.same_shards(
        a, shards("c", {"shard-00000.arrow": b"abc", "shard-00001.arrow": b"dE"})
    )
    assert not sbs.same_shards(a, shards("d", {"shard-00000.arrow": b"abc"}))
