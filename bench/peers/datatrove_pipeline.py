"""datatrove's version of crawlmill's recipe, for bench/side_by_side.py (the peer side).

    .venv-datatrove/bin/python bench/peers/datatrove_pipeline.py \
        --input DIR_OF_WARCS --output DIR --lid PATH/lid.176.ftz \
        --tokenizer PATH/qwen-tokenizer.json [--workers 2]

Runs under its own virtualenv (`make bench-venv`, pins in datatrove-requirements.txt) and
imports nothing from crawlmill. The stages, in datatrove's usual shape (FineWeb's
pipeline, datatrove's examples/fineweb.py and minhash_deduplication.py):

1. documents: WarcReader -> Trafilatura -> LanguageFilter(en, 0.65) -> GopherRepetition
   -> GopherQuality -> C4Quality(filter_no_terminal_punct=False, FineWeb's setting) ->
   FineWebQuality -> JsonlWriter (the survivors) -> MinhashDedupSignature
2. MinhashDedupBuckets (one task per bucket)   3. MinhashDedupCluster (one task)
4. JsonlReader (the survivors again) -> MinhashDedupFilter -> DocumentTokenizer

Every filter gets an exclusion writer, so each document a filter drops is recorded with
its reason (a user who wants to account for every page has to do this); the extractor
and the WARC reader have no such hook: what they drop is counted in stats.json at best.
Nothing downloads: HF_HUB_OFFLINE=1, the language model is our local lid.176.ftz (a
subclass of datatrove's FT176LID loads a path instead of fetching lid.176.bin) and the
tokenizer our local Qwen2.5 tokenizer.json. Trafilatura gets crawlmill's default options
(favor_precision off, deduplicate off, tables on) and crawlmill's 2 s limit, so both
extract the same text.

Prints one JSON line at the end: wall seconds per phase and when each ran, documents
through the filters and out, tokens out, recorded rejects (exclusion files), datatrove's
own per-step stats.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import struct
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.dedup import (  # noqa: E402
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig  # noqa: E402
from datatrove.pipeline.extractors import Trafilatura  # noqa: E402
from datatrove.pipeline.filters import (  # noqa: E402
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import JsonlReader, WarcReader  # noqa: E402
from datatrove.pipeline.tokens import DocumentTokenizer  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402
from datatrove.utils.lid import FT176LID  # noqa: E402


class LocalFT176(FT176LID):
    """datatrove's lid.176 wrapper, loading a local model file instead of downloading."""

    def __init__(self, languages, path: str):
        super().__init__(languages)
        self.path = path

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.path)
        return self._model


class LocalLanguageFilter(LanguageFilter):
    def __init__(self, path: str, **kwargs):
        super().__init__(**kwargs)
        self.model = LocalFT176(self.languages, path)


def reject_writer(out: Path, name: str) -> JsonlWriter:
    return JsonlWriter(str(out / "rejected" / name), compression=None)


