"""crawlmill and datatrove side by side: same pages, same stages, same cores, one run.

    .venv/bin/python bench/side_by_side.py [--warc WARC] [--runs 2] [--records N]
        [--workers 2] [--results bench/RESULTS.md] [--skip datatrove,...]

What runs, each `--runs` times, interleaved so that load from other processes hits all
of them alike (docs/BENCH.md says why each is there):

- datatrove (bench/peers/datatrove_pipeline.py in .venv-datatrove, `make bench-venv`):
  WarcReader -> Trafilatura -> LanguageFilter(en, 0.65) -> Gopher repetition -> Gopher
  quality -> C4 -> FineWeb -> MinHash (its 4 stages) -> DocumentTokenizer.
- crawlmill, trafilatura: `crawlmill run` with the same recipe (EQUAL_SETTINGS below turn
  off what the peer does not do: URL filter, safety words, quality classifier, exact-hash
  pass, candidate verification; MinHash set to datatrove's 14 bands x 8 rows). With its
  English-only list, crawlmill's default `langid.before_extraction=auto` is on: pages
  that lid.176 calls another language at >= 0.8 on resiliparse's cheap text are never
  given to trafilatura.
- crawlmill, langid after: the same with `langid.before_extraction=false`, language ID
  only after extraction as in datatrove. Its shards are compared byte for byte with
  crawlmill's.
- crawlmill, resiliparse: the same with `extract.extractor=resiliparse`.
- extraction alone (the floor): each extractor on the same decoded pages, in `--workers`
  plain processes, no time limit, no pipeline. A pipeline cannot be faster than this.
  `floor` runs trafilatura as it ships; `floor-tuned` runs it as crawlmill's extractor
  child does (pipeline/trafilatura_tuning.py: lxml's C-level element class lookup,
  native guards in front of its regular expressions, jusText's paragraphs made lazily
  and its stoplist looked up by identity; same text), so the report shows what that
  gains apart from the pipeline.

Both pipelines get the same input: the WARC split round-robin into `--workers` files
(datatrove gives one file to one task, so this is how it uses every core; crawlmill reads
the same files). `--records N` takes only the first N records (a quick mode). `--repeat N`
writes every record N times (copies after the first get a new WARC-Record-ID and target
URI, bench/memory_scale.py's `renamed`, so each is a distinct record to both readers):
more of the same pages, to see which costs grow with the input and which are fixed.

Measured per run: wall seconds per phase and end to end, input records/s per core, peak
RSS and CPU seconds summed over the whole process tree (psutil, every 0.2 s, over every
descendant of the command, including Ray's and datatrove's pool workers, which
/usr/bin/time misses), records in, documents and tokens out, rejects recorded per
document, and silent losses (records in - documents out - recorded rejects). Per phase
both pipelines have (documents, dedup, tokens and shards: COMMON_PHASES), from the best
run: wall, documents in and out, documents/s per core and its ratio to datatrove's, and
the tree's peak RSS while the phase ran (from each side's phase start and end times).
Then resiliparse's text against trafilatura's on the same pages. Writes a Markdown report
(date, machine, load, versions, command) to `--results` and the raw figures beside it as
JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO.parent / "shared" / "data" / "bench" / "realpages.warc.gz"
DATATROVE_PYTHON = REPO / ".venv-datatrove" / "bin" / "python"
PEER_SCRIPT = REPO / "bench" / "peers" / "datatrove_pipeline.py"
CRAWLMILL = REPO / ".venv" / "bin" / "crawlmill"

# crawlmill's recipe narrowed to datatrove's stages, so both do the same work:
EQUAL_SETTINGS = [
    "langid.languages=[en]",  # datatrove's LanguageFilter(languages=["en"]) ...
    "langid.min_score=0.65",  # ... language_threshold=0.65 (crawlmill's default too)
    "filters.urls.enabled=false",  # not in the peer's pipeline (FineWeb has it)
    "filters.safety.enabled=false",  # crawlmill's own banned-word ratio
    "filters.classifier.enabled=false",  # fastText quality score
    "dedup.exact=false",  # datatrove has MinHash only (exact copies are near copies too)
    "dedup.pre_extraction=[]",  # nor dedup of identical payloads before extraction
    "domains.enabled=false",  # nor domain labels ...
    "rebalance.enabled=false",  # ... nor rebalancing (which would repeat documents)
    "dedup.near.num_perm=112",  # datatrove's MinhashConfig: 14 buckets x 8 hashes
    "dedup.near.bands=14",
    "dedup.near.rows=8",
    "dedup.near.verify=false",  # datatrove clusters every bucket match, unverified
]
# crawlmill's variants: what each sets on top of EQUAL_SETTINGS, and the floor it is held to
CRAWLMILL_VARIANTS = {
    # with langid.before_extraction=auto (the default): pages that are plainly not English
    # on resiliparse's cheap text never reach trafilatura
    "crawlmill": (["extract.extractor=trafilatura"], "floor"),
    # language ID after extraction only, as datatrove does it: the same output (compared
    # shard by shard below), every page extracted
    "crawlmill-langid-after": (
        ["extract.extractor=trafilatura", "langid.before_extraction=false"],
        "floor",
    ),
    "crawlmill-resiliparse": (["extract.extractor=resiliparse"], "floor-resiliparse"),
}
# variants meant to write crawlmill's very shards: each round compares them byte for byte
SAME_SHARDS_AS_CRAWLMILL = ["crawlmill-langid-after"]
# the trafilatura run that extracts every page (crawlmill skips the plainly non-English
# ones), whose texts resiliparse's are compared with
TRAFILATURA_ON_EVERY_PAGE = "crawlmill-langid-after"
PIPELINES = [
    "datatrove",
    "crawlmill",
    "floor",
    "floor-tuned",
    "crawlmill-langid-after",
    "crawlmill-resiliparse",
    "floor-resiliparse",
]


# --- Input: the WARC split into one file per worker ----------------------------------------


def split_warc(
    warc: Path, out_dir: Path, parts: int, records: int | None = None, repeat: int = 1
) -> list[Path]:
    """Record i goes to file i % parts (round-robin keeps the halves alike in page mix).

    Records are copied byte for byte (each is its own gzip member, which crawlmill's scan
    checks), so both pipelines parse exactly the same bytes. `repeat` > 1: then the whole
    input again, `repeat` - 1 times, each record renamed (new id and URI) and compressed
    as a member of its own. Returns the files."""
    sys.path.insert(0, str(REPO))
    from pipeline.warc import scan_chunks

    if repeat > 1:
        sys.path.insert(0, str(REPO / "bench"))
        from memory_scale import renamed

    chunks = scan_chunks(str(warc), 0, 1)  # one chunk per record: its byte range
    if len(chunks) == 1 and chunks[0].n_records > 1:
        raise SystemExit(f"{warc}: not one gzip member per record; cannot split it")
    if records is not None:
        chunks = chunks[:records]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"part-{i:02d}.warc.gz" for i in range(parts)]
    outs = [open(p, "wb") for p in paths]  # noqa: SIM115 (closed below)
    try:
        size = warc.stat().st_size
        with open(warc, "rb") as f:
            for copy in range(repeat):
                for i, chunk in enumerate(chunks):
                    f.seek(chunk.start)
                    member = f.read((chunk.end if chunk.end is not None else size) - chunk.start)
                    if copy:
                        record = renamed(gzip.decompress(member), copy)
                        member = gzip.compress(record, compresslevel=6, mtime=0)
                    outs[i % parts].write(member)
    finally:
        for o in outs:
            o.close()
    return paths


# --- Measuring a command and its whole process tree ----------------------------------------


TAG = "CRAWLMILL_BENCH_TAG"


def tagged(tag: str) -> list[psutil.Process]:
    """Processes whose environment carries `tag`: everything the measured command started,
    including what got re-parented to init (datatrove's forkserver and resource tracker
    outlive the process that started them)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(TAG) == tag:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def tree_usage(procs: list[psutil.Process]) -> dict[int, tuple[int, float]]:
    """pid -> (RSS bytes, user + system CPU seconds so far) of the processes and every
    descendant (Ray's raylet and workers, datatrove's pool workers and extractor
    sandboxes, crawlmill's extractor children).

    The process table is read once per call and the families found in it: psutil's
    `children(recursive=True)` reads every process's stat file on each call, and with
    one call per root (a Ray run tags ~12) the sampler itself took 2.1-2.5 CPU s of a
    30 s crawlmill run on 2 cores, slowing what it measured by ~1 s (0.6 CPU s now)."""
    children: dict[int, list[psutil.Process]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        children[proc.info["ppid"]].append(proc)
    family: dict[int, psutil.Process] = {}
    todo = list(procs)
    while todo:
        proc = todo.pop()
        if proc.pid not in family:
            family[proc.pid] = proc
            todo.extend(children.get(proc.pid, []))
    usage: dict[int, tuple[int, float]] = {}
    for pid, proc in family.items():
        try:
            times = proc.cpu_times()
            usage[pid] = (proc.memory_info().rss, times.user + times.system)
        except psutil.Error:
            continue
    return usage


def run_measured(
    cmd: list[str], env: dict | None = None, interval: float = 0.2, limit: float = 3600
) -> dict:
    """Run `cmd`; wall seconds, peak RSS (MB) and CPU seconds of everything it started,
    output, exit code.

    CPU seconds are user + system, summed over every process of the tree, each as last
    sampled (every `interval`): a process loses at most its last interval, and one that
    lives less than that may be missed. Unlike the wall, they leave out the time spent
    waiting (Ray starting, a core left idle at the end), so they show the work itself.

    Output goes to a file, not a pipe: a re-parented grandchild would hold a pipe open
    (and this call with it) after the command exited. Processes the command left behind
    (found by an environment tag) are ended once it exits."""
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    env = {**(env or os.environ), TAG: tag}
    cpu: dict[int, float] = {}  # pid -> CPU seconds at its last sample
    samples: list[tuple[float, int]] = []  # (Unix time, RSS bytes of the tree)
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        root = psutil.Process(proc.pid)
        others: list[psutil.Process] = []
        last_scan = 0.0
        while proc.poll() is None:
            now = time.perf_counter()
            if now - last_scan >= 1.0:  # the environment scan costs ~10 ms: once a second
                others, last_scan = tagged(tag), now
            usage = tree_usage([root, *others])
            samples.append((time.time(), sum(rss for rss, _ in usage.values())))
            cpu.update((pid, seconds) for pid, (_, seconds) in usage.items())
            if now - start > limit:
                proc.kill()
            time.sleep(interval)
        wall = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    for leftover in tagged(tag):
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    return {
        "wall": wall,
        "peak_rss_mb": max((rss for _, rss in samples), default=0) / 2**20,
        "cpu_seconds": sum(cpu.values()),
        "rss_samples": samples,
        "output": output,
        "rc": proc.returncode,
    }


def peak_between(samples: list[tuple[float, int]], start: float, end: float) -> float | None:
    """Peak RSS (MB) of the samples taken between two Unix times; for a phase shorter than
    the sampling interval, the sample nearest its middle. None without samples."""
    inside = [rss for t, rss in samples if start <= t <= end]
    if not inside and samples:
        middle = (start + end) / 2
        inside = [min(samples, key=lambda sample: abs(sample[0] - middle))[1]]
    return max(inside) / 2**20 if inside else None


def failed(name: str, result: dict) -> SystemExit:
    tail = "\n".join(result["output"].splitlines()[-40:])
    return SystemExit(f"{name} failed (exit {result['rc']}):\n{tail}")


# --- The pipelines -------------------------------------------------------------------------


# The phases both pipelines go through, made of each one's own phases (timings.json's for
# crawlmill, the executors for datatrove). crawlmill tokenizes in its documents phase,
# datatrove after the dedup; both apply the dedup's decisions when writing the tokens.
COMMON_PHASES = {
    "documents": {
        "crawlmill": ["scan", "dedup_pre_phase", "documents_phase"],
        "datatrove": ["documents"],
    },
    "dedup": {"crawlmill": ["dedup_phase"], "datatrove": ["minhash_buckets", "minhash_cluster"]},
    "tokens and shards": {
        "crawlmill": ["rebalance_phase", "write_phase"],
        "datatrove": ["filter_tokenize"],
    },
}


def common_phases(
    pipeline: str, seconds: dict, windows: dict, samples: list, docs: dict
) -> dict[str, dict]:
    """Per common phase: wall seconds, peak RSS of the tree while it ran, documents in and
    out. `docs`: records (the input), filtered (through the filters: the dedup's input and
    the writing's), kept (after the dedup), tokens."""
    flow = {
        "documents": (docs["records"], docs["filtered"]),
        "dedup": (docs["filtered"], docs["kept"]),
        "tokens and shards": (docs["filtered"], docs["kept"]),
    }
    out = {}
    for name, parts in COMMON_PHASES.items():
        own = [p for p in parts[pipeline] if p in windows]
        docs_in, docs_out = flow[name]
        out[name] = {
            "wall": sum(seconds.get(p, 0.0) for p in parts[pipeline]),
            "peak_rss_mb": peak_between(samples, windows[own[0]][0], windows[own[-1]][1])
            if own
            else None,
            "docs_in": docs_in,
            "docs_out": docs_out,
            "tokens_out": docs["tokens"] if name == "tokens and shards" else None,
        }
    return out


def silent_losses(records_in: int, docs_out: int, recorded_rejects: int) -> int:
    """Input records that left neither as a document nor as a recorded reject."""
    return records_in - docs_out - recorded_rejects


def run_crawlmill(files: list[Path], out: Path, workers: int, settings: list[str]) -> dict:
    cmd = [str(CRAWLMILL), "run", "--output", str(out), "--num-cpus", str(workers)]
    cmd += ["--input", *map(str, files)]
    for setting in [*EQUAL_SETTINGS, *settings]:
        cmd += ["--set", setting]
    result = run_measured(cmd)
    if result["rc"] != 0:
        raise failed(f"crawlmill ({' '.join(settings)})", result)
    manifest = json.loads((out / "manifest.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    timings = json.loads((out / "timings.json").read_text())
    totals = manifest["totals"]
    phases = timings["seconds"]
    return {
        "wall": result["wall"],
        "cpu_seconds": result["cpu_seconds"],
        "peak_rss_mb": result["peak_rss_mb"],
        "docs_out": totals["docs"],
        "tokens_out": totals["tokens"],
        "recorded_rejects": totals["rejected"],
        "rejects_by_reason": stats["rejected_by_reason"],
        # the rest of the wall is process start, imports, Ray start and shutdown
        "phases": {
            "scan": phases["scan"],
            "documents (read..tokenize)": phases["documents_phase"],
            "dedup": phases["dedup_phase"] + phases.get("dedup_pre_phase", 0.0),
            "write": phases["write_phase"] + phases.get("rebalance_phase", 0.0),
        },
        "step_seconds": timings["stage_cpu_seconds"],
        "common_phases": common_phases(
            "crawlmill",
            phases,
            timings.get("phase_windows", {}),
            result["rss_samples"],
            {
                "records": stats["records"],
                "filtered": stats["dedup"]["docs_in"],
                "kept": totals["docs"],
                "tokens": totals["tokens"],
            },
        ),
    }


def same_shards(run_a: Path, run_b: Path) -> bool:
    """Byte-identical shard files (and the same list of them) in two run directories."""
    shards_a, shards_b = sorted((run_a / "shards").iterdir()), sorted((run_b / "shards").iterdir())
    return [p.name for p in shards_a] == [p.name for p in shards_b] and all(
        a.read_bytes() == b.read_bytes() for a, b in zip(shards_a, shards_b, strict=True)
    )


def run_datatrove(input_dir: Path, out: Path, workers: int, models: dict, records_in: int) -> dict:
    cmd = [str(DATATROVE_PYTHON), str(PEER_SCRIPT), "--input", str(input_dir)]
    cmd += ["--output", str(out), "--workers", str(workers)]
    cmd += ["--lid", models["lid"], "--tokenizer", models["tokenizer"]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = run_measured(cmd, env=env)
    if result["rc"] != 0:
        raise failed("datatrove", result)
    report = json.loads(result["output"].strip().splitlines()[-1])
    steps = report["steps"]
    return {
        "wall": result["wall"],
        "cpu_seconds": result["cpu_seconds"],
        "peak_rss_mb": result["peak_rss_mb"],
        "docs_out": report["docs"],
        "tokens_out": report["tokens"],
        "recorded_rejects": sum(report["rejected"].values()),
        "rejects_by_reason": report["rejected"],
        "phases": report["phases"],
        "step_seconds": {k: v["seconds"] for k, v in steps.items()},
        "step_stats": {k: v["stats"] for k, v in steps.items()},
        "common_phases": common_phases(
            "datatrove",
            report["phases"],
            report["phase_windows"],
            result["rss_samples"],
            {
                "records": records_in,
                "filtered": report["filtered"],
                "kept": report["docs"],
                "tokens": report["tokens"],
            },
        ),
    }


def run_floor(files: list[Path], extractor: str, tuned: bool = False) -> dict:
    """Extraction alone, one plain process per file (= per worker), all at once; `tuned`:
    with the settings of crawlmill's extractor child."""
    me = [sys.executable, str(Path(__file__).resolve()), "--floor-worker"]
    how = "tuned" if tuned else "stock"
    procs = [
        subprocess.Popen([*me, str(f), extractor, how], stdout=subprocess.PIPE, text=True)
        for f in files
    ]
    parts = []
    for proc in procs:
        out = proc.communicate()[0]
        if proc.returncode != 0:
            raise SystemExit(f"extraction alone ({extractor}) failed (exit {proc.returncode})")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    pages = sum(p["pages"] for p in parts)
    # wall of the slowest worker: what extraction alone costs on these cores
    wall = max(p["seconds"] for p in parts)
    return {
        "wall": wall,
        "cpu_seconds": sum(p["cpu_seconds"] for p in parts),
        "pages": pages,
        "extracted": sum(p["extracted"] for p in parts),
        "pages_per_s_per_core": pages / sum(p["seconds"] for p in parts),
    }


# --- Text agreement: resiliparse against trafilatura on the same pages -----------------------


def word_agreement(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' word multisets (1.0 = same words, same counts).
    Order-blind on purpose: the extractors differ in line breaks and block order."""
    wa, wb = Counter(a.split()), Counter(b.split())
    union = sum((wa | wb).values())
    return sum((wa & wb).values()) / union if union else 1.0


def read_parts(run_dir: Path) -> dict:
    """id -> (text, drop_reason) over every row of a crawlmill run's documents phase."""
    import pyarrow.parquet as pq

    rows = {}
    for part in sorted((run_dir / "_work" / "docs").glob("*.parquet")):
        table = pq.read_table(part, columns=["id", "text", "drop_reason"])
        columns = [table[c].to_pylist() for c in table.column_names]
        for id_, text, reason in zip(*columns, strict=True):
            rows[id_] = (text, reason)
    return rows


def extractor_agreement(trafilatura_run: Path, resiliparse_run: Path) -> dict:
    a, b = read_parts(trafilatura_run), read_parts(resiliparse_run)
    both = [i for i in a if i in b and a[i][0] and b[i][0]]
    scores = sorted(word_agreement(a[i][0], b[i][0]) for i in both)
    kept_a = {i for i, (_, r) in a.items() if r is None}
    kept_b = {i for i, (_, r) in b.items() if r is None}
    return {
        "pages": len(a),
        "text_from_both": len(both),
        "text_only_trafilatura": sum(1 for i in a if a[i][0] and not (i in b and b[i][0])),
        "text_only_resiliparse": sum(1 for i in b if b[i][0] and not (i in a and a[i][0])),
        "word_jaccard_median": statistics.median(scores) if scores else None,
        "word_jaccard_mean": statistics.fmean(scores) if scores else None,
        "share_at_least_0.8": sum(s >= 0.8 for s in scores) / len(scores) if scores else None,
        "share_below_0.5": sum(s < 0.5 for s in scores) / len(scores) if scores else None,
        "kept_by_both": len(kept_a & kept_b),
        "kept_only_trafilatura": len(kept_a - kept_b),
        "kept_only_resiliparse": len(kept_b - kept_a),
    }


# --- Report ---------------------------------------------------------------------------------


def per_core(records: int, wall: float, cores: int) -> float:
    return records / wall / cores if wall > 0 else 0.0


def summarize(results: dict, records_in: int, cores: int) -> dict:
    """Per pipeline, the best (lowest) wall over runs and everything derived from it.
    Load from other processes only ever adds time, so the best run is the least
    disturbed one; every run's wall is kept beside it."""
    summary = {}
    for name, runs in results.items():
        if not runs:
            continue
        best = min(runs, key=lambda r: r["wall"])
        wall = best["wall"]
        row = {"wall_best": wall, "walls": [r["wall"] for r in runs]}
        row["per_core"] = per_core(records_in, wall, cores)
        cpu = [r["cpu_seconds"] for r in runs if "cpu_seconds" in r]
        if cpu:  # (results from before the harness measured CPU have none)
            row["cpu_best"] = min(cpu)
        if "docs_out" in runs[0]:
            last = runs[-1]
            row.update(
                peak_rss_mb=max(r["peak_rss_mb"] for r in runs),
                docs_out=last["docs_out"],
                tokens_out=last["tokens_out"],
                recorded_rejects=last["recorded_rejects"],
                silent=silent_losses(records_in, last["docs_out"], last["recorded_rejects"]),
                same_output_every_run=len({(r["docs_out"], r["tokens_out"]) for r in runs}) == 1,
            )
        if "common_phases" in best:  # (results from before the harness had them do not)
            row["phases"] = {
                phase: {**p, "per_core": per_core(p["docs_in"], p["wall"], cores)}
                for phase, p in best["common_phases"].items()
            }
        summary[name] = row

    def ratio(row: dict, other: dict, key: str) -> float | None:
        return row[key] / other[key] if key in row and key in other else None

    base = summary.get("datatrove")
    for name, row in summary.items():
        if base and name != "datatrove":
            row["speed_vs_datatrove"] = row["per_core"] / base["per_core"]
            row["cpu_vs_datatrove"] = ratio(base, row, "cpu_best")  # datatrove's CPU / ours
            for phase, p in row.get("phases", {}).items():
                theirs = base.get("phases", {}).get(phase)
                if theirs and theirs["per_core"]:
                    p["vs_datatrove"] = p["per_core"] / theirs["per_core"]
    held_to = {name: floor for name, (_, floor) in CRAWLMILL_VARIANTS.items()}
    held_to["datatrove"] = "floor"  # datatrove's against the trafilatura floor
    tuned = summary.get("floor-tuned")  # trafilatura as crawlmill's child runs it
    for name, floor in held_to.items():
        if name in summary and floor in summary:
            row, floor_row = summary[name], summary[floor]
            row["overhead_above_extraction"] = ratio(row, floor_row, "wall_best") - 1
            if (cpu_ratio := ratio(row, floor_row, "cpu_best")) is not None:
                row["cpu_above_extraction"] = cpu_ratio - 1
            if tuned and floor == "floor" and name != "datatrove":
                row["overhead_above_tuned_extraction"] = ratio(row, tuned, "wall_best") - 1
    return summary


def phase_table(summary: dict, cores: int) -> list[str]:
    """Markdown lines: the common phases side by side, from each pipeline's best run."""
    rows = {name: row["phases"] for name, row in summary.items() if "phases" in row}
    if not rows:
        return []
    lines = [
        "## Per phase (the best run of each)",
        "",
        "| phase | pipeline | wall s | docs in -> out | docs/s per core | vs datatrove |"
        " peak RSS tree MB | tokens out |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in COMMON_PHASES:
        for name, phases in rows.items():
            p = phases[phase]
            ratio = p.get("vs_datatrove")
            lines.append(
                f"| {phase} | {name} | {p['wall']:.2f} | {p['docs_in']:,} -> {p['docs_out']:,} "
                f"| {p['per_core']:,.1f} | {'–' if ratio is None else f'{ratio:.2f}x'} "
                f"| {fmt(p['peak_rss_mb'], ',.0f')} | {fmt(p['tokens_out'], ',')} |"
            )
    made_of = {
        side: "; ".join(
            f"{phase}: {', '.join(parts[side])}" for phase, parts in COMMON_PHASES.items()
        )
        for side in ("crawlmill", "datatrove")
    }
    lines += [
        "",
        "The phases both pipelines go through: **documents** = read, extract, language ID,"
        " rule filters and MinHash signatures (crawlmill also tokenizes here; datatrove writes"
        " JSONL), from the input records to the documents through the filters; **dedup** ="
        " MinHash buckets and clusters, from those documents to the ones kept; **tokens and"
        " shards** = the dedup's decisions applied while writing the tokens (datatrove"
        f" tokenizes here). Made of crawlmill's phases ({made_of['crawlmill']}) and"
        f" datatrove's executors ({made_of['datatrove']}). docs/s per core = docs in / wall"
        f" / {cores}; 'vs datatrove' = this docs/s per"
        " core / datatrove's; peak RSS = the most the process tree held while the phase ran"
        " (samples every 0.2 s; a phase shorter than that gets the nearest sample). Start-up"
        " and shutdown (Ray's, the interpreters') are in no phase: see the end-to-end table.",
        "",
    ]
    return lines


def fmt(value, spec: str = ",.1f") -> str:
    return "–" if value is None else format(value, spec)


def markdown(meta: dict, results: dict, summary: dict, agreement: dict | None) -> str:
    cores, records_in = meta["workers"], meta["records_in"]
    lines = [
        "# Side-by-side benchmark: crawlmill vs datatrove",
        "",
        f"Generated by `bench/side_by_side.py` on {meta['date']}. Command:",
        "",
        f"    {meta['command']}",
        "",
        f"- machine: {meta['machine']}",
        f"- load average (1/5/15 min) before: {meta['load_before']}, after: {meta['load_after']}"
        " (other processes share these cores; see docs/BENCH.md)",
        f"- input: {meta['input']} -> {records_in:,} records, split round-robin into "
        f"{cores} files; {cores} workers for each pipeline",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        f"- crawlmill settings for equal work: `{' '.join(EQUAL_SETTINGS)}`",
        "",
        "## End to end (best of the runs; every run's wall listed)",
        "",
        "| pipeline | wall s (best) | walls s | records/s per core | vs datatrove |"
        " overhead above extraction | CPU s (best) | CPU vs datatrove |"
        " CPU above extraction | peak RSS tree MB | docs out | tokens out |"
        " recorded rejects | silent losses |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def times(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}x"

    def percent(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:+.0f}%"

    for name, row in summary.items():
        walls = " / ".join(f"{w:.1f}" for w in row["walls"])
        lines.append(
            f"| {name} | {row['wall_best']:.1f} | {walls} | {row['per_core']:.2f} | "
            f"{times(row.get('speed_vs_datatrove'))} | "
            f"{percent(row.get('overhead_above_extraction'))} | "
            f"{fmt(row.get('cpu_best'))} | {times(row.get('cpu_vs_datatrove'))} | "
            f"{percent(row.get('cpu_above_extraction'))} | "
            f"{fmt(row.get('peak_rss_mb'), ',.0f')} | {fmt(row.get('docs_out'), ',')} | "
            f"{fmt(row.get('tokens_out'), ',')} | {fmt(row.get('recorded_rejects'), ',')} | "
            f"{fmt(row.get('silent'), ',')} |"
        )
    same = [f"{n}: {'yes' if r['same_output_every_run'] else 'NO'}" for n, r in summary.items()
            if "same_output_every_run" in r]  # fmt: skip
    lines += ["", "Same documents and tokens out in every run: " + ", ".join(same) + "."]
    tuned = {n: r["overhead_above_tuned_extraction"] for n, r in summary.items()
             if "overhead_above_tuned_extraction" in r}  # fmt: skip
    if tuned:
        lines += [
            "",
            "Overhead above floor-tuned (trafilatura as crawlmill's extractor child runs it, "
            "same text): " + ", ".join(f"{n} {v * 100:+.0f}%" for n, v in tuned.items()) + ".",
        ]  # fmt: skip
    for name in SAME_SHARDS_AS_CRAWLMILL:
        identical = [r.get("same_shards_as_crawlmill") for r in results.get(name, [])]
        if identical and None not in identical:
            lines += [
                "",
                f"{name} wrote shards byte-identical to crawlmill's in the same round: "
                + ", ".join("yes" if x else "NO" for x in identical) + ".",
            ]  # fmt: skip
    lines += [
        "",
        "records/s per core = input records / wall / workers. Floors: extraction alone in "
        f"{cores} processes (wall of the slowest); 'overhead above extraction' = pipeline "
        "wall / floor wall - 1 (datatrove's against the trafilatura floor). CPU s = user + "
        "system seconds summed over every process the command started (sampled every "
        "0.2 s), for floors over their processes' extraction; it leaves out waiting (Ray "
        "starting, a core idle at the end). 'CPU vs datatrove' = datatrove's CPU s / this "
        "one's; 'CPU above extraction' = CPU s / floor CPU s - 1.",
        "",
        *phase_table(summary, cores),
        "## Phases (wall seconds, each run)",
        "",
    ]
    for name in ("datatrove", *CRAWLMILL_VARIANTS):
        runs = results.get(name) or []
        if not runs:
            continue
        phases = list(runs[0]["phases"])
        lines += [f"**{name}**", "", "| phase | " + " | ".join(f"run {i + 1}" for i in
                  range(len(runs))) + " |", "|---|" + "---|" * len(runs)]  # fmt: skip
        for phase in phases:
            cells = " | ".join(f"{r['phases'].get(phase, 0):.1f}" for r in runs)
            lines.append(f"| {phase} | {cells} |")
        lines.append("")
    if any("load_1min" in r for runs in results.values() for r in runs):
        runs_max = max(len(runs) for runs in results.values())
        lines += [
            "## Load average (1 min) at the start and end of each run",
            "",
            "| pipeline | " + " | ".join(f"run {i + 1}" for i in range(runs_max)) + " |",
            "|---|" + "---|" * runs_max,
        ]
        for name, runs in results.items():
            cells = [" -> ".join(f"{x:.1f}" for x in r.get("load_1min", [])) for r in runs]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Seconds per step, summed over workers (last run)",
        "",
        "crawlmill: CPU seconds of each stage, the worker's and its extractor child's, "
        "summed over chunks (timings.json `stage_cpu_seconds`; wall time before 2026-11-24). "
        "datatrove: its own per-step time (stats.json of each executor).",
        "",
    ]
    for name in ("datatrove", *CRAWLMILL_VARIANTS):
        runs = results.get(name) or []
        if runs:
            steps = runs[-1]["step_seconds"]
            cells = ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
            lines += [f"- **{name}**: {cells}"]
    lines += ["", "## What each pipeline dropped, and where (last run)", ""]
    for name in ("datatrove", *CRAWLMILL_VARIANTS):
        runs = results.get(name) or []
        if runs:
            cells = ", ".join(f"{k} {v:,}" for k, v in runs[-1]["rejects_by_reason"].items())
            lines += [f"- **{name}** recorded rejects: {cells}"]
    dt = results.get("datatrove") or []
    if dt:
        counts = []
        for step, stats in dt[-1]["step_stats"].items():
            if "documents/" in step:
                short = {k: v for k, v in stats.items() if k in
                         ("documents", "total", "forwarded", "dropped", "extracted", "timeout",
                          "clean_error", "broken_process")}  # fmt: skip
                counts.append(f"{step.split('/', 1)[1]} {short}")
        lines += ["", "datatrove's own counters in its documents phase (no record per page):", ""]
        lines += [f"- {c}" for c in counts]
    if agreement:
        a = agreement
        lines += [
            "",
            f"## resiliparse against trafilatura ({a.get('trafilatura_run', 'crawlmill')}, "
            "same pages, last run)",
            "",
            f"- pages: {a['pages']:,}; text from both: {a['text_from_both']:,}; only "
            f"trafilatura: {a['text_only_trafilatura']:,}; only resiliparse: "
            f"{a['text_only_resiliparse']:,}",
            f"- word-multiset Jaccard on pages with text from both: median "
            f"{fmt(a['word_jaccard_median'], '.3f')}, mean {fmt(a['word_jaccard_mean'], '.3f')}, "
            f">= 0.8 on {fmt(a['share_at_least_0.8'], '.1%')}, < 0.5 on "
            f"{fmt(a['share_below_0.5'], '.1%')}",
            f"- documents kept through the documents phase (before dedup) by both: "
            f"{a['kept_by_both']:,}; only with trafilatura: "
            f"{a['kept_only_trafilatura']:,}; only with resiliparse: "
            f"{a['kept_only_resiliparse']:,}",
            "- which of the two texts is closer to what people marked as the main text "
            "(Dragnet's gold texts, trafilatura's evaluation set): bench/EXTRACTION.md "
            "(`make bench-extraction`)",
        ]
    lines.append("")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB"
    )


def versions(have_datatrove: bool) -> dict:
    from importlib.metadata import version

    from pipeline import __version__

    out = {"crawlmill": __version__, "python": platform.python_version()}
    for pkg in ("trafilatura", "resiliparse", "ray", "pyarrow", "tiktoken"):
        out[pkg] = version(pkg)
    if have_datatrove:
        code = (
            "from importlib.metadata import version as v;"
            "print(' '.join(v(p) for p in ('datatrove','trafilatura','spacy','tokenizers')))"
        )
        got = subprocess.run([str(DATATROVE_PYTHON), "-c", code], capture_output=True, text=True)
        dt, traf, spacy, tok = got.stdout.split()
        out.update({"datatrove": dt, "datatrove's trafilatura": traf, "spacy": spacy,
                    "datatrove's tokenizers": tok})  # fmt: skip
    return out


def write_report(args, meta: dict, results: dict, work: Path, run: int) -> str:
    """RESULTS.md and RESULTS.json from the runs finished so far."""
    agreement = None
    if (
        len(results.get(TRAFILATURA_ON_EVERY_PAGE, [])) >= run
        and len(results.get("crawlmill-resiliparse", [])) >= run
    ):
        agreement = extractor_agreement(
            work / f"{TRAFILATURA_ON_EVERY_PAGE}-{run}", work / f"crawlmill-resiliparse-{run}"
        )
        agreement["trafilatura_run"] = TRAFILATURA_ON_EVERY_PAGE
    meta["load_after"] = load()
    done = {name: runs for name, runs in results.items() if runs}
    summary = summarize(done, meta["records_in"], args.workers)
    report = markdown(meta, done, summary, agreement)
    args.results.write_text(report)
    raw = {"meta": meta, "summary": summary, "runs": done, "agreement": agreement}
    args.results.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    return report


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--records", type=int, default=None, help="only the first N records")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=1, help="every record N times, copies renamed (default 1)"
    )
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--skip", default="", help=f"comma-separated, of {PIPELINES}")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument("--floor-worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rerender", type=Path, metavar="RESULTS.json",
        help="rewrite --results from saved figures (no run), e.g. after a report change",
    )  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.rerender:
        raw = json.loads(args.rerender.read_text())
        summary = summarize(raw["runs"], raw["meta"]["records_in"], raw["meta"]["workers"])
        args.results.write_text(markdown(raw["meta"], raw["runs"], summary, raw["agreement"]))
        raw["summary"] = summary
        args.results.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
        return 0
    if args.floor_worker:  # one floor process: decode one file's pages, time extraction alone
        from run_realpages import extraction_alone  # bench/, this script's directory

        path, extractor, how = args.floor_worker
        print(json.dumps(extraction_alone(Path(path), extractor, tuned=how == "tuned")))
        return 0
    from pipeline.assets import lid_model_path, qwen_tokenizer_json_path

    if not args.warc.is_file():
        sys.exit(f"{args.warc}: not found (the bench corpus lives in ../shared/data/bench/)")
    if args.repeat < 1:
        sys.exit(f"--repeat: {args.repeat}; give 1 (the input as it is) or more")
    skip = {s for s in args.skip.split(",") if s}
    if unknown := skip - set(PIPELINES):
        sys.exit(f"--skip: unknown {sorted(unknown)}; choose from {PIPELINES}")
    if "datatrove" not in skip and not DATATROVE_PYTHON.exists():
        sys.exit(f"{DATATROVE_PYTHON} is missing: run `make bench-venv` (or --skip datatrove)")
    models = {"lid": str(lid_model_path()), "tokenizer": str(qwen_tokenizer_json_path())}

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": load(),
        "workers": args.workers,
        "input": str(args.warc.name)
        + (f" (first {args.records} records)" if args.records else "")
        + (f" x {args.repeat} (copies renamed)" if args.repeat > 1 else ""),
        "command": " ".join(["python", "bench/side_by_side.py", *sys.argv[1:]]),
        "versions": versions("datatrove" not in skip),
    }
    work = Path(tempfile.mkdtemp(prefix="crawlmill-side-by-side-"))
    files = split_warc(args.warc, work / "input", args.workers, args.records, args.repeat)
    from pipeline.warc import scan_chunks

    meta["records_in"] = sum(c.n_records for f in files for c in scan_chunks(str(f), 0, 10**9))
    print(f"{meta['records_in']:,} records in {len(files)} files under {work}", flush=True)

    results: dict[str, list] = {name: [] for name in PIPELINES if name not in skip}
    for run in range(1, args.runs + 1):
        for name in results:
            print(f"run {run}: {name} ...", flush=True)
            out = work / f"{name}-{run}"
            load_start = os.getloadavg()[0]
            if name == "datatrove":
                r = run_datatrove(work / "input", out, args.workers, models, meta["records_in"])
            elif name in CRAWLMILL_VARIANTS:
                r = run_crawlmill(files, out, args.workers, CRAWLMILL_VARIANTS[name][0])
                if name in SAME_SHARDS_AS_CRAWLMILL and (work / f"crawlmill-{run}").is_dir():
                    r["same_shards_as_crawlmill"] = same_shards(work / f"crawlmill-{run}", out)
            else:
                extractor = "resiliparse" if name.endswith("resiliparse") else "trafilatura"
                r = run_floor(files, extractor, tuned=name.endswith("-tuned"))
            r["load_1min"] = [load_start, os.getloadavg()[0]]  # at start, at end
            results[name].append(r)
            print(f"  wall {r['wall']:.1f} s, " + ", ".join(
                f"{k} {v:,}" for k, v in r.items() if k in ("docs_out", "tokens_out", "pages")
            ), flush=True)  # fmt: skip
            # the report so far, after every run: a long benchmark cut short still says
            # what it measured
            report = write_report(args, meta, results, work, run)
    print(report)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
