"""Train a fastText quality classifier and report held-out precision, recall and ROC-AUC.

    crawlmill train-quality --positive good.jsonl --negative bad.jsonl -o model.ftz
    python -m filters.train_quality recipe [--shared ../shared/data] [-o MODEL.ftz]

`train-quality` reads JSONL files (one {"text": ...} per line; .txt files are one document
per line), holds out a deterministic fraction of documents (by a hash of the seed and the
document's group, so near-copies from one page never straddle the split), trains
fastText on the rest, quantizes it (unless --no-quantize) and reports, on the held-out
documents: precision, recall and F1 of "good" at 0.5 and at --threshold, and ROC-AUC.
The report is printed as JSON and written beside the model (`MODEL.metrics.json`).

`recipe` rebuilds the default model shipped in filters/data/ from the real data beside the
project (../shared/data; the data itself is never copied into the repository):

- good (label hq): the Dragnet gold-standard main texts (1,381 news and blog articles,
  `extraction/dragnet/GoldStandard`) and the CCNet "head" documents (`quality/ccnet-head`);
- bad (label lq): the spam messages of the UCI SMS Spam Collection
  (`quality/sms-spam-collection`), the page chrome of the Dragnet pages (each page's full
  text, by resiliparse, minus the lines of its gold main text: menus, footers, related
  links, comments), and the English pages of `bench/realpages.warc.gz` outside Dragnet
  whose main text (resiliparse) crawlmill's rule filters reject.

A page's gold text and its chrome share one group, so they land on the same side of the
split. Training is single-threaded with a fixed seed: the same data gives the same model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from filters.classifier import LABEL_PREFIX, label_probabilities, model_input

GOOD, BAD = "hq", "lq"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data" / "quality_en.ftz"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --- reading documents -----------------------------------------------------------------------


def read_documents(path: Path, text_field: str = "text") -> list[dict]:
    """Documents of a JSONL file ({"text": ...}; "group" optional) or a .txt file (one per
    line)."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            if path.suffix == ".txt":
                docs.append({"text": line.rstrip("\n"), "group": f"{path.name}:{n}"})
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n + 1}: not JSON ({exc})") from None
            if not isinstance(record.get(text_field), str):
                raise ValueError(f"{path}:{n + 1}: no string field {text_field!r}")
            group = record.get("group") or record.get("id") or f"{path.name}:{n}"
            docs.append({"text": record[text_field], "group": str(group)})
    return docs


def held_out(group: str, seed: int, fraction: float) -> bool:
    digest = hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


# --- metrics -----------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    positives, negatives = scores[labels], scores[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(len(order), np.float64)
    values = np.concatenate([positives, negatives])[order]
    # average ranks over ties
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def precision_recall(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    predicted = scores >= threshold
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


# --- training ----------------------------------------------------------------------------------


def fit_fasttext(
    train_rows: list[tuple[str, str]],
    output: Path,
    *,
    seed: int,
    epoch: int,
    lr: float,
    word_ngrams: int,
    dim: int,
    min_count: int,
    quantize: bool,
    cutoff: int,
) -> tuple[object, float]:
    """Train a fastText softmax classifier on (label, line) rows, quantize it if asked,
    save it to `output`; return (model, training seconds). Shared by the quality and the
    domain classifier (mixers/train_domain.py)."""
    import fasttext

    # fastText learns in file order; a seeded shuffle keeps runs identical.
    rng = np.random.default_rng(seed)
    train_rows = [train_rows[i] for i in rng.permutation(len(train_rows))]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crawlmill-train-") as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text(
            "".join(f"{LABEL_PREFIX}{label} {line}\n" for label, line in train_rows),
            encoding="utf-8",
        )
        model = fasttext.train_supervised(
            input=str(train_file),
            epoch=epoch,
            lr=lr,
            wordNgrams=word_ngrams,
            dim=dim,
            minCount=min_count,
            loss="softmax",
            thread=1,
            seed=seed,
            verbose=0,
        )
        if quantize:
            model.quantize(input=str(train_file), qnorm=True, retrain=True, cutoff=cutoff)
    seconds = time.perf_counter() - start
    output.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(output))
    return model, seconds


