"""Run the pipeline on Ray: plan the work, stream the chunks, then write the outputs.

A run has two phases, with two global barriers between them (dedup/barrier.py: exact and
near duplicates; mixers/rebalance.py: a rate per domain, applied by the write phase):

1. **documents** (streaming, on Ray). Every input file is scanned once for record
   offsets and cut into chunks of `engine.chunk_records` records, so the records of one
   big WARC spread over every worker (datatrove gives a whole file to one task). The
   driver hands the chunks to a pool of Ray actors, one per CPU; each owns the phase's stages
   (extraction, language ID, tokenization: models loaded once in `__init__`), reads its
   chunk straight from the filesystem, runs the stages batch by batch, and writes one
   Parquet part `_work/docs/FFFFF-CCCCC.parquet` holding every row, kept or dropped.
   A part exists only once complete (temp name + rename), so it is the chunk's marker:
   a rerun after a crash skips the chunks whose part exists.

Two global dedup barriers frame it (dedup/, docs/DEDUP.md): before it, exact dedup by
payload digest / URL (dedup/pre.py: duplicate records are marked before the first stage,
so they are never extracted); after it, exact + MinHash/LSH dedup over the parts
(dedup/barrier.py). Each leaves a side table and a done.json; a rerun skips a finished one.

2. **write** (a barrier, in the driver). Parts are read in (file, chunk) order, kept rows
   go to the token shards, the others to `rejected/`, and `manifest.json` is written last.
   The order depends only on the input, never on which worker finished first, so the
   same input + config give byte-identical shards whatever the parallelism.

Stages never import Ray; only this module does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dedup.barrier import (
    DedupConfigError,
    apply_decisions,
    dedup_phase,
    lsh_params,
    run_decisions,
)
from dedup.pre import PreDecisions, pre_decisions, pre_dedup_phase
from mixers import rebalance
from pipeline import __version__
from pipeline import schema as S
from pipeline.config import Config, ConfigError, check_min_max, config_from_dict
from pipeline.io import atomic_path, crash_point, expand_inputs, read_parquet, write_problem
from pipeline.progress import Progress, log_stderr
from pipeline.shards import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    SHARDS_DIR,
    ShardWriter,
    write_manifest,
)
from pipeline.warc import Chunk, read_chunk, scan_chunks

WORK_DIR = "_work"
REJECTED_DIR = "rejected"
STATS_FILE = "stats.json"  # record accounting: deterministic
TIMINGS_FILE = "timings.json"  # seconds and rates: differ run to run, kept apart
CHUNK_PLAN = "chunks.json"  # under WORK_DIR: the chunks of the first run, kept for resumes


class RunError(RuntimeError):
    """A run that cannot start (wrong output dir, missing model ...): nothing was done."""


class RunStopped(RuntimeError):
    """A run that stopped partway (its workers died): the parts it finished are kept, and
    the same command resumes it. The CLI exits 1 for it, 2 for a `RunError`."""


# --- The stages of the documents phase ------------------------------------------------------


def build_stages(cfg: Config) -> list:
    """The streaming stages, in order. Each is a callable on a pyarrow.Table batch."""
    from dedup.stage import DedupSignatureStage
    from filters.classifier import QualityClassifierStage
    from filters.langid import LangIdBeforeExtractionStage, LangIdStage
    from filters.rules import TextFilterStage
    from filters.urls import UrlFilterStage
    from mixers.domains import DomainStage
    from pipeline.extract import ExtractStage
    from pipeline.tokenize import TokenizeStage

    disabled = cfg.filters.disabled_rules
    return [
        # URL filter first: a blocked page is never extracted
        UrlFilterStage(cfg.filters.urls, disabled),
        # nor is a page that is plainly in an unwanted language (with a languages list)
        *(
            [LangIdBeforeExtractionStage(cfg.langid, cfg.extract)]
            if langid_before_extraction(cfg)
            else []
        ),
        ExtractStage(cfg.extract),
        LangIdStage(cfg.langid),
        # rule filters (stats once per document), then the classifier on the cleaned text
        TextFilterStage(cfg.filters),
        QualityClassifierStage(cfg.filters.classifier, disabled),
        # domain label (URL rules, then the classifier) for the rebalancing barrier
        DomainStage(cfg.domains),
        # dedup keys (exact hash, MinHash) of the final text, for the global dedup step
        DedupSignatureStage(cfg.dedup),
        TokenizeStage(cfg.tokenizer),
    ]


def langid_before_extraction(cfg: Config) -> bool:
    """Whether language ID runs on a cheap text before trafilatura too
    (`langid.before_extraction`: "auto" or true, with a `languages` list). Not before
    resiliparse: it is the cheap extractor itself, so there is nothing to gain."""
    setting, languages = cfg.langid.before_extraction, cfg.langid.languages
    return setting is not False and languages != "all" and cfg.extract.extractor != "resiliparse"


def check_models(cfg: Config) -> dict:
    """Load the models once in the driver so a missing model fails before any work.
    Returns the tokenizer's identity for the manifest."""
    from filters.langid import LangIdStage
    from pipeline.tokenize import load_tokenizer

    def config_error(key: str, exc: Exception) -> ConfigError:
        message = str(exc)
        return ConfigError(message if message.startswith(key) else f"{key}: {message}")

    try:
        LangIdStage(cfg.langid)
    except (FileNotFoundError, ValueError) as exc:
        raise config_error("langid.model", exc) from None
    from filters.classifier import QualityClassifierStage
    from filters.urls import UrlFilterStage

    try:
        UrlFilterStage(cfg.filters.urls, cfg.filters.disabled_rules)
    except (FileNotFoundError, ValueError) as exc:
        raise config_error("filters.urls", exc) from None
    try:
        QualityClassifierStage(cfg.filters.classifier, cfg.filters.disabled_rules)
    except (FileNotFoundError, ValueError) as exc:
        raise config_error("filters.classifier", exc) from None
    from mixers.domains import DomainStage

    try:
        DomainStage(cfg.domains)
    except (FileNotFoundError, ValueError) as exc:
        raise config_error("domains", exc) from None
    try:
        tokenizer = load_tokenizer(cfg.tokenizer)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise config_error("tokenizer", exc) from None
    return {
        "name": tokenizer.name,
        "sha256": tokenizer.sha256,
        "eos_id": tokenizer.eos_id,
        "vocab_size": tokenizer.vocab_size,
        "append_eos": cfg.tokenizer.append_eos,
    }


