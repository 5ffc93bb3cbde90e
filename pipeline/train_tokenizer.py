"""Train a byte-level BPE tokenizer the Qwen way (`crawlmill train-tokenizer`).

Qwen's tokenizer (Qwen Technical Report, 2023, sec. 2.2; kept through Qwen2, 2.5 and 3) is
byte-level BPE: text is NFC-normalized, split into pre-tokens by a regex (`QWEN_PAT`:
letters, single digits, punctuation runs, whitespace), each pre-token's UTF-8 bytes are
mapped to 256 printable characters, and BPE merges are learned over those. Byte-level means
no unknown token: any string encodes. We build exactly that pipeline with `tokenizers`
(normalizer NFC, pre-tokenizer Split(QWEN_PAT, isolated) + ByteLevel(no prefix space, no
regex), ByteLevel decoder; the same steps as Qwen2.5's tokenizer.json) and train its merges
with `BpeTrainer`, seeded with all 256 byte symbols. Special tokens (`<|endoftext|>` by
default, or Qwen2.5's 22 with `--special-tokens qwen2.5`) are added after the learned
vocabulary, as Qwen does (its EOS is id 151,643, right after the 151,643 BPE tokens), so
they are the last ids.

**Input.** A crawlmill run directory (the text is not in the token shards: it is read from
the documents phase's parts, `_work/docs/*.parquet`, kept rows only, with their `lang`), or
text files: `.jsonl` (one JSON object per line with "text", optionally "lang" and "id"),
`.txt` (one document per line), `.parquet` (a "text" column), each optionally `.gz`, or
directories of them.

**Held-out text.** A document goes to the held-out set when blake2b(seed, its id, or its
text when it has no id) falls below `--heldout-fraction`, so the split is the same on every
run and independent of input order. Held-out documents are never trained on.

**Report.** Compression on the held-out text, per language (`lang` from the run, or the
JSONL field): UTF-8 bytes per token for the new tokenizer and for Qwen2.5's (151,665 ids),
without EOS. More bytes per token = fewer tokens for the same text. The new tokenizer is
loaded for this through `pipeline.tokenize.load_tokenizer(TokenizerConfig(name=PATH))`,
the path the pipeline takes with `--set tokenizer.name=PATH`, so the report also proves the
pipeline can use the file.

Training uses `tokenizers`' own threads (all cores). Memory: the trainer holds word counts
(grows with the distinct pre-tokens, not with the text); held-out documents are kept for
the report up to `--max-heldout-docs`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from dedup.barrier import DEDUP_DIR, DONE_FILE, DedupDecisions
from pipeline import schema as S
from pipeline.config import TokenizerConfig
from pipeline.io import finished_files, read_parquet
from pipeline.tokenize import QWEN25, QWEN25_SPECIAL_TOKENS, QWEN_PAT, load_tokenizer

TEXT_SUFFIXES = (".jsonl", ".jsonl.gz", ".txt", ".txt.gz", ".parquet")
NO_LANG = "unknown"  # language label of documents that come without one


class TrainTokenizerError(ValueError):
    """Input or options that training cannot work with; the message says what to change."""


@dataclass
class Document:
    text: str
    lang: str
    key: str  # what the held-out split hashes: the document id, else the text


# --- Reading documents --------------------------------------------------------------------------


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open()


def _parquet_documents(paths: list[Path]) -> Iterator[Document]:
    for path in paths:
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        if S.TEXT not in names:
            raise TrainTokenizerError(f"{path}: no {S.TEXT!r} column")
        columns = [c for c in (S.TEXT, S.LANG, S.ID, S.DROP_REASON) if c in names]
        for batch in parquet.iter_batches(batch_size=1024, columns=columns):
            keep = pc.is_valid(batch.column(S.TEXT))
            if S.DROP_REASON in names:  # a run's parts: kept rows only
                keep = pc.and_(keep, pc.is_null(batch.column(S.DROP_REASON)))
            batch = batch.filter(keep)
            texts = batch.column(S.TEXT).to_pylist()
            langs = batch.column(S.LANG).to_pylist() if S.LANG in names else [None] * len(texts)
            ids = batch.column(S.ID).to_pylist() if S.ID in names else [None] * len(texts)
            for text, lang, doc_id in zip(texts, langs, ids, strict=True):
                yield Document(text, lang or NO_LANG, doc_id or text)


def _run_documents(work: Path) -> Iterator[Document]:
    """The kept documents of a run's parts: the rows with no drop reason once the global
    dedup step's decisions (`_work/dedup/`, when it ran) are applied."""
    decisions = (
        DedupDecisions(work / DEDUP_DIR) if (work / DEDUP_DIR / DONE_FILE).exists() else None
    )
    for path in finished_files(work / "docs", "*.parquet"):
        table = read_parquet(path, columns=[S.TEXT, S.LANG, S.ID, S.DROP_REASON, S.DROP_STAGE])
        if decisions is not None:
            file_index, chunk_index = (int(x) for x in path.stem.split("-"))
            table = decisions.apply(table, file_index, chunk_index)
        table = table.filter(pc.and_(pc.is_valid(table[S.TEXT]), pc.is_null(table[S.DROP_REASON])))
        for text, lang, doc_id in zip(
            table[S.TEXT].to_pylist(),
            table[S.LANG].to_pylist(),
            table[S.ID].to_pylist(),
            strict=True,
        ):
            yield Document(text, lang or NO_LANG, doc_id or text)


