"""fastText quality classifier stage: `quality_score` = P(good label), config decides drops.

Rules catch what is measurable (repetition, symbols, line shapes); a classifier catches
text that is well-formed but worthless (spam, SEO filler, chrome that passed the rules).
The Qwen reports filter with both; so do FineWeb-Edu and DCLM, with fastText because it
scores ~thousands of documents per second per core.

The default model (`filters/data/quality_en.ftz`, quantized, 2.7 MB) is trained by
`python -m filters.train_quality recipe` from clean article text (Dragnet gold standard,
CCNet head) against spam, page chrome and rule-rejected crawl text; its recipe and
held-out figures are in docs/FILTERS.md. It is English: other languages get a null score
unless listed in filters.classifier.languages. Any fastText model can be used instead
(filters.classifier.model = a path, .label = its positive label), e.g. one trained with
`crawlmill train-quality`.

Training and scoring see the same text: `model_input` lowercases it, puts spaces around
every symbol (fastText splits words on whitespace only) and makes it one line: one C-level
regex pass, no tokenizer run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.langid import load_fasttext_model
from pipeline import schema as S
from pipeline.config import ClassifierConfig
from pipeline.stage import alive_mask, mark_dropped, set_column

DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "quality_en.ftz"
LABEL_PREFIX = "__label__"
_SYMBOL = re.compile(r"([^\w\s])")


def model_input(text: str, max_chars: int) -> str:
    """The one line a quality model sees for a text (training and scoring alike)."""
    return _SYMBOL.sub(r" \1 ", text[:max_chars].lower()).replace("\n", " ")


def load_shipped_or_file(model: str, shipped: Path, key: str):
    """The fastText model a config key names: "default" (the shipped one) or a file; a
    missing or unreadable file is an error naming the key. The quality and domain
    classifiers' loader."""
    if model == "default":
        return load_fasttext_model(str(shipped))
    try:
        return load_fasttext_model(model)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{key}: {model!r} is neither 'default' nor an existing fastText model file"
        ) from None
    except ValueError as exc:  # fastText's "... has wrong file format!"
        raise ValueError(f"{key}: {exc}") from None


def load_quality_model(model: str):
    return load_shipped_or_file(model, DEFAULT_MODEL, "filters.classifier.model")


def label_probabilities(model, lines: list[str], label: str) -> np.ndarray:
    """P(label) for each line (0 where the model never predicts the label)."""
    if not lines:
        return np.zeros(0, np.float32)
    wanted = LABEL_PREFIX + label
    labels, probs = model.predict(lines, k=-1)
    out = np.zeros(len(lines), np.float32)
    for i, (row_labels, row_probs) in enumerate(zip(labels, probs, strict=True)):
        for name, prob in zip(row_labels, row_probs, strict=True):
            if name == wanted:
                out[i] = prob
                break
    return np.clip(out, 0.0, 1.0)


class QualityClassifierStage:
    """Stage: quality_score for alive documents in the model's languages, then drops."""

    name = "quality_classifier"

    def __init__(self, cfg: ClassifierConfig, disabled_rules: list[str] = ()) -> None:
        self.cfg = cfg
        self.disabled_rules = list(disabled_rules)
        self.model = load_quality_model(cfg.model) if cfg.enabled else None
        if self.model is not None:
            known = {name.removeprefix(LABEL_PREFIX) for name in self.model.get_labels()}
            if cfg.label not in known:
                raise ValueError(
                    f"filters.classifier.label: {cfg.label!r} is not a label of the model "
                    f"(it has {sorted(known)})"
                )

    def __reduce__(self):
        # fastText models do not pickle: ship the config, load again in the worker.
        return (QualityClassifierStage, (self.cfg, self.disabled_rules))

    def scores(self, texts: list[str]) -> np.ndarray:
        lines = [model_input(text, self.cfg.max_chars) for text in texts]
        return label_probabilities(self.model, lines, self.cfg.label)

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        if self.model is None:
            return set_column(batch, S.QUALITY_SCORE, pa.nulls(n, pa.float32()), pa.float32())
        todo = pc.and_(alive_mask(batch), pc.is_valid(batch[S.TEXT])).to_numpy(zero_copy_only=False)
        languages = set(self.cfg.languages)
        langs = batch[S.LANG].to_pylist()
        todo &= np.fromiter((lang in languages for lang in langs), bool, n)
        rows = np.flatnonzero(todo)
        texts = batch[S.TEXT].take(pa.array(rows, pa.int64())).to_pylist()
        column = np.zeros(n, np.float32)
        column[rows] = self.scores(texts)
        batch = set_column(batch, S.QUALITY_SCORE, pa.array(column, mask=~todo), pa.float32())
        if S.Reason.QUALITY_LOW_SCORE in self.disabled_rules:
            return batch
        low = todo & (column < np.float32(self.cfg.min_score))
        return mark_dropped(batch, pa.array(low), S.Reason.QUALITY_LOW_SCORE, self.name)