def check_cross_key_config(cfg: Config) -> None:
    """Settings that span several keys (bands x rows <= num_perm, rebalancing needs
    domain labels, language ID before extraction needs a languages list, a minimum not
    above its maximum), before any work."""
    check_min_max(cfg)
    if cfg.dedup.enabled and cfg.dedup.near.enabled:
        try:
            lsh_params(cfg.dedup.near)
        except DedupConfigError as exc:
            raise ConfigError(str(exc)) from None
    message = rebalance.check_config(cfg)
    if message:
        raise ConfigError(message)
    if cfg.langid.before_extraction is True and cfg.langid.languages == "all":
        raise ConfigError(
            "langid.before_extraction: needs langid.languages to be a list (with all "
            "languages kept there is nothing to drop before extraction)"
        )


def part_name(chunk: Chunk) -> str:
    return S.part_name(chunk.file_index, chunk.chunk_index)


def stage_clock(stage=None) -> tuple[float, float | None]:
    """(wall, CPU) clocks for timing a stage: CPU is this process's CPU time plus that of
    the stage's child processes (the extractor's; what a child used before the stage's
    first batch, its imports, is not counted), None where a child's cannot be read (no
    /proc): that stage's CPU seconds are then its wall seconds."""
    child = getattr(stage, "child_cpu_seconds", None)
    child_seconds = child() if child is not None else 0.0
    cpu = None if child_seconds is None else time.process_time() + child_seconds
    return time.perf_counter(), cpu


def process_chunk(
    chunk: Chunk, cfg: Config, stages: list, parts_dir: Path, pre: PreDecisions | None = None
) -> dict:
    """Read one chunk, run the stages batch by batch, write its part. Returns its stats,
    with each step's CPU seconds (`cpu_seconds`) and wall seconds (`wall_seconds`).
    `pre`: the pre-extraction dedup decisions; their rows are dropped before any stage."""
    cpu_seconds: Counter = Counter()
    wall_seconds: Counter = Counter()

    def timed(name: str, stage, start: tuple[float, float | None]) -> None:
        (wall_start, cpu_start), (wall_end, cpu_end) = start, stage_clock(stage)
        wall_seconds[name] += wall_end - wall_start
        both = cpu_start is not None and cpu_end is not None
        cpu_seconds[name] += cpu_end - cpu_start if both else wall_end - wall_start

    start = stage_clock()
    raw = read_chunk(chunk, cfg.read.max_payload_bytes)
    if pre is not None:
        raw = pre.mark(raw, chunk.file_index, chunk.chunk_index)  # never extracted
    timed("read", None, start)

    outputs = []
    for record_batch in raw.to_batches(max_chunksize=cfg.engine.batch_rows):
        batch = pa.Table.from_batches([record_batch], schema=raw.schema)
        for stage in stages:
            start = stage_clock(stage)
            batch = stage(batch)
            timed(stage.name, stage, start)
        outputs.append(batch.select(S.DOC_SCHEMA.names).cast(S.DOC_SCHEMA))
    docs = pa.concat_tables(outputs) if outputs else S.DOC_SCHEMA.empty_table()

    start = stage_clock()
    with atomic_path(parts_dir / part_name(chunk)) as tmp:
        pq.write_table(docs, tmp, compression="zstd")
    timed("write_part", None, start)

    kept = pc.is_null(docs[S.DROP_REASON])
    return {
        "file_index": chunk.file_index,
        "chunk_index": chunk.chunk_index,
        "records": docs.num_rows,
        "kept": int(pc.sum(kept).as_py() or 0),
        "extracted": int(pc.sum(pc.is_valid(docs[S.TEXT])).as_py() or 0),
        "cpu_seconds": json.dumps(cpu_seconds),
        "wall_seconds": json.dumps(wall_seconds),
    }


class ChunkWorker:
    """A Ray actor, one per CPU: builds the stages once, then processes one chunk per call."""

    def __init__(self, config: dict, parts_dir: str):
        self.cfg = config_from_dict(config)
        self.parts_dir = Path(parts_dir)
        self.stages = build_stages(self.cfg)
        for stage in self.stages:  # extractor children import while the first chunk is read
            if hasattr(stage, "start"):
                stage.start()
        self.pre = pre_decisions(self.cfg, self.parts_dir.parent)

    def process(self, chunk: dict) -> dict:
        import ray

        crash_point("documents:chunk")  # tests: a worker dies mid-run
        crash_point(f"documents:chunk:{chunk['file_index']}-{chunk['chunk_index']}")
        stats = process_chunk(Chunk(**chunk), self.cfg, self.stages, self.parts_dir, self.pre)
        # Which Ray node did the work: for timings.json (cluster spread), never for data files.
        return {**stats, "node": ray.get_runtime_context().get_node_id()}