def _file_documents(path: Path) -> Iterator[Document]:
    name = path.name
    if name.endswith(".parquet"):
        yield from _parquet_documents([path])
    elif name.endswith((".jsonl", ".jsonl.gz")):
        with _open_text(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise TrainTokenizerError(
                        f"{path}:{number}: not a JSON object with a 'text' field"
                    ) from None
                if text:
                    yield Document(text, record.get("lang") or NO_LANG, record.get("id") or text)
    elif name.endswith((".txt", ".txt.gz")):
        with _open_text(path) as f:
            for line in f:
                text = line.rstrip("\n")
                if text.strip():
                    yield Document(text, NO_LANG, text)
    else:
        raise TrainTokenizerError(f"{path}: not one of {', '.join(TEXT_SUFFIXES)}")


def iter_documents(inputs: list[str | Path]) -> Iterator[Document]:
    """Documents of every input, in a fixed order (sorted within directories)."""
    for item in map(Path, inputs):
        if not item.exists():
            raise FileNotFoundError(f"{item}: no such file or directory")
        parts = item / "_work" / "docs"
        if parts.is_dir():  # a crawlmill run directory
            yield from _run_documents(item / "_work")
        elif (item / "manifest.json").exists():
            raise TrainTokenizerError(
                f"{item}: a crawlmill output without _work/docs/ (the documents' text is "
                "not in the token shards; it is in the run's _work/docs parts)"
            )
        elif item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.name.endswith(TEXT_SUFFIXES)):
                yield from _file_documents(path)
        else:
            yield from _file_documents(item)


def is_heldout(key: str, seed: int, fraction: float) -> bool:
    digest = hashlib.blake2b(f"heldout\0{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") < fraction * 2**64


# --- Training -----------------------------------------------------------------------------------


def special_tokens_from(spec: str) -> list[str]:
    """'qwen2.5' -> Qwen2.5's 22 special tokens; else a comma-separated list (EOS first)."""
    if spec == QWEN25:
        return list(QWEN25_SPECIAL_TOKENS)
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens:
        raise TrainTokenizerError("--special-tokens: give at least the EOS token")
    return tokens


