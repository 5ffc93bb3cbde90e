"""The rule-filter stage: text statistics once per document, then every rule in order.

`TextFilterStage` runs after language ID. For each document still alive it builds one
`DocStats` (filters/textstats.py) and asks each enabled filter of `TEXT_FILTERS` for its
scores: Gopher repetition, Gopher quality, C4 (which also cleans lines), FineWeb (on the
C4-cleaned lines) and content safety. The scores become columns (pipeline/schema.py) for
every document alive when the stage starts, so a threshold change can be previewed from
the columns without recomputing; rows dropped earlier get nulls, as do rules that do not
apply to a document's language.

Then each filter's rules are applied to the score columns in registry order, each rule
one `drop_reason` (first failing rule wins, `mark_dropped`), each switchable with
`filters.disabled_rules`. Documents that stay get C4's cleaned text in `text`; rejected
ones keep their original text, which is what an audit of the rejection needs.

The registry is an explicit list: adding a filter means a scores function, a `TextFilter`
entry with its rules, and its columns in pipeline/schema.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.c4 import clean_lines
from filters.fineweb import fineweb_scores
from filters.gopher import DUP_NGRAMS, TOP_NGRAMS, quality_scores, repetition_scores
from filters.safety import default_banned_words
from filters.textstats import compute_stats
from pipeline import schema as S
from pipeline.config import FiltersConfig
from pipeline.stage import alive_mask, mark_dropped, set_column

R = S.Reason


@dataclass(frozen=True)
class Rule:
    """One drop reason: fails(scores of its column, filter config) -> bool per row.
    Null scores (NaN) never fail: the rule does not apply there."""

    reason: str
    column: str
    fails: Callable[[np.ndarray, object], np.ndarray]


@dataclass(frozen=True)
class TextFilter:
    """A named group of rules; `name` is its section under `filters:` in the config."""

    name: str
    rules: list[Rule]


def _top_ngram_rule(n: int) -> Rule:
    column = S.GOPHER_TOP_NGRAM_CHAR_FRAC[n]
    return Rule(
        R.GOPHER_TOP_NGRAM[n], column, lambda v, c: v > getattr(c, f"max_top_{n}gram_char_frac")
    )


def _dup_ngram_rule(n: int) -> Rule:
    column = S.GOPHER_DUP_NGRAM_CHAR_FRAC[n]
    return Rule(
        R.GOPHER_DUP_NGRAM[n], column, lambda v, c: v > getattr(c, f"max_dup_{n}gram_char_frac")
    )


GOPHER_REPETITION = TextFilter(
    "gopher_repetition",
    [
        Rule(R.GOPHER_DUP_PARA_FRAC, S.GOPHER_DUP_PARA_FRAC, lambda v, c: v > c.max_dup_para_frac),
        Rule(
            R.GOPHER_DUP_PARA_CHAR_FRAC,
            S.GOPHER_DUP_PARA_CHAR_FRAC,
            lambda v, c: v > c.max_dup_para_char_frac,
        ),
        Rule(R.GOPHER_DUP_LINE_FRAC, S.GOPHER_DUP_LINE_FRAC, lambda v, c: v > c.max_dup_line_frac),
        Rule(
            R.GOPHER_DUP_LINE_CHAR_FRAC,
            S.GOPHER_DUP_LINE_CHAR_FRAC,
            lambda v, c: v > c.max_dup_line_char_frac,
        ),
        *[_top_ngram_rule(n) for n in TOP_NGRAMS],
        *[_dup_ngram_rule(n) for n in DUP_NGRAMS],
    ],
)

GOPHER_QUALITY = TextFilter(
    "gopher_quality",
    [
        Rule(R.GOPHER_TOO_FEW_WORDS, S.GOPHER_WORDS, lambda v, c: v < c.min_words),
        Rule(R.GOPHER_TOO_MANY_WORDS, S.GOPHER_WORDS, lambda v, c: v > c.max_words),
        Rule(
            R.GOPHER_MEAN_WORD_LENGTH,
            S.GOPHER_MEAN_WORD_LENGTH,
            lambda v, c: (v < c.min_mean_word_length) | (v > c.max_mean_word_length),
        ),
        Rule(
            R.GOPHER_SYMBOL_RATIO,
            S.GOPHER_SYMBOL_WORD_RATIO,
            lambda v, c: v > c.max_symbol_word_ratio,
        ),
        Rule(R.GOPHER_BULLET_LINES, S.GOPHER_BULLET_LINES, lambda v, c: v > c.max_bullet_lines),
        Rule(
            R.GOPHER_ELLIPSIS_LINES, S.GOPHER_ELLIPSIS_LINES, lambda v, c: v > c.max_ellipsis_lines
        ),
        Rule(R.GOPHER_ALPHA_WORDS, S.GOPHER_ALPHA_WORDS, lambda v, c: v < c.min_alpha_words),
        Rule(R.GOPHER_STOP_WORDS, S.GOPHER_STOP_WORDS, lambda v, c: v < c.min_stop_words),
    ],
)

C4 = TextFilter(
    "c4",
    [
        Rule(R.C4_LOREM_IPSUM, S.C4_LOREM_IPSUM, lambda v, c: v == 1),
        Rule(R.C4_CURLY_BRACKET, S.C4_CURLY_BRACKET, lambda v, c: v == 1),
        # every kept line has at least one sentence: none means no line was kept
        Rule(R.C4_EMPTY, S.C4_SENTENCES, lambda v, c: v == 0),
        Rule(R.C4_TOO_FEW_SENTENCES, S.C4_SENTENCES, lambda v, c: v < c.min_sentences),
    ],
)

FINEWEB = TextFilter(
    "fineweb",
    [
        Rule(R.FINEWEB_LINE_PUNCT, S.FINEWEB_LINE_PUNCT, lambda v, c: v < c.min_line_punct),
        Rule(R.FINEWEB_SHORT_LINES, S.FINEWEB_SHORT_LINES, lambda v, c: v > c.max_short_lines),
        Rule(
            R.FINEWEB_DUP_LINE_CHARS,
            S.FINEWEB_DUP_LINE_CHARS,
            lambda v, c: v > c.max_dup_line_chars,
        ),
        Rule(
            R.FINEWEB_NEWLINE_WORDS, S.FINEWEB_NEWLINE_WORDS, lambda v, c: v > c.max_newline_words
        ),
    ],
)

SAFETY = TextFilter(
    "safety",
    [
        Rule(
            R.SAFETY_BANNED_WORDS,
            S.BANNED_WORD_RATIO,
            lambda v, c: v > c.max_banned_word_ratio,
        )
    ],
)

# The order rules are applied in (FineWeb's pipeline order, then safety).
TEXT_FILTERS: list[TextFilter] = [GOPHER_REPETITION, GOPHER_QUALITY, C4, FINEWEB, SAFETY]

# Columns this stage writes (every one, null where not computed).
TEXT_FILTER_COLUMNS = [
    (name, type_)
    for name, type_ in S.FILTER_SCORE_FIELDS
    if name not in (S.URL_MATCH, S.QUALITY_SCORE)
]


def all_rule_reasons() -> set[str]:
    """Every drop reason a filter rule can set: what filters.disabled_rules accepts."""
    from filters.urls import URL_RULE_REASONS

    reasons = {rule.reason for text_filter in TEXT_FILTERS for rule in text_filter.rules}
    return reasons | set(URL_RULE_REASONS) | {R.QUALITY_LOW_SCORE}


def score_document(text: str, lang: str | None, cfg: FiltersConfig) -> tuple[dict, str | None]:
    """All enabled filters' scores for one document, and C4's cleaned text (None when C4
    is off). The statistics are computed once and shared."""
    stats = compute_stats(text, lang)
    scores: dict = {}
    cleaned = None
    if cfg.gopher_repetition.enabled:
        scores.update(repetition_scores(stats))
    if cfg.gopher_quality.enabled:
        scores.update(quality_scores(stats))
    if cfg.c4.enabled:
        c4_scores, cleaned = clean_lines(stats, cfg.c4)
        scores.update(c4_scores)
    if cfg.fineweb.enabled:
        scores.update(fineweb_scores(stats, cleaned, cfg.fineweb))
    if cfg.safety.enabled and lang in cfg.safety.languages:
        scores[S.BANNED_WORD_RATIO] = default_banned_words().ratio(stats)
    return scores, None if cleaned is None else cleaned.text


class TextFilterStage:
    """Stage: Gopher repetition + quality, C4, FineWeb and safety scores, then drops."""

    name = "text_filters"

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self.disabled = set(cfg.disabled_rules)

    def __call__(self, batch: pa.Table) -> pa.Table:
        todo = pc.and_(alive_mask(batch), pc.is_valid(batch[S.TEXT])).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(todo)
        texts = batch[S.TEXT].to_pylist()
        langs = batch[S.LANG].to_pylist() if S.LANG in batch.column_names else [None] * len(texts)
        scored = {int(i): score_document(texts[i], langs[i], self.cfg) for i in rows}

        values = {}  # column -> float array (NaN = null), for the rules
        for name, type_ in TEXT_FILTER_COLUMNS:
            column = [scored[i][0].get(name) if i in scored else None for i in range(len(texts))]
            batch = set_column(batch, name, pa.array(column, type_), type_)
            values[name] = np.array([np.nan if v is None else float(v) for v in column], np.float64)

        for text_filter in TEXT_FILTERS:
            section = getattr(self.cfg, text_filter.name)
            if not section.enabled:
                continue
            for rule in text_filter.rules:
                if rule.reason in self.disabled:
                    continue
                with np.errstate(invalid="ignore"):
                    fails = np.asarray(rule.fails(values[rule.column], section), bool)
                batch = mark_dropped(batch, pa.array(fails & todo), rule.reason, text_filter.name)

        if self.cfg.c4.enabled and len(rows):
            alive = alive_mask(batch).to_numpy(zero_copy_only=False)
            new_texts = [
                scored[i][1] if (i in scored and alive[i]) else texts[i] for i in range(len(texts))
            ]
            batch = set_column(
                batch, S.TEXT, pa.array(new_texts, pa.large_string()), pa.large_string()
            )
        return batch