# --- Ray ----------------------------------------------------------------------------------


# Settings for the embedded local Ray, read by the processes ray.init starts (a variable
# already set by the user wins):
# - Token auth (on by default in Ray 2.60) guards clusters other users can reach; a
#   private local instance does not need it.
# - The raylet connects to the object store it has just started in a thread of its own;
#   when the store is not listening yet, it waits raylet_client_connect_timeout_milliseconds
#   (1,000) before the next of raylet_client_num_connect_attempts (10). That race cost 4 of
#   8 local starts here a whole second (ray.init 3.0-3.1 s against 2.0-2.1 s). 100 ms x
#   100 attempts keeps Ray's 10 s budget (a big object store can take seconds to map)
#   and took all 8 to 2.1-2.2 s.
LOCAL_RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_raylet_client_connect_timeout_milliseconds": "100",
    "RAY_raylet_client_num_connect_attempts": "100",
}


# Once Ray has started its processes, ray.init asks the GCS for the new node, 0.1 s later
# (ray._private.services.get_node). When the raylet has not registered yet, the C++ accessor
# behind that call sleeps a whole second before asking again (GetNode in Ray's
# global_state_accessor.cc; ray-project/ray#55389 notes the hidden sleep). Here the raylet
# registers ~0.5 s after its start, so every local start idled ~0.5 s more than it had to.
# Asking every 20 ms first (`raylet_registered`, on the GCS's node table, which answers at
# once) and only then calling Ray's get_node: ray.init 1.89-1.97 s -> 1.45-1.52 s, four
# alternating rounds (20-27 polls each). Past RAYLET_WAIT_SECONDS, Ray's own wait and error.
RAYLET_POLL_SECONDS = 0.02
RAYLET_WAIT_SECONDS = 10.0


def raylet_registered(gcs_address: str, node_id: str, timeout: float) -> bool:
    """Whether the GCS at `gcs_address` lists node `node_id` (hex) as alive within
    `timeout` seconds, asking every RAYLET_POLL_SECONDS."""
    from ray._private.services import _get_gcs_client_options
    from ray._private.state import GlobalState

    state = GlobalState()
    state._initialize_global_state(_get_gcs_client_options(gcs_address))
    deadline = time.monotonic() + timeout
    try:
        while True:
            if any(node["NodeID"] == node_id and node["Alive"] for node in state.node_table()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(RAYLET_POLL_SECONDS)
    finally:
        state.disconnect()


@contextlib.contextmanager
def quick_raylet_wait():
    """While a local ray.init runs: Ray's get_node is called only once `raylet_registered`
    says the node is there. Ray's private API; if it has changed, Ray runs as it ships."""
    try:
        from ray._private import services

        ray_get_node = services.get_node
    except (ImportError, AttributeError):
        yield
        return

    def get_node(gcs_address, node_id):
        with contextlib.suppress(Exception):
            raylet_registered(gcs_address, node_id, RAYLET_WAIT_SECONDS)
        return ray_get_node(gcs_address, node_id)

    services.get_node = get_node
    try:
        yield
    finally:
        services.get_node = ray_get_node


# Head-node processes the embedded local Ray does without. Each is a Python process that
# imports Ray while ray.init waits, on a machine whose cores the run needs:
# - the autoscaler monitor: a fixed local node has nothing to scale (and `stop_ray` killed
#   it at the end anyway);
# - the log monitor: it streams workers' logs to the driver, and log_to_driver is off
#   (the logs stay in Ray's session directory);
# - the API server ("dashboard" head, started even with include_dashboard=False): the job
#   and state APIs, which a crawlmill run does not use.
# Measured here, ray.init alone then a few idle seconds, two rounds each: ray.init
# 1.31-1.36 -> 0.80-0.81 s, Ray's processes 2.1-2.2 -> 1.3 CPU s.
LOCAL_RAY_SKIPPED = ("start_monitor", "start_log_monitor", "start_api_server")


@contextlib.contextmanager
def lean_local_ray():
    """While a local ray.init runs, the head node does not start LOCAL_RAY_SKIPPED. Ray's
    private API; if it has changed, Ray runs as it ships."""
    try:
        from ray._private.node import Node

        originals = {name: getattr(Node, name) for name in LOCAL_RAY_SKIPPED}
    except (ImportError, AttributeError):
        yield
        return
    for name in LOCAL_RAY_SKIPPED:
        setattr(Node, name, lambda self, *args, **kwargs: None)
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(Node, name, method)


def starts_local_ray(ray_address: str | None) -> bool:
    """Whether `init_ray` is to start an embedded local Ray: no Ray in this process yet,
    and no cluster address (`--ray-address` or RAY_ADDRESS) to join."""
    import ray

    return not (ray.is_initialized() or ray_address or os.environ.get("RAY_ADDRESS"))


def cluster_address(ray_address: str | None) -> tuple[str, str]:
    """(what names it, the address) of the cluster a run joins: --ray-address, else
    RAY_ADDRESS (set: see `starts_local_ray`)."""
    if ray_address:
        return "--ray-address", ray_address
    return "RAY_ADDRESS", os.environ["RAY_ADDRESS"]


# How long a Ray address may take to accept a TCP connection before the run gives up on it.
RAY_CONNECT_SECONDS = 10.0


def check_ray_address(ray_address: str | None) -> None:
    """Raise RunError, before any work, when the cluster address a run is to join
    (--ray-address, else RAY_ADDRESS) does not accept a TCP connection. Ray itself would
    retry a refused address for more than ten minutes here (and one that answers but is
    no Ray for ~20 s), then raise with a traceback. "auto" and addresses without a port
    are left to Ray."""
    import socket

    if not ray_address and not os.environ.get("RAY_ADDRESS"):
        return
    where, address = cluster_address(ray_address)
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), RAY_CONNECT_SECONDS).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunError(
            f"{where} {address}: cannot connect ({reason}); check the address, or leave "
            f"{where} out to run on a local Ray"
        ) from None


