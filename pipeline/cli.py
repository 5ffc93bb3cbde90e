"""The `crawlmill` command: run the pipeline, inspect its output.

    crawlmill run [CONFIG.yaml] --input PATH_OR_GLOB... --output DIR [--set key=value ...]
                  [--ray-address ADDR] [--num-cpus N]
    crawlmill inspect DIR [--where EXPR] [--sample N] [--rejected REASON -n N] [--json]
    crawlmill report RUN_DIR [-o report.html]

Exit codes: 0 success, 2 bad usage / config / input (nothing was processed), 1 a failure
during the run (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline import __version__

EPILOG_RUN = """\
examples:
  crawlmill run --input tests/data/sample --output out/sample
  crawlmill run configs/default.yaml --input 'crawl/*.warc.gz' --output out/cc \\
      --set langid.languages='[en,zh]' --set extract.extractor=resiliparse
  crawlmill run --input s3://bucket/crawl/ --output out/cc --ray-address auto

Rerunning the same command on the same --output resumes: finished chunks are not redone.
"""


READ_ERRORS_SHOWN = 3


def _format_summary(summary, top_languages: int = 15) -> str:
    from pipeline.progress import summary_table
    from pipeline.schema import Reason

    lines = [
        f"shards:    {Path(summary.output) / 'shards'}  ({summary.shards} file(s))",
        f"records:   {summary.records:,} read",
        f"docs:      {summary.docs:,} kept"
        + (f" ({summary.repeats:,} of them repeats)" if summary.repeats else ""),
        f"rejected:  {summary.rejected:,}  (rows in {Path(summary.output) / 'rejected'})",
    ]
    for reason, n in sorted(summary.rejected_by_reason.items(), key=lambda kv: -kv[1]):
        lines.append(f"           {n:>9,}  {reason}")
        if reason == Reason.READ_ERROR:  # why, for the first few (stats.json: all messages)
            for row in summary.read_error_examples[:READ_ERRORS_SHOWN]:
                lines.append(
                    f"                      {row['source']}@{row['offset']}: {row['drop_detail']}"
                )
    lines.append(f"tokens:    {summary.tokens:,}")
    langs = sorted(summary.languages.items(), key=lambda kv: (-kv[1]["tokens"], kv[0]))
    lines.append(f"languages: {len(langs)} (docs, tokens)")
    for lang, counts in langs[:top_languages]:
        lines.append(f"           {lang:<8} {counts['docs']:>8,} {counts['tokens']:>14,}")
    if len(langs) > top_languages:
        rest = langs[top_languages:]
        lines.append(
            f"           (+{len(rest)} more) {sum(c['docs'] for _, c in rest):>6,} "
            f"{sum(c['tokens'] for _, c in rest):>14,}"
        )
    if summary.rebalance:
        from mixers.rebalance import format_report

        lines.append(format_report(summary.rebalance))
    if summary.phase_seconds:
        lines += ["", summary_table(summary, summary.phase_seconds)]
    elif summary.seconds:
        rate = summary.records / summary.seconds if summary.seconds else 0
        lines.append(f"seconds:   {summary.seconds:,.1f}  ({rate:,.1f} records/s)")
    return "\n".join(lines)


def positive_int(text: str) -> int:
    """argparse type for counts: 0 or less would hang or crash the command later, after
    work has started (Ray with 0 CPUs waits forever)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.runner import run, stop_ray

    cfg = load_config(args.config, args.set or [])
    import ray  # after the config: a mistake there fails without loading Ray (~0.2 s)

    # A Ray this process had started before (a notebook, the tests) is the caller's to
    # stop; the embedded one the run starts, or the cluster it joins, is ours.
    callers_ray = ray.is_initialized()
    start = time.perf_counter()
    try:
        summary = run(
            cfg, args.input, args.output, ray_address=args.ray_address, num_cpus=args.num_cpus
        )
        summary.seconds = summary.seconds or time.perf_counter() - start
        print(_format_summary(summary), flush=True)
    finally:
        if not callers_ray:
            stop_ray()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crawlmill",
        description="Common Crawl WARC/WET dumps in, Qwen-tokenized Arrow shards out, on Ray.",
    )
    parser.add_argument("--version", action="version", version=f"crawlmill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the pipeline over WARC/WET files",
        description=(
            "Read WARC/WET files, extract main text, identify languages, tokenize, and write "
            "Arrow IPC token shards + manifest.json to --output. Every record read ends up "
            "either in a shard or as a row in OUTPUT/rejected/ with its reason."
        ),
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "config",
        nargs="?",
        default=None,
        help="YAML config (default: the built-in Qwen recipe, spelled out in configs/default.yaml)",
    )
    run.add_argument(
        "--input",
        "-i",
        nargs="+",
        required=True,
        metavar="PATH_OR_GLOB",
        help="WARC/WET files (.warc, .warc.gz, .wet, .wet.gz): files, directories (searched "
        "recursively), globs, or fsspec URIs such as s3://bucket/prefix/*.warc.gz",
    )
    run.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="run directory for shards and stats"
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, value parsed as YAML, e.g. --set langid.min_score=0.5 "
        "(repeatable)",
    )
    run.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="join this Ray cluster (default: $RAY_ADDRESS, else start a local Ray)",
    )
    run.add_argument(
        "--num-cpus",
        type=positive_int,
        default=None,
        metavar="N",
        help="workers to use (default: every CPU Ray reports; local Ray starts with N CPUs)",
    )
    run.set_defaults(func=cmd_run)

    for add_command in extra_commands():
        add_command(sub)
    return parser


def extra_commands() -> list:
    """Commands that live beside the code they drive. Each module exposes
    `add_command(subparsers)`, which adds its parser and sets `func` (an explicit list,
    no plugin discovery)."""
    from filters import train_quality
    from mixers import train_domain
    from pipeline import inspect, pack, report, train_tokenizer

    return [
        inspect.add_command,
        report.add_command,
        pack.add_command,
        train_tokenizer.add_command,
        train_quality.add_command,
        train_domain.add_command,
    ]


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import ConfigError
    from pipeline.inspect import InspectError
    from pipeline.io import InputError
    from pipeline.report import ReportError
    from pipeline.runner import RunError, RunStopped
    from pipeline.shards import ManifestError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        ConfigError,
        InputError,
        RunError,
        ManifestError,
        InspectError,
        ReportError,
        FileNotFoundError,
    ) as exc:
        print(f"crawlmill {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RunStopped as exc:
        print(f"crawlmill {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