def new_bbpe():
    """An untrained tokenizer with Qwen2.5's normalizer, pre-tokenizer and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PAT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_bbpe(texts: Iterator[str], vocab_size: int, special_tokens: list[str], min_frequency=2):
    """Train merges on `texts`; the specials take the last ids, after the learned ones."""
    from tokenizers import pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(special_tokens) + 1:
        raise TrainTokenizerError(
            f"--vocab-size {vocab_size} is too small: the 256 byte symbols and "
            f"{len(special_tokens)} special token(s) alone take {256 + len(special_tokens)}"
        )
    tokenizer = new_bbpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(special_tokens),
        min_frequency=min_frequency,
        initial_alphabet=alphabet,
        special_tokens=[],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_special_tokens(special_tokens)
    return tokenizer


# --- Compression report -------------------------------------------------------------------------


def compression_by_language(documents: list[Document], tokenizers: dict) -> dict:
    """{lang: {docs, bytes, and per tokenizer name: tokens, bytes_per_token}}, "all" first,
    then languages by held-out bytes."""
    table: dict[str, dict] = {}
    for name, tokenizer in tokenizers.items():
        ids = tokenizer.encode_batch([d.text for d in documents])
        for doc, doc_ids in zip(documents, ids, strict=True):
            for lang in ("all", doc.lang):
                row = table.setdefault(lang, {"docs": 0, "bytes": 0})
                row[f"{name}_tokens"] = row.get(f"{name}_tokens", 0) + len(doc_ids)
    for doc in documents:
        for lang in ("all", doc.lang):
            table[lang]["docs"] += 1
            table[lang]["bytes"] += len(doc.text.encode("utf-8"))
    for row in table.values():
        for name in tokenizers:
            row[f"{name}_bytes_per_token"] = round(row["bytes"] / max(row[f"{name}_tokens"], 1), 4)
    order = sorted(table, key=lambda lang: (lang != "all", -table[lang]["bytes"], lang))
    return {lang: table[lang] for lang in order}


def train_tokenizer(
    inputs: list[str | Path],
    vocab_size: int,
    output: str | Path,
    *,
    heldout_fraction: float = 0.05,
    seed: int = 0,
    min_frequency: int = 2,
    special_tokens: list[str] | None = None,
    max_train_bytes: int | None = None,
    max_heldout_docs: int = 5_000,
    compare_with: str | None = QWEN25,
    report_path: str | Path | None = None,
    log=print,
) -> dict:
    """Train, write `output` (tokenizer.json) and its report; returns the report."""
    special_tokens = special_tokens or ["<|endoftext|>"]
    if not 0 <= heldout_fraction < 1:
        raise TrainTokenizerError(f"--heldout-fraction must be in [0, 1), got {heldout_fraction}")
    output = Path(output)
    report_path = Path(report_path) if report_path else output.with_suffix(".report.json")
    heldout: list[Document] = []
    counts = {"train_docs": 0, "train_bytes": 0, "heldout_docs": 0, "heldout_bytes": 0}

    def training_texts() -> Iterator[list[str]]:
        batch: list[str] = []
        for doc in iter_documents(inputs):
            size = len(doc.text.encode("utf-8"))
            if is_heldout(doc.key, seed, heldout_fraction):
                counts["heldout_docs"] += 1
                counts["heldout_bytes"] += size
                if len(heldout) < max_heldout_docs:
                    heldout.append(doc)
                continue
            if max_train_bytes is not None and counts["train_bytes"] >= max_train_bytes:
                if len(heldout) >= max_heldout_docs:
                    break
                continue  # keep reading until the held-out set is full
            counts["train_docs"] += 1
            counts["train_bytes"] += size
            batch.append(doc.text)
            if len(batch) == 256:
                yield batch
                batch = []
        if batch:
            yield batch

    started = time.perf_counter()
    tokenizer = train_bbpe(training_texts(), vocab_size, special_tokens, min_frequency)
    seconds = time.perf_counter() - started
    if counts["train_docs"] == 0:
        raise TrainTokenizerError(f"no training text in {', '.join(map(str, inputs))}")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tokenizer.save(str(tmp), pretty=True)
    os.replace(tmp, output)
    log(
        f"trained on {counts['train_docs']:,} documents ({counts['train_bytes']:,} bytes) in "
        f"{seconds:.1f}s; {tokenizer.get_vocab_size():,} ids -> {output}"
    )

    # The pipeline's own loader: what `--set tokenizer.name=OUTPUT` runs.
    ours = load_tokenizer(TokenizerConfig(name=str(output), eos_token=special_tokens[0]))
    tokenizers = {"new": ours}
    if compare_with and compare_with != "none":
        tokenizers[Path(compare_with).name] = load_tokenizer(TokenizerConfig(name=compare_with))
    report = {
        "tokenizer": str(output),
        "sha256": ours.sha256,
        "vocab_size": ours.vocab_size,
        "requested_vocab_size": vocab_size,
        "special_tokens": special_tokens,
        "eos_id": ours.eos_id,
        "pre_tokenizer": "NFC + Split(QWEN_PAT) + ByteLevel",
        "min_frequency": min_frequency,
        "inputs": [str(i) for i in inputs],
        "seed": seed,
        "heldout_fraction": heldout_fraction,
        **counts,
        "heldout_docs_measured": len(heldout),
        "compared_with": [name for name in tokenizers if name != "new"],
        "bytes_per_token": compression_by_language(heldout, tokenizers) if heldout else {},
    }
    if ours.vocab_size < vocab_size:
        log(
            f"note: the text supports only {ours.vocab_size:,} ids (merges need pairs seen "
            f"{min_frequency}+ times); give more text or a smaller --vocab-size"
        )
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


# --- CLI ------------------------------------------------------------------------------------------

EPILOG = """\
examples:
  crawlmill train-tokenizer out/cc --vocab-size 64000 -o tokenizers/cc-64k.json
  crawlmill train-tokenizer corpus/*.jsonl.gz --vocab-size 32000 -o tok.json \\
      --heldout-fraction 0.01 --max-train-bytes 2000000000 --special-tokens qwen2.5
  crawlmill run --input crawl/ --output out/cc2 --set tokenizer.name=$PWD/tokenizers/cc-64k.json

Prints held-out bytes per token by language for the new tokenizer and Qwen2.5, and writes
them with the training counts to OUTPUT with the suffix .report.json (or --report).
"""


def format_report(report: dict, top: int = 20) -> str:
    names = ["new", *report["compared_with"]]
    lines = [
        f"held-out: {report['heldout_docs']:,} documents ({report['heldout_bytes']:,} bytes), "
        f"{report['heldout_docs_measured']:,} measured; bytes per token (higher = shorter):",
        f"  {'lang':<9} {'docs':>7} {'bytes':>12} "
        + " ".join(f"{name[:14]:>14}" for name in names)
        + ("  tokens vs " + names[1] if len(names) > 1 else ""),
    ]
    for lang, row in list(report["bytes_per_token"].items())[: top + 1]:
        line = f"  {lang:<9} {row['docs']:>7,} {row['bytes']:>12,} " + " ".join(
            f"{row[f'{name}_bytes_per_token']:>14.2f}" for name in names
        )
        if len(names) > 1:
            ratio = row["new_tokens"] / max(row[f"{names[1]}_tokens"], 1)
            line += f"  {ratio:>9.2f}x"
        lines.append(line)
    return "\n".join(lines)


def cmd_train_tokenizer(args: argparse.Namespace) -> int:
    try:
        report = train_tokenizer(
            args.inputs,
            args.vocab_size,
            args.output,
            heldout_fraction=args.heldout_fraction,
            seed=args.seed,
            min_frequency=args.min_frequency,
            special_tokens=special_tokens_from(args.special_tokens),
            max_train_bytes=args.max_train_bytes,
            max_heldout_docs=args.max_heldout_docs,
            compare_with=args.compare_with,
            report_path=args.report,
        )
    except (TrainTokenizerError, FileNotFoundError, ValueError) as exc:
        print(f"crawlmill train-tokenizer: error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-tokenizer",
        help="train a byte-level BPE tokenizer (Qwen's pre-tokenizer) on a run or text files",
        description=(
            "Train a byte-level BPE tokenizer.json with Qwen's pipeline (NFC, Qwen's split\n"
            "regex, byte-level, special tokens after the learned ids) on a crawlmill run's\n"
            "kept documents or on text files, and report held-out bytes per token by\n"
            "language against Qwen2.5. The file works as the pipeline's tokenizer:\n"
            "  crawlmill run --set tokenizer.name=/abs/path/tokenizer.json"
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="DIR_OR_TEXT",
        help="a crawlmill run directory (reads _work/docs/*.parquet, kept rows, with lang), "
        "or .jsonl / .txt / .parquet files (optionally .gz) or directories of them; .jsonl: "
        "'text' and optional 'lang', 'id'; .txt: one document per line",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        required=True,
        metavar="N",
        help="ids in the result, special tokens included (Qwen2.5: 151,665)",
    )
    parser.add_argument(
        "--output", "-o", required=True, metavar="TOKENIZER_JSON", help="file to write"
    )
    parser.add_argument(
        "--heldout-fraction",
        type=float,
        default=0.05,
        metavar="F",
        help="share of documents held out of training for the report, chosen by hash of "
        "(seed, id) (default: 0.05)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the held-out split (default: 0)"
    )
    parser.add_argument(
        "--min-frequency",
        type=int,
        default=2,
        metavar="N",
        help="a pair is merged only if seen at least N times (default: 2)",
    )
    parser.add_argument(
        "--special-tokens",
        default="<|endoftext|>",
        metavar="LIST",
        help="comma-separated special tokens, EOS first, given the last ids; 'qwen2.5' for "
        "Qwen2.5's 22 (<|endoftext|>, <|im_start|>, <|im_end|>, ...) (default: <|endoftext|>)",
    )
    parser.add_argument(
        "--max-train-bytes",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N bytes of (non-held-out) text only (default: all)",
    )
    parser.add_argument(
        "--max-heldout-docs",
        type=int,
        default=5_000,
        metavar="N",
        help="held-out documents measured for the report (default: 5000)",
    )
    parser.add_argument(
        "--compare-with",
        default=QWEN25,
        metavar="TOKENIZER",
        help="tokenizer to compare with: 'qwen2.5', a tokenizer.json path, or 'none' "
        "(default: qwen2.5)",
    )
    parser.add_argument(
        "--report",
        default=None,
        metavar="PATH",
        help="where to write the JSON report (default: OUTPUT with suffix .report.json)",
    )
    parser.set_defaults(func=cmd_train_tokenizer)