def init_ray(ray_address: str | None, num_cpus: int | None) -> int:
    """Start (or join) Ray; return the number of CPUs to use."""
    import logging

    import ray

    if starts_local_ray(ray_address):
        # Embedded local Ray: always a new private instance ("local"), never a cluster
        # that happens to run on this machine (plain ray.init() would join the last one
        # `ray start` launched).
        for key, value in LOCAL_RAY_ENV.items():
            os.environ.setdefault(key, value)
        with quick_raylet_wait(), lean_local_ray():
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
    elif not ray.is_initialized():
        where, address = cluster_address(ray_address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as exc:  # after Ray's own retries (~20-40 s here)
            raise RunError(
                f"{where} {address}: no Ray cluster answered ({exc}); check the address, "
                f"or leave {where} out to run on a local Ray"
            ) from None
    available = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(available, num_cpus or available))


def stop_ray() -> None:
    """Stop the local Ray instance this process started, or leave the cluster it joined.

    `run` calls this (in a thread, during the write phase) for an embedded Ray it started,
    the CLI once a run is over for any other, rather than leave it to Ray's exit hook, which
    first sleeps 0.5 s for log lines this driver does not forward. And Ray stops its
    processes one by one, each with a 1 s SIGTERM grace: the autoscaler monitor uses all
    of it (measured: 1.01 s of a 1.38 s ray.shutdown()). An embedded local instance has
    no autoscaler with anything to finish, so its monitor is killed outright first:
    1.4 s less at the end of every run (`lean_local_ray` now keeps it from starting; this
    stays for a Ray whose private API it does not know). On a cluster address there is
    no local monitor: shutdown only disconnects."""
    import ray

    if not ray.is_initialized():
        return
    # Ray's private handle on the processes it started; left alone if it ever changes.
    with contextlib.suppress(Exception):
        from ray._private import ray_constants, worker

        node = worker._global_node
        if node is not None and node.head:
            for process_info in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
                process_info.process.kill()
                process_info.process.wait(timeout=5)
    ray.shutdown()


def scan_all(files: list[str], chunk_records: int) -> list[Chunk]:
    """Cut every input file into chunks: one Ray task per file, in parallel once Ray is up.

    (A thread of the driver once scanned files while Ray started; with the embedded Ray's
    start down to ~0.8 s (`lean_local_ray`) it slowed that start more than it saved,
    holding the GIL that ray.init's own Python needs: Ray up and the chunks known
    1.33-1.43 s after the model checks with it, 1.21-1.26 s with tasks, five alternating
    rounds on realpages' two files.)"""
    import ray

    scan = ray.remote(num_cpus=1)(scan_chunks)
    refs = [scan.remote(path, i, chunk_records) for i, path in enumerate(files)]
    return [chunk for chunks in ray.get(refs) for chunk in chunks]


# --- The run ------------------------------------------------------------------------------


@dataclass
class RunSummary:
    output: str
    records: int = 0
    docs: int = 0
    tokens: int = 0
    rejected: int = 0
    shards: int = 0
    languages: dict = field(default_factory=dict)  # lang -> {"docs", "tokens"}
    rejected_by_reason: dict = field(default_factory=dict)
    repeats: int = 0  # rebalancing's extra copies, included in docs
    rebalance: dict = field(default_factory=dict)  # rebalance.json (mixers/rebalance.py)
    seconds: float = 0.0
    phase_seconds: dict = field(default_factory=dict)  # what timings.json's "seconds" holds
    resumed_chunks: int = 0
    processed_chunks: int = 0
    already_complete: bool = False
    read_error_examples: list = field(default_factory=list)  # stats.json's first few


