"""Train the fastText domain classifier and report held-out accuracy per class.

    crawlmill train-domain DATA.jsonl [DATA2.jsonl ...] -o model.ftz
    python -m mixers.train_domain recipe [--shared ../shared/data] [-o MODEL.ftz]

`train-domain` reads JSONL files, one {"text": ..., "label": ...} per line (label: one of
pipeline.config.DOMAIN_LABELS; "group" optional, e.g. the host, so pages of one site never
straddle the split), holds out a deterministic fraction of groups (hash of seed + group),
trains fastText on the rest (single thread, fixed seed: the same data gives the same
bytes), quantizes it and reports precision, recall and F1 per class on the held-out
documents. The report is printed as JSON and written beside the model
(`MODEL.metrics.json`).

`recipe` rebuilds the model shipped in mixers/data/ from the real pages beside the project
(../shared/data; nothing is copied into the repository). Labels are *weak*:

1. every English page (lid.176) of `bench/realpages.warc.gz` and the WARC/WET samples in
   `warc/` whose URL matches a URL rule of mixers/domains.py (known hosts, UT1 categories,
   .edu/.ac.xx) takes that rule's label;
2. pages without one take a lexicon label when their text is unambiguous: at least
   `LEXICON_MIN_HITS` distinct cue words of one domain's `LEXICON` and twice as many as
   any other domain (Snorkel-style labelling functions, Ratner et al. 2017);
3. the rest are not used;
4. plus `mixers/data/seed_domains.jsonl`: 48 short texts written for this project for the
   classes the real pages here barely hold (science: 4 pages carry a science URL).

The classifier learns the vocabulary around those cues, so it labels pages that carry
few of them; its held-out figures measure agreement with the weak labels, not truth
(docs/DOMAINS.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from filters.train_quality import fit_fasttext, held_out
from mixers.domains import DEFAULT_MODEL, OTHER, domain_input, predict_domains, url_labels
from pipeline.config import DOMAIN_LABELS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Short texts written for this project for the classes real pages here barely hold
# (science 4 pages, code 1, academic 20 ...): docs/DOMAINS.md.
SEED_TEXTS = Path(__file__).resolve().parent / "data" / "seed_domains.jsonl"
MAX_CHARS = 4000  # = domains.max_chars: what the stage gives the model


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Cue words per domain for the weak labels of the recipe (lowercase, whole words).
LEXICON: dict[str, frozenset[str]] = {
    "ecommerce": _words(
        """
        buy cart checkout coupon customer deals delivery discount instock order orders price
        prices quantity refund retail returns reviews sale seller sellers shipping shop sku
        stock warranty wishlist
        """
    ),
    "social_forum": _words(
        """
        blog blogger comment comments followers forum forums joined likes lol member members
        moderator post posted posts profile quote replies reply subscribe thanks thread
        topic
        """
    ),
    "entertainment": _words(
        """
        actor actress album basketball betting casino celebrity concert episode fans film
        films football game games gaming goal league match movie movies music nba nfl poker
        season show singer soccer song songs star stars tournament trailer tv
        """
    ),
    "news": _words(
        """
        according agency correspondent election government minister officials parliament
        percent police president reported reporter reuters said spokesman statement told
        week
        """
    ),
    "technology": _words(
        """
        android api app apple apps browser chip cloud computer computers data database
        device devices hardware internet iphone linux network processor server servers
        software tech technology user users web windows
        """
    ),
    "science": _words(
        """
        astronomy biology cell cells chemistry dna electron empirical equation equations
        evolution experiment experimental experiments galaxies galaxy genome hypothesis
        laboratory measurement measurements molecule molecules neutron particle particles
        photon physics protein proteins quantum researchers simulations species spectrum
        theorem theoretical
        """
    ),
    "academic_education": _words(
        """
        academic campus course courses curriculum degree enrollment faculty graduate lecture
        lectures phd professor scholarship semester student students thesis tuition
        undergraduate universities university
        """
    ),
    "code": _words(
        """
        class commit compile compiler function functions github import int java javascript
        library method methods module npm pip python repository return string syntax
        variable variables
        """
    ),
    "health": _words(
        """
        cancer clinical diabetes diagnosis disease diseases doctor doctors dose drug drugs
        health hospital infection medical medicine patient patients symptoms therapy
        treatment vaccine
        """
    ),
    "finance": _words(
        """
        bank banks credit dividend earnings fund funds inflation interest investing
        investment investors loan loans market markets mortgage portfolio rates revenue
        shares stock stocks tax
        """
    ),
}
LEXICON_MIN_HITS = 6  # distinct cue words of the winning domain
LEXICON_MARGIN = 2.0  # ... and this many times the runner-up's
_WORD = re.compile(r"[a-z]+")


def lexicon_label(text: str) -> str | None:
    """The weak label of a page's text from LEXICON, or None when ambiguous."""
    words = set(_WORD.findall(text[:MAX_CHARS].lower()))
    hits = sorted(((len(words & cues), name) for name, cues in LEXICON.items()), reverse=True)
    (best, label), (second, _) = hits[0], hits[1]
    if best >= LEXICON_MIN_HITS and best >= LEXICON_MARGIN * second:
        return label
    return None