def build(args, out: Path) -> list[tuple[str, LocalPipelineExecutor]]:
    n = args.workers
    minhash = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes (datatrove's defaults)
    logs = out / "logs"
    documents = LocalPipelineExecutor(
        pipeline=[
            WarcReader(args.input, glob_pattern="*.warc.gz"),
            Trafilatura(
                favour_precision=False,
                deduplicate=False,
                include_tables=True,
                timeout=args.extract_timeout,
            ),
            LocalLanguageFilter(
                args.lid,
                languages=["en"],
                language_threshold=0.65,
                exclusion_writer=reject_writer(out, "langid"),
            ),
            GopherRepetitionFilter(exclusion_writer=reject_writer(out, "gopher_rep")),
            GopherQualityFilter(exclusion_writer=reject_writer(out, "gopher_qual")),
            C4QualityFilter(
                filter_no_terminal_punct=False, exclusion_writer=reject_writer(out, "c4")
            ),
            FineWebQualityFilter(exclusion_writer=reject_writer(out, "fineweb")),
            JsonlWriter(str(out / "filtered"), compression=None),
            MinhashDedupSignature(str(out / "minhash" / "sigs"), config=minhash),
        ],
        tasks=n,
        workers=n,
        logging_dir=str(logs / "documents"),
    )
    buckets = LocalPipelineExecutor(
        pipeline=[
            MinhashDedupBuckets(
                str(out / "minhash" / "sigs"), str(out / "minhash" / "buckets"), config=minhash
            )
        ],
        tasks=minhash.num_buckets,
        workers=n,
        logging_dir=str(logs / "buckets"),
    )
    cluster = LocalPipelineExecutor(
        pipeline=[
            MinhashDedupCluster(
                str(out / "minhash" / "buckets"), str(out / "minhash" / "remove"), config=minhash
            )
        ],
        tasks=1,
        workers=1,
        logging_dir=str(logs / "cluster"),
    )
    tokenize = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(out / "filtered"), compression=None),
            MinhashDedupFilter(
                str(out / "minhash" / "remove"), exclusion_writer=reject_writer(out, "minhash")
            ),
            DocumentTokenizer(
                str(out / "tokens"),
                tokenizer_name_or_path=args.tokenizer,
                eos_token="<|endoftext|>",
                shuffle_documents=False,  # crawlmill keeps input order too
            ),
        ],
        tasks=n,
        workers=n,
        logging_dir=str(logs / "tokenize"),
    )
    return [
        ("documents", documents),
        ("minhash_buckets", buckets),
        ("minhash_cluster", cluster),
        ("filter_tokenize", tokenize),
    ]


def count_lines(pattern: str) -> int:
    total = 0
    for path in glob.glob(pattern, recursive=True):
        with open(path, "rb") as f:
            total += sum(1 for _ in f)
    return total


def outputs(out: Path) -> dict:
    """Documents and tokens in the tokenized files; rejects recorded per filter."""
    docs = tokens = 0
    for index in glob.glob(str(out / "tokens" / "**" / "*.ds.index"), recursive=True):
        data = Path(index).read_bytes()  # one uint64 per document: its end, in tokens
        docs += len(data) // 8
        if data:
            tokens += struct.unpack("<Q", data[-8:])[0]
    rejected = {
        Path(d).name: count_lines(f"{d}/**/*.jsonl")
        for d in sorted(glob.glob(str(out / "rejected" / "*")))
    }
    steps = {}
    for phase_dir in sorted(glob.glob(str(out / "logs" / "*"))):
        stats_file = Path(phase_dir) / "stats.json"
        if stats_file.exists():
            for step in json.loads(stats_file.read_text()):
                name = step["name"].split(": ", 1)[-1].encode("ascii", "ignore").decode().strip()
                timing = step.get("time_stats")
                steps[f"{Path(phase_dir).name}/{name}"] = {
                    "seconds": timing.get("total", 0.0) if isinstance(timing, dict) else 0.0,
                    "stats": {
                        k: v.get("total", v) if isinstance(v, dict) else v
                        for k, v in step.get("stats", {}).items()
                    },
                }
    # documents that came through the filters (the dedup's input)
    filtered = count_lines(str(out / "filtered" / "**" / "*.jsonl"))
    return {
        "docs": docs,
        "tokens": tokens,
        "filtered": filtered,
        "rejected": rejected,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="folder of *.warc.gz, one per task")
    parser.add_argument("--output", required=True)
    parser.add_argument("--lid", required=True, help="local lid.176.ftz")
    parser.add_argument("--tokenizer", required=True, help="local Qwen2.5 tokenizer.json")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--extract-timeout", type=float, default=2.0)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=False)  # never resume a previous run's completions

    phases, windows = {}, {}  # phase -> seconds; phase -> [start, end] in Unix time
    start = time.perf_counter()
    for name, executor in build(args, out):
        t, clock = time.perf_counter(), time.time()
        executor.run()
        phases[name] = time.perf_counter() - t
        windows[name] = [clock, time.time()]
    total = time.perf_counter() - start
    report = {"wall_seconds": total, "phases": phases, "phase_windows": windows}
    print(json.dumps({**report, **outputs(out)}))


if __name__ == "__main__":
    main()