def _prepare_output(out: Path, files: list[str], cfg: Config) -> Path:
    """Create the run directory, or check that an existing one is this same run."""
    work = out / WORK_DIR
    identity = {"inputs": files, "config": cfg.output_dict(), "crawlmill_version": __version__}
    identity_file = work / "run.json"
    if identity_file.exists():
        previous = json.loads(identity_file.read_text())
        if previous != json.loads(json.dumps(identity)):
            raise RunError(
                f"{out} holds a run with other inputs or config; use a new --output "
                f"directory (or delete {out} to start over)"
            )
    elif out.exists() and not out.is_dir():
        raise RunError(f"--output {out}: exists and is not a directory; choose another --output")
    elif out.exists() and any(out.iterdir()):
        raise RunError(
            f"{out} exists and is not a crawlmill run directory; choose another --output"
        )
    try:
        (work / "docs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"--output {out}: cannot create it: {write_problem(out, exc)}") from None
    identity_file.write_text(json.dumps(identity, indent=2, sort_keys=True))
    return work


def _load_or_scan_chunks(work: Path, files: list[str], cfg: Config) -> list[Chunk]:
    """The chunk plan is saved on the first run and reused on resume, so a rerun with
    other engine settings still completes the same chunks."""
    plan = work / CHUNK_PLAN
    if plan.exists():
        return [Chunk(**c) for c in json.loads(plan.read_text())]
    chunks = scan_all(files, cfg.engine.chunk_records)
    with atomic_path(plan) as tmp:
        Path(tmp).write_text(json.dumps([asdict(c) for c in chunks]))
    return chunks


def run(
    cfg: Config,
    inputs: list[str],
    output: str | Path,
    *,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    log=log_stderr,
) -> RunSummary:
    """Run the whole pipeline. Config, inputs and models are checked before any work."""
    started = time.perf_counter()
    files = expand_inputs(inputs)
    tokenizer_info = check_models(cfg)
    check_cross_key_config(cfg)
    embedded_ray = starts_local_ray(ray_address)
    if not embedded_ray:
        check_ray_address(ray_address)
    out = Path(output)
    work = _prepare_output(out, files, cfg)
    parts_dir = work / "docs"

    if (out / MANIFEST).exists():
        manifest = json.loads((out / MANIFEST).read_text())
        log(f"{out}: run already complete (delete {out / MANIFEST} to rewrite the shards)")
        summary = summary_from_manifest(manifest, out)
        summary.already_complete = True
        return summary

    workers = init_ray(ray_address, num_cpus)
    log(f"crawlmill {__version__}: {len(files)} input file(s), {workers} worker(s)")
    seconds: dict[str, float] = {}  # phase -> wall seconds (timings.json "seconds")
    windows: dict[str, list[float]] = {}  # phase -> [start, end], Unix time (for benches)

    @contextlib.contextmanager
    def phase(name: str):
        start, start_clock = time.perf_counter(), time.time()
        yield
        seconds[name] = time.perf_counter() - start
        windows[name] = [start_clock, time.time()]

    with phase("scan"):
        chunks = _load_or_scan_chunks(work, files, cfg)
    todo = [c for c in chunks if not (parts_dir / part_name(c)).exists()]
    total_records = sum(c.n_records for c in todo)
    log(
        f"  scanned {sum(c.n_records for c in chunks):,} records into {len(chunks)} chunks "
        f"in {seconds['scan']:.1f}s; {len(chunks) - len(todo)} chunk(s) already done"
    )

    # Global pass before extraction: records whose payload (or URL) was seen earlier in
    # the input are never extracted (_work/dedup_pre/, done.json = done: a rerun skips it).
    with phase("dedup_pre_phase"):
        pre = pre_dedup_phase(cfg, work, chunks, log)

    stage_cpu: Counter = Counter()
    stage_wall: Counter = Counter()
    chunks_per_node: Counter = Counter()
    with phase("documents_phase"):
        if todo:
            cpu, wall, nodes = _run_documents_phase(
                cfg, todo, parts_dir, workers, total_records, log
            )
            stage_cpu.update(cpu)
            stage_wall.update(wall)
            chunks_per_node.update(nodes)

    # Barrier: global exact + near dedup over every part; a side table of drops that the
    # write phase applies (_work/dedup/, done.json = done: a rerun skips it).
    with phase("dedup_phase"):
        dedup = dedup_phase(cfg, work, log)
    log(f"  dedup phase: {seconds['dedup_phase']:,.1f}s")

    # Barrier: documents and tokens per domain after dedup -> a rate per domain
    # (_work/rebalance/rates.json: a rerun skips it); the write phase applies the rates.
    with phase("rebalance_phase"):
        _rebalance_barrier(cfg, work, chunks, log)

    # Nothing from here on uses Ray: an embedded Ray this run started stops while the shards
    # are written. Its shutdown is ~0.3 s of waiting for its processes to exit (0.04 CPU s),
    # the write phase ~0.3 s on realpages, so the run ends ~0.3 s sooner.
    stopping = threading.Thread(target=stop_ray, name="stop-ray") if embedded_ray else None
    if stopping is not None:
        stopping.start()
    try:
        with phase("write_phase"):
            manifest, stats = write_outputs(cfg, files, chunks, out, tokenizer_info, log)
    finally:
        if stopping is not None:
            stopping.join()

    summary = summary_from_manifest(manifest, out)
    summary.seconds = time.perf_counter() - started
    summary.resumed_chunks = len(chunks) - len(todo)
    summary.processed_chunks = len(todo)
    summary.phase_seconds = {"total": summary.seconds, **seconds}
    timings = {
        "workers": workers,
        "seconds": summary.phase_seconds,
        # when each phase ran, in Unix time: lines the phases up with outside samples
        # (bench/side_by_side.py's process-tree memory per phase)
        "phase_windows": windows,
        # per stage, summed over chunks: CPU of the worker and the stage's child process
        # (work, whatever the load), and wall (work plus waiting for a core)
        "stage_cpu_seconds": dict(stage_cpu),
        "stage_wall_seconds": dict(stage_wall),
        "chunks_processed": len(todo),
        "chunks_resumed": summary.resumed_chunks,
        # Ray node id -> chunks it processed in this invocation (work spread on a cluster)
        "chunks_per_node": dict(sorted(chunks_per_node.items())),
        "dedup_rounds": dedup.timings.get("rounds", {}) if dedup else {},
        "dedup_pre_rounds": pre.timings.get("rounds", {}) if pre else {},
    }
    (out / TIMINGS_FILE).write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return summary


def _ordered_parts(chunks: list[Chunk], parts_dir: Path) -> list[tuple[int, int, Path]]:
    """(file_index, chunk_index, part path) in input order."""
    ordered = sorted(chunks, key=lambda c: (c.file_index, c.chunk_index))
    return [(c.file_index, c.chunk_index, parts_dir / part_name(c)) for c in ordered]


def _rebalance_barrier(cfg: Config, work: Path, chunks: list[Chunk], log) -> dict | None:
    decisions = run_decisions(cfg, work)

    def after_dedup(docs, file_index, chunk_index):
        return apply_decisions(docs, decisions, file_index, chunk_index)

    parts = _ordered_parts(chunks, work / "docs")
    return rebalance.rebalance_phase(cfg, work, parts, after_dedup, log)


# A chunk is handed to another worker when its worker dies, at most this many times in all.
MAX_CHUNK_DEATHS = 2


def _run_documents_phase(
    cfg, todo, parts_dir, workers, total_records, log
) -> tuple[Counter, Counter, Counter]:
    """Stream the chunks through a pool of actors, one per worker, one chunk in flight
    each (so no chunk waits behind another at the end of the run); return (stage CPU
    seconds, stage wall seconds, chunks per Ray node).

    Plain actors and `ray.wait`, not Ray Data: a chunk is already the unit of work and
    its part file its result, and Ray Data's executor cost ~0.24 s of scheduling per
    chunk plus its own helper actors (docs/BENCH.md: 15.4-16.8 s against 11.9-12.4 s for
    this phase on realpages). A chunk whose actor dies (its node was lost, or the process
    was killed) goes back to the queue for the others; a part is written whole or not at
    all, so nothing is lost or written twice. A chunk that kills MAX_CHUNK_DEATHS workers
    stops the run, naming it, rather than taking down the whole pool; so does a pool with
    no actor left. Either way the same command resumes the run. Dead actors are not
    replaced: on a cluster that lost a node, a replacement could wait forever for a CPU."""
    import ray
    from ray.exceptions import RayActorError

    worker_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(ChunkWorker)
    config = cfg.to_dict()
    parts = str(parts_dir.resolve())
    idle = [worker_class.remote(config, parts) for _ in range(workers)]
    queue = [asdict(chunk) for chunk in todo]
    queue.reverse()  # pop() from the end: chunks go out in input order
    running: dict = {}  # result ref -> (actor, chunk)
    stage_cpu: Counter = Counter()
    stage_wall: Counter = Counter()
    chunks_per_node: Counter = Counter()
    deaths: Counter = Counter()  # (file, chunk) -> workers that died running it
    done = records = kept = 0
    last_death = ""
    progress = Progress("documents phase", total_records, "records", log)
    while queue or running:
        while idle and queue:
            actor, chunk = idle.pop(), queue.pop()
            running[actor.process.remote(chunk)] = (actor, chunk)
        if not running:
            raise RunStopped(
                f"every worker died ({sum(deaths.values())} lost); {len(queue)} chunk(s) left: "
                f"run the same command again to resume. The last death: {last_death}"
            )
        ready, _ = ray.wait(list(running), num_returns=1)
        actor, chunk = running.pop(ready[0])
        try:
            row = ray.get(ready[0])
        except RayActorError as exc:
            key = (chunk["file_index"], chunk["chunk_index"])
            deaths[key] += 1
            end = "end of file" if chunk["end"] is None else chunk["end"]
            where = f"{chunk['source']} chunk {key[1]} (bytes {chunk['start']}-{end})"
            last_death = f"{where}: {str(exc).strip()[:2000]}"
            if deaths[key] >= MAX_CHUNK_DEATHS:
                raise RunStopped(
                    f"{where} killed {deaths[key]} workers; the run stops here (run the same "
                    f"command again to resume, or leave that file out). The last death: "
                    f"{last_death}"
                ) from None
            log(f"  a worker died ({type(exc).__name__}) on {where}; it goes to another worker")
            queue.append(chunk)
            continue
        idle.append(actor)
        done += 1
        records += row["records"]
        kept += row["kept"]
        stage_cpu.update(json.loads(row["cpu_seconds"]))
        stage_wall.update(json.loads(row["wall_seconds"]))
        chunks_per_node[row["node"]] += 1
        progress.update(records, f"{done}/{len(todo)} chunks, {kept:,} kept")
    for actor in idle:
        ray.kill(actor)
    return stage_cpu, stage_wall, chunks_per_node


# --- The write phase ----------------------------------------------------------------------


def write_outputs(
    cfg: Config,
    files: list[str],
    chunks: list[Chunk],
    out: Path,
    tokenizer_info: dict,
    log=log_stderr,
):
    """Barrier: parts in (file, chunk) order -> shards, rejected/, stats.json, manifest.json."""
    parts_dir = out / WORK_DIR / "docs"
    (out / MANIFEST).unlink(missing_ok=True)  # a manifest present means complete shards
    shards_tmp = out / WORK_DIR / "shards.new"
    rejected_tmp = out / WORK_DIR / "rejected.new"
    for d in (shards_tmp, rejected_tmp):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    writer = ShardWriter(shards_tmp, cfg.output.shard_tokens, cfg.output.rows_per_batch)
    decisions = run_decisions(cfg, out / WORK_DIR)  # dedup's drops, range by range
    rebalancer = _load_rebalancer(cfg, out / WORK_DIR)  # rates per domain (mixers/)
    repeat_rows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    pre = pre_decisions(cfg, out / WORK_DIR)  # drops before extraction: their dup_* columns
    languages: dict[str, Counter] = {}
    by_reason: Counter = Counter()
    by_stage_reason: Counter = Counter()
    by_record_type: Counter = Counter()
    rejected_weight: Counter = Counter()  # chars and tokens of rejected rows with text
    read_errors: dict = {"by_detail": Counter(), "examples": []}
    records = 0
    rejected_files = []

    by_file: dict[int, list[Chunk]] = {}
    for chunk in chunks:
        by_file.setdefault(chunk.file_index, []).append(chunk)

    rows_per_file: Counter = Counter()
    progress = Progress("write phase", len(chunks), "chunks", log)
    written = 0
    for file_index in sorted(by_file):
        rejected_parts = []
        for chunk in sorted(by_file[file_index], key=lambda c: c.chunk_index):
            docs = read_parquet(parts_dir / part_name(chunk))
            docs = apply_decisions(docs, decisions, chunk.file_index, chunk.chunk_index)
            if pre is not None:
                docs = pre.fill_clusters(docs, chunk.file_index, chunk.chunk_index)
            docs = with_text_chars(docs)
            if rebalancer is not None:
                docs, copies = rebalancer.apply(docs)
                more = np.flatnonzero(copies > 1)
                if len(more):  # rows written again in the repeat passes below
                    repeat_rows[(chunk.file_index, chunk.chunk_index)] = (more, copies[more])
            records += docs.num_rows
            rows_per_file[file_index] += docs.num_rows
            # bytes that never parsed as a record (garbage between records) have no type
            by_record_type.update(t or "unparsed" for t in docs[S.RECORD_TYPE].to_pylist())
            kept_mask = pc.is_null(docs[S.DROP_REASON])
            kept = docs.filter(kept_mask)
            writer.add(kept)
            crash_point("write_phase:shards")
            _count_languages(languages, kept)
            if rebalancer is not None:
                rebalancer.count_written(kept, repeat=False)
            rejected = docs.filter(pc.invert(kept_mask))
            if not cfg.output.keep_rejected_text:
                rejected = rejected.set_column(
                    rejected.schema.get_field_index(S.TEXT),
                    S.TEXT,
                    pa.nulls(rejected.num_rows, pa.large_string()),
                )
            by_reason.update(rejected[S.DROP_REASON].to_pylist())
            _note_read_errors(read_errors, rejected)
            rejected_weight["chars"] += pc.sum(rejected[S.TEXT_CHARS]).as_py() or 0
            rejected_weight["tokens"] += pc.sum(rejected[S.N_TOKENS]).as_py() or 0
            by_stage_reason.update(
                f"{stage}/{reason}"
                for stage, reason in zip(
                    rejected[S.DROP_STAGE].to_pylist(),
                    rejected[S.DROP_REASON].to_pylist(),
                    strict=True,
                )
            )
            rejected_parts.append(rejected.select(S.REJECTED_SCHEMA.names).cast(S.REJECTED_SCHEMA))
            written += 1
            progress.update(written, f"{writer.docs:,} docs in shards")
        name = f"part-{file_index:05d}.parquet"
        pq.write_table(pa.concat_tables(rejected_parts), rejected_tmp / name, compression="zstd")
        rejected_files.append(f"{REJECTED_DIR}/{name}")

    if rebalancer is not None:
        _write_repeats(writer, rebalancer, repeat_rows, parts_dir, languages)
    shards = writer.close()
    for final, tmp in ((out / SHARDS_DIR, shards_tmp), (out / REJECTED_DIR, rejected_tmp)):
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    docs = sum(s["docs"] for s in shards)
    tokens = sum(s["tokens"] for s in shards)
    chars = sum(s["chars"] for s in shards)
    rejected_total = sum(by_reason.values())
    stats = {
        "records": records,
        "docs_kept": docs,
        "rejected": rejected_total,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "rejected_by_stage": dict(sorted(by_stage_reason.items())),
        "records_by_type": dict(sorted(by_record_type.items())),
        "read_errors": {
            "by_detail": dict(read_errors["by_detail"].most_common()),
            "examples": read_errors["examples"],
        },
        "inputs": [{"source": files[i], "records": rows_per_file[i]} for i in range(len(files))],
    }
    # docs removed by each dedup pass, cluster size histograms (dedup/barrier.py)
    stats["dedup"] = dict(decisions.stats) if decisions else {"enabled": False}
    if cfg.dedup.enabled:  # docs removed before extraction (dedup/pre.py)
        stats["dedup"]["pre_extraction"] = pre.stats if pre else {"keys": []}
    # per domain and language: before/after docs and tokens, target and achieved shares
    stats["rebalance"] = rebalancer.report() if rebalancer else {"enabled": False}
    if rebalancer is not None:
        (out / rebalance.REPORT_FILE).write_text(
            json.dumps(stats["rebalance"], indent=2, sort_keys=True) + "\n"
        )
    repeats = rebalancer.repeats if rebalancer else 0
    (out / STATS_FILE).write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")

    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "crawlmill_version": __version__,
        "tokenizer": tokenizer_info,
        "config": cfg.output_dict(),
        "inputs": files,
        # docs include `repeats` (rebalancing's extra copies): records == docs - repeats +
        # rejected
        "totals": {
            "records": records,
            "docs": docs,
            "tokens": tokens,
            "chars": chars,
            "rejected": rejected_total,
            "repeats": repeats,
        },
        "languages": {lang: dict(c) for lang, c in sorted(languages.items())},
        "shards": shards,
        "rejected": {
            "files": rejected_files,
            "by_reason": dict(sorted(by_reason.items())),
            "chars": rejected_weight["chars"],
            "tokens": rejected_weight["tokens"],
        },
    }
    crash_point("write_phase:manifest")
    write_manifest(out, manifest)
    return manifest, stats