# --- training -----------------------------------------------------------------------------------


def read_labelled(path: Path) -> list[dict]:
    """{"text", "label", "group"} rows of a JSONL file; a clear error naming the line."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc})") from None
            if not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{n}: no string field 'text'")
            if record.get("label") not in DOMAIN_LABELS:
                raise ValueError(
                    f"{path}:{n}: label {record.get('label')!r} is not one of "
                    + ", ".join(DOMAIN_LABELS)
                )
            group = str(record.get("group") or f"{path.name}:{n}")
            docs.append({"text": record["text"], "label": record["label"], "group": group})
    return docs


def per_class_metrics(truth: list[str], predicted: list[str]) -> dict:
    labels = sorted(set(truth) | set(predicted))
    out = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        n_true = sum(t == label for t in truth)
        n_pred = sum(p == label for p in predicted)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {
            "support": n_true,
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(f1, 3),
        }
    return out


def train(
    docs: list[dict],
    output: Path,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    epoch: int = 25,
    lr: float = 0.5,
    word_ngrams: int = 2,
    dim: int = 32,
    min_count: int = 2,
    quantize: bool = True,
    cutoff: int = 100_000,
    min_score: float = 0.4,
    min_class_rows: int = 100,
    log=print,
) -> dict:
    """Train, quantize, save to `output`; return the held-out metrics per class."""

    train_rows, test_rows = [], []
    for doc in docs:
        line = domain_input(doc["text"], MAX_CHARS)
        if not line.strip():
            continue
        side = test_rows if held_out(doc["group"], seed, test_fraction) else train_rows
        side.append((doc["label"], line))
    if not train_rows or not test_rows:
        raise ValueError("too few documents to hold some out: give more, or another seed")
    # Small classes are repeated up to ~min_class_rows training rows (science has 25
    # documents, news 222): without it the softmax rarely puts mass on them.
    counts = Counter(label for label, _ in train_rows)
    train_rows = [
        row for row in train_rows for _ in range(max(1, -(-min_class_rows // counts[row[0]])))
    ]
    model, seconds = fit_fasttext(
        train_rows, output, seed=seed, epoch=epoch, lr=lr, word_ngrams=word_ngrams, dim=dim,
        min_count=min_count, quantize=quantize, cutoff=cutoff,
    )  # fmt: skip

    truth = [label for label, _ in test_rows]
    top, probs = predict_domains(model, [line for _, line in test_rows])
    gated = [label if p >= min_score else OTHER for label, p in zip(top, probs, strict=True)]
    confident = probs >= min_score
    correct = np.array([t == p for t, p in zip(truth, top, strict=True)])
    metrics = {
        "model": output.name,
        "model_bytes": output.stat().st_size,
        "quantized": quantize,
        "train": {
            "documents": sum(counts.values()),
            "per_class": dict(sorted(counts.items())),
            "rows_after_balancing": len(train_rows),
            "seconds": round(seconds, 1),
        },
        "held_out": {
            "documents": len(test_rows),
            "accuracy_top1": round(float(correct.mean()), 3),
            "min_score": min_score,
            "coverage_at_min_score": round(float(confident.mean()), 3),
            "accuracy_at_min_score": round(
                float(correct[confident].mean()) if confident.any() else 0.0, 3
            ),
            "per_class_top1": per_class_metrics(truth, top),
            "per_class_at_min_score": per_class_metrics(truth, gated),
        },
        "params": {
            "test_fraction": test_fraction, "seed": seed, "epoch": epoch, "lr": lr,
            "word_ngrams": word_ngrams, "dim": dim, "min_count": min_count,
            "cutoff": cutoff, "max_chars": MAX_CHARS, "min_class_rows": min_class_rows,
        },
    }  # fmt: skip
    output.with_name(output.name + ".metrics.json").write_text(
        json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    )
    return metrics


# --- the recipe of the shipped model ------------------------------------------------------------


def real_pages(shared: Path) -> list[dict]:
    """(url, text, id) of every page of realpages + the WARC/WET samples with >= 20 words
    of main text (resiliparse: ~10x trafilatura's speed, same labels for our purpose)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text

    from pipeline.decode import decode_html

    files = [shared / "bench" / "realpages.warc.gz"]
    files += sorted((shared / "warc").rglob("*.warc.gz")) + sorted(
        (shared / "warc").rglob("*.wet.gz")
    )
    pages = []
    wanted = WarcRecordType.response | WarcRecordType.conversion
    for path in files:
        try:
            with open(path, "rb") as stream:
                for record in ArchiveIterator(stream, record_types=wanted):
                    url = record.headers.get("WARC-Target-URI") or ""
                    if record.record_type == WarcRecordType.conversion:
                        text = record.reader.read().decode("utf-8", "replace")
                    else:
                        record.parse_http()
                        body = record.reader.read()
                        ctype = record.http_headers.get("Content-Type")
                        html, _ = decode_html(body, ctype)
                        text = extract_plain_text(html, main_content=True) if html else ""
                    if text and len(text.split()) >= 20:
                        pages.append(
                            {"url": url, "text": text, "id": record.headers.get("WARC-Record-ID")}
                        )
        except Exception as exc:  # broken sample files (edge-case fixtures): skip the rest
            print(f"  {path.name}: stopped reading ({type(exc).__name__}: {exc})", file=sys.stderr)
    return pages  # fmt: skip


def recipe_documents(shared: Path, log=print) -> list[dict]:
    """The weakly labelled English pages of the recipe (see the module docstring)."""
    from filters.langid import LangIdStage
    from filters.urls import parse_host
    from pipeline.config import Config

    pages = real_pages(shared)
    langs, _ = LangIdStage(Config().langid).predict([p["text"] for p in pages])
    seen, docs = set(), []
    sources: Counter = Counter()
    for page, lang, found in zip(pages, langs, url_labels([p["url"] for p in pages]), strict=True):
        digest = hashlib.sha1(page["text"].encode()).digest()
        if lang != "en" or digest in seen:  # the same page in two samples counts once
            continue
        seen.add(digest)
        label, source = (found[0], "url") if found else (lexicon_label(page["text"]), "lexicon")
        if label is None or label == OTHER:
            continue
        host = parse_host(page["url"])[0]
        # pages of one host stay on one side of the split; unknown hosts group by page
        group = host if host and not host.endswith(".invalid") else page["id"] or page["url"]
        docs.append({"text": page["text"], "label": label, "group": group})
        sources[f"{source}:{label}"] += 1
    labelled = dict(sorted(sources.items()))
    log(f"  {len(pages)} pages, {len(docs)} weakly labelled English: {labelled}")
    return docs


def recipe(shared: Path, output: Path, seed: int = 0, log=print) -> dict:
    docs = recipe_documents(shared, log) + read_labelled(SEED_TEXTS)
    metrics = train(docs, output, seed=seed, log=log)
    metrics["recipe"] = "python -m mixers.train_domain recipe (make train-domain)"
    output.with_name(output.name + ".metrics.json").write_text(
        json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    )
    return metrics


# --- command line -------------------------------------------------------------------------------


def cmd_train_domain(args: argparse.Namespace) -> int:
    try:
        docs = [d for path in args.data for d in read_labelled(path)]
        if not docs:
            raise ValueError("no labelled documents in " + ", ".join(map(str, args.data)))
        metrics = train(
            docs, args.output, test_fraction=args.test_fraction, seed=args.seed,
            epoch=args.epoch, lr=args.lr, dim=args.dim, quantize=not args.no_quantize,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        print(f"crawlmill train-domain: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def add_command(subparsers) -> None:
    """Add `train-domain` to a CLI's subparsers (pipeline.cli.extra_commands)."""
    parser = subparsers.add_parser(
        "train-domain",
        help="train a fastText domain classifier (held-out precision/recall per class)",
        description=(
            'Train a fastText domain classifier from JSONL rows {"text", "label", "group"?} '
            f"(labels: {', '.join(DOMAIN_LABELS)}). Use it with --set domains.model=MODEL.ftz."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("data", type=Path, nargs="+", help="labelled JSONL file(s)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="model file (.ftz)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="groups held out")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--epoch", type=int, default=25, help="fastText epochs")
    parser.add_argument("--lr", type=float, default=0.5, help="fastText learning rate")
    parser.add_argument("--dim", type=int, default=32, help="embedding size")
    parser.add_argument("--no-quantize", action="store_true", help="save the full model")
    parser.set_defaults(func=cmd_train_domain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixers.train_domain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_command(sub)
    rec = sub.add_parser("recipe", help="rebuild the shipped model from ../shared/data")
    rec.add_argument("--shared", type=Path, default=SHARED_DATA)
    rec.add_argument("-o", "--output", type=Path, default=DEFAULT_MODEL)
    rec.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "recipe":
        if not args.shared.is_dir():
            print(f"{args.shared}: not found (the recipe reads ../shared/data)", file=sys.stderr)
            return 2
        print(json.dumps(recipe(args.shared, args.output, seed=args.seed), indent=2))
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