def train(
    positives: list[dict],
    negatives: list[dict],
    output: Path,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    epoch: int = 20,
    lr: float = 0.2,
    word_ngrams: int = 2,
    dim: int = 32,
    min_count: int = 2,
    quantize: bool = True,
    cutoff: int = 100_000,
    threshold: float = 0.5,
    max_chars: int = 10_000,
    log=print,
) -> dict:
    """Train, quantize, save to `output`, and return the held-out metrics."""

    examples = [(GOOD, d) for d in positives] + [(BAD, d) for d in negatives]
    train_rows, test_rows = [], []
    for label, doc in examples:
        line = model_input(doc["text"], max_chars)
        if not line.strip():
            continue
        side = test_rows if held_out(doc["group"], seed, test_fraction) else train_rows
        side.append((label, line))
    if not train_rows or not test_rows:
        raise ValueError("too few documents to hold some out: give more, or another seed")
    model, seconds = fit_fasttext(
        train_rows, output, seed=seed, epoch=epoch, lr=lr, word_ngrams=word_ngrams, dim=dim,
        min_count=min_count, quantize=quantize, cutoff=cutoff,
    )  # fmt: skip

    labels = np.array([label == GOOD for label, _ in test_rows])
    scores = label_probabilities(model, [line for _, line in test_rows], GOOD)
    metrics = {
        "model": output.name,
        "model_bytes": output.stat().st_size,
        "quantized": quantize,
        "train": {
            "documents": len(train_rows),
            "good": sum(label == GOOD for label, _ in train_rows),
            "bad": sum(label == BAD for label, _ in train_rows),
            "seconds": round(seconds, 1),
        },
        "held_out": {
            "documents": len(test_rows),
            "good": int(labels.sum()),
            "bad": int((~labels).sum()),
            "roc_auc": round(roc_auc(labels, scores), 4),
            "at_0.5": precision_recall(labels, scores, 0.5),
            "at_threshold": precision_recall(labels, scores, threshold),
        },
        "params": {
            "test_fraction": test_fraction, "seed": seed, "epoch": epoch, "lr": lr,
            "word_ngrams": word_ngrams, "dim": dim, "min_count": min_count,
            "cutoff": cutoff, "max_chars": max_chars, "labels": [GOOD, BAD],
        },
    }  # fmt: skip
    output.with_name(output.name + ".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


# --- the recipe of the default model -----------------------------------------------------------


def _read_ccnet(folder: Path) -> list[dict]:
    import gzip

    docs = []
    for path in sorted(folder.glob("*.json*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f):
                record = json.loads(line)
                if record.get("text"):
                    docs.append({"text": record["text"], "group": f"ccnet:{path.name}:{n}"})
    return docs


def _read_sms_spam(path: Path) -> list[dict]:
    import csv

    with open(path, encoding="latin-1", newline="") as f:
        rows = list(csv.reader(f))
    return [
        {"text": row[1], "group": f"sms:{n}"}
        for n, row in enumerate(rows[1:])
        if row and row[0] == "spam"
    ]


def _normalise(text: str) -> str:
    return " ".join(text.split()).lower()


def _dragnet(folder: Path) -> tuple[list[dict], list[dict]]:
    """(gold main texts, page chrome): chrome = the page's full text (resiliparse,
    main_content=False) minus every line found in the gold text."""
    import tarfile

    from resiliparse.extract.html2text import extract_plain_text

    from pipeline.decode import decode_html

    gold_dir = folder / "GoldStandard"
    good, chrome = [], []
    with tarfile.open(folder / "input-html.tar.gz", "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".html"):
                continue
            name = Path(member.name).stem
            gold_path = gold_dir / f"{name}.txt"
            if not gold_path.is_file():
                continue
            gold = gold_path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
            group = f"dragnet:{name}"
            if len(gold.split()) >= 50:
                good.append({"text": gold.strip(), "group": group})
            html, _ = decode_html(tar.extractfile(member).read(), None)
            if not html:
                continue
            full = extract_plain_text(html, main_content=False)
            gold_norm = _normalise(gold)
            lines = [
                line.strip()
                for line in full.split("\n")
                if line.strip() and _normalise(line) not in gold_norm
            ]
            text = "\n".join(lines)
            if len(text.split()) >= 30:
                chrome.append({"text": text, "group": group})
    return good, chrome


def _rule_rejected_realpages(warc: Path, dragnet_html: Path) -> list[dict]:
    """English main texts (resiliparse) of realpages outside Dragnet that crawlmill's rule
    filters reject."""
    import tarfile

    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text

    from filters.langid import LangIdStage
    from filters.rules import score_document
    from pipeline.config import Config
    from pipeline.decode import decode_html

    dragnet_digests = set()
    with tarfile.open(dragnet_html, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                dragnet_digests.add(hashlib.sha1(tar.extractfile(member).read()).digest())
    texts, ids = [], []
    for record in ArchiveIterator(str(warc), record_types=WarcRecordType.response):
        record.parse_http()
        body = record.reader.read()
        if hashlib.sha1(body).digest() in dragnet_digests:
            continue
        html, _ = decode_html(body, record.http_headers.get("Content-Type"))
        text = extract_plain_text(html, main_content=True) if html else ""
        if text and len(text.split()) >= 20:
            texts.append(text)
            ids.append(record.headers.get("WARC-Record-ID"))
    cfg = Config()
    langs, _ = LangIdStage(cfg.langid).predict(texts)
    rules = _rules_only(cfg.filters)
    rejected = []
    for text, lang, record_id in zip(texts, langs, ids, strict=True):
        if lang == "en" and _rejected_by_rules(score_document(text, lang, rules)[0], rules):
            rejected.append({"text": text, "group": f"realpages:{record_id}"})
    return rejected


def _rules_only(filters_cfg):
    import dataclasses

    return dataclasses.replace(
        filters_cfg, safety=dataclasses.replace(filters_cfg.safety, enabled=False)
    )


def _rejected_by_rules(scores: dict, filters_cfg) -> bool:
    from filters.rules import TEXT_FILTERS

    for text_filter in TEXT_FILTERS:
        section = getattr(filters_cfg, text_filter.name)
        if not section.enabled:
            continue
        for rule in text_filter.rules:
            value = scores.get(rule.column)
            if value is not None and bool(rule.fails(np.array([float(value)]), section)[0]):
                return True
    return False


def recipe(shared: Path, output: Path, seed: int = 0, log=print) -> dict:
    """Build the default model's training data from ../shared/data and train it."""
    start = time.perf_counter()
    good, chrome = _dragnet(shared / "extraction" / "dragnet")
    ccnet = _read_ccnet(shared / "quality" / "ccnet-head")
    spam = _read_sms_spam(shared / "quality" / "sms-spam-collection" / "spam.csv")
    rejected = _rule_rejected_realpages(
        shared / "bench" / "realpages.warc.gz",
        shared / "extraction" / "dragnet" / "input-html.tar.gz",
    )
    sources = {
        "good: dragnet gold": len(good),
        "good: ccnet head": len(ccnet),
        "bad: dragnet page chrome": len(chrome),
        "bad: sms spam": len(spam),
        "bad: realpages rule-rejected": len(rejected),
    }
    log(f"training data ({time.perf_counter() - start:.0f}s): {json.dumps(sources)}")
    metrics = train(good + ccnet, chrome + spam + rejected, output, seed=seed, log=log)
    metrics["sources"] = sources
    output.with_name(output.name + ".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


# --- command line ------------------------------------------------------------------------------


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held out (0.2)")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed (0)")
    parser.add_argument("--epoch", type=int, default=20, help="fastText epochs (20)")
    parser.add_argument("--lr", type=float, default=0.2, help="fastText learning rate (0.2)")
    parser.add_argument("--word-ngrams", type=int, default=2, help="fastText wordNgrams (2)")
    parser.add_argument("--dim", type=int, default=32, help="embedding size (32)")
    parser.add_argument("--min-count", type=int, default=2, help="minimum word count (2)")
    parser.add_argument(
        "--no-quantize", action="store_true", help="save the full model (.bin), not quantized"
    )
    parser.add_argument(
        "--cutoff", type=int, default=100_000, help="words kept when quantizing (100000)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="also report precision/recall at this score (0.5)",
    )


def cmd_train_quality(args: argparse.Namespace) -> int:
    try:
        positives = [d for p in args.positive for d in read_documents(p, args.text_field)]
        negatives = [d for p in args.negative for d in read_documents(p, args.text_field)]
    except (OSError, ValueError) as exc:
        print(f"crawlmill train-quality: {exc}", file=sys.stderr)
        return 2
    if not positives or not negatives:
        print("crawlmill train-quality: need positive and negative documents", file=sys.stderr)
        return 2
    try:
        metrics = train(
            positives, negatives, args.output,
            test_fraction=args.test_fraction, seed=args.seed, epoch=args.epoch, lr=args.lr,
            word_ngrams=args.word_ngrams, dim=args.dim, min_count=args.min_count,
            quantize=not args.no_quantize, cutoff=args.cutoff, threshold=args.threshold,
        )  # fmt: skip
    except ValueError as exc:
        print(f"crawlmill train-quality: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2))
    return 0


def add_command(subparsers) -> None:
    """Add `train-quality` to a CLI's subparsers (pipeline.cli.extra_commands)."""
    parser = subparsers.add_parser(
        "train-quality",
        help="train a fastText quality classifier (held-out precision/recall/ROC-AUC)",
        description=(
            "Train a fastText quality classifier from good and bad documents, hold out a "
            "fraction to report precision, recall, F1 and ROC-AUC, and save the (quantized) "
            "model. Use it with --set filters.classifier.model=MODEL.ftz "
            "(label: hq)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--positive",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help='good documents: JSONL with a "text" field (or .txt, one per line); repeatable',
    )
    parser.add_argument(
        "--negative",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="bad documents, same formats; repeatable",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="model file to write (.ftz)"
    )
    parser.add_argument("--text-field", default="text", help="JSONL field holding the text")
    _add_training_options(parser)
    parser.set_defaults(func=cmd_train_quality)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filters.train_quality", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_command(sub)
    rec = sub.add_parser("recipe", help="rebuild the default model from ../shared/data")
    rec.add_argument("--shared", type=Path, default=SHARED_DATA, help="the shared data folder")
    rec.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    rec.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "recipe":
        if not args.shared.is_dir():
            print(f"{args.shared}: not found (the recipe reads ../shared/data)", file=sys.stderr)
            return 2
        metrics = recipe(args.shared, args.output, seed=args.seed)
        print(json.dumps(metrics, indent=2))
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