# stats.json "read_errors": rows per reader message, and the first rows in input order, so
# a user sees why records could not be read without opening rejected/ (the CLI prints a few).
READ_ERROR_EXAMPLES = 10


def _note_read_errors(read_errors: dict, rejected: pa.Table) -> None:
    rows = rejected.filter(pc.equal(rejected[S.DROP_REASON], S.Reason.READ_ERROR))
    for row in rows.select([S.SOURCE, S.OFFSET, S.ID, S.DROP_DETAIL]).to_pylist():
        read_errors["by_detail"][row[S.DROP_DETAIL] or "?"] += 1
        if len(read_errors["examples"]) < READ_ERROR_EXAMPLES:
            read_errors["examples"].append(row)


def with_text_chars(docs: pa.Table) -> pa.Table:
    """`text_chars` = characters of every row with text, kept or not, before rejected
    text is dropped (the report's funnel counts characters through every stage)."""
    return docs.set_column(
        docs.schema.get_field_index(S.TEXT_CHARS),
        S.TEXT_CHARS,
        pc.utf8_length(docs[S.TEXT]).cast(pa.int32()),
    )


def _count_languages(languages: dict[str, Counter], kept: pa.Table) -> None:
    langs, n_tokens_list = kept[S.LANG].to_pylist(), kept[S.N_TOKENS].to_pylist()
    chars_list = kept[S.TEXT_CHARS].to_pylist()
    for lang, n_tokens, chars in zip(langs, n_tokens_list, chars_list, strict=True):
        counts = languages.setdefault(lang, Counter())
        counts["docs"] += 1
        counts["tokens"] += n_tokens
        counts["chars"] += chars


def _load_rebalancer(cfg: Config, work: Path) -> rebalance.Rebalancer | None:
    if not cfg.rebalance.enabled:
        return None
    plan = json.loads((work / rebalance.REBALANCE_DIR / rebalance.RATES_FILE).read_text())
    return rebalance.Rebalancer(plan)


def _write_repeats(writer, rebalancer, repeat_rows: dict, parts_dir: Path, languages) -> None:
    """Upsampled documents' extra copies: pass k (1 .. max_repeats-1) walks the parts in
    input order again and writes copy k of every document with more than k copies, id
    `<id>#r<k>`. A pass never starts with the document the previous one ended with
    (mixers/rebalance.py)."""
    columns = S.SHARD_SCHEMA.names
    last_base: str | None = None
    for k in range(1, rebalancer.max_repeats):
        deferred = None  # the pass's first row, when it repeats the last row written
        wrote_in_pass = False
        for (file_index, chunk_index), (rows, copies) in sorted(repeat_rows.items()):
            take = rows[copies > k]
            if not len(take):
                continue
            path = parts_dir / S.part_name(file_index, chunk_index)
            table = read_parquet(path, columns=[*columns, S.TEXT])
            table = with_text_chars(table.take(pa.array(take, pa.int64()))).select(columns)
            table = table.set_column(
                table.schema.get_field_index(S.ID), S.ID, rebalance.repeat_ids(table[S.ID], k)
            )
            if not wrote_in_pass and deferred is None:
                first = rebalance.base_id(table[S.ID][0].as_py())
                if first == last_base:
                    deferred, table = table.slice(0, 1), table.slice(1)
            if table.num_rows:
                _add_repeats(writer, rebalancer, table, languages)
                wrote_in_pass = True
                last_base = rebalance.base_id(table[S.ID][-1].as_py())
        if deferred is not None:
            _add_repeats(writer, rebalancer, deferred, languages)
            last_base = rebalance.base_id(deferred[S.ID][0].as_py())


def _add_repeats(writer, rebalancer, table: pa.Table, languages) -> None:
    writer.add(table)
    _count_languages(languages, table)
    rebalancer.count_written(table, repeat=True)


def summary_from_manifest(manifest: dict, out: Path) -> RunSummary:
    totals = manifest["totals"]
    report = out / rebalance.REPORT_FILE
    stats = json.loads((out / STATS_FILE).read_text()) if (out / STATS_FILE).exists() else {}
    return RunSummary(
        output=str(out),
        records=totals["records"],
        docs=totals["docs"],
        tokens=totals["tokens"],
        rejected=totals["rejected"],
        shards=len(manifest["shards"]),
        languages=manifest["languages"],
        rejected_by_reason=manifest["rejected"]["by_reason"],
        repeats=totals.get("repeats", 0),
        rebalance=json.loads(report.read_text()) if report.exists() else {},
        read_error_examples=stats.get("read_errors", {}).get("examples", []),
    )
