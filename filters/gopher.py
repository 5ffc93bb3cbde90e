"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models:
Methods, Analysis & Insights from Training Gopher", appendix A.1.1 and table A1).

Scores only: each function reads a `DocStats` (filters/textstats.py, computed once per
document) and returns the score columns; the thresholds are applied by filters/rules.py
from config, one drop reason per rule. The definitions follow datatrove's implementation
(the reference FineWeb used), so that decisions agree on the same text (docs/FILTERS.md):

- repetition: paragraphs are split on 2+ newlines, lines on 1+; "duplicate" counts every
  occurrence after the first; n-gram character shares are over all tokens including
  punctuation; repeated n-grams are counted greedily without overlap.
- quality: word counts and mean length are over tokens with a non-punctuation character;
  the symbol ratio is "#" and ellipses per token; stop words are counted once each.

Language-aware: for scripts without spaces (textstats.NO_SPACE_LANGS) tokens are
characters, n-grams are measured without separators and the mean-word-length rule does
not apply (null score); stop words come from textstats.STOP_WORDS, and languages without
a list get a null stop-word score (rule skipped).
"""

from __future__ import annotations

import re
from bisect import bisect_left

import numpy as np

from filters.textstats import STOP_WORDS, DocStats
from pipeline import schema as S

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)
# Scripts without spaces: n-gram rules use n-grams of this many characters per word
# (Chinese words average ~1.5-1.7 characters, Japanese ~2; measured on the CC-MAIN-2020-50
# WET sample, 2n characters give zh/ja repeated-n-gram shares close to English's).
CHARS_PER_WORD_NO_SPACE = 2
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")


def duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items seen before, their characters): Gopher's duplicate counts."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _ngram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 key per n-gram of token ids (a polynomial hash; collisions need two
    different n-grams of one document to agree on 64 bits)."""
    keys = ids[: len(ids) - n + 1].astype(np.uint64)
    for k in range(1, n):
        keys = keys * np.uint64(0x9E3779B97F4A7C15) + ids[k : len(ids) - n + 1 + k].astype(
            np.uint64
        )
    return keys


def _top_ngram_chars(keys: np.ndarray, ngram_chars: np.ndarray) -> int:
    """Characters covered by the most frequent n-gram (count x its length); among equally
    frequent n-grams the first one seen, as Counter.most_common does. 0 when no n-gram
    occurs twice."""
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    best = counts.max()
    if best < 2:  # an n-gram seen once is not repetition (datatrove counts it: short texts)
        return 0
    top = np.flatnonzero(counts == best)
    first_position = first[top].min()
    return int(best * ngram_chars[first_position])


def _repeated_ngram_chars(keys: np.ndarray, ngram_chars: np.ndarray, n: int) -> int:
    """Characters in n-grams that occur again, scanning left to right and jumping past a
    repeat (no overlap): Gopher's "duplicate n-gram character fraction" as datatrove
    computes it. Only positions whose n-gram occurs more than once can matter, so the
    loop visits those alone."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if counts.max(initial=0) < 2:
        return 0
    candidates = np.flatnonzero(counts[inverse] > 1).tolist()
    keys_list = keys.tolist()
    seen: set[int] = set()
    total = i = next_free = 0
    while i < len(candidates):
        position = candidates[i]
        if position < next_free:
            i = bisect_left(candidates, next_free, i)
            continue
        key = keys_list[position]
        if key in seen:
            total += int(ngram_chars[position])
            next_free = position + n
            i = bisect_left(candidates, next_free, i + 1)
        else:
            seen.add(key)
            i += 1
    return total


def repetition_scores(stats: DocStats) -> dict[str, float | None]:
    """Gopher repetition scores: duplicate paragraphs/lines and n-gram character shares."""
    text = stats.text
    length = len(text) or 1
    paragraphs = _PARAGRAPH_BREAK.split(text.strip())
    para_dups, para_dup_chars = duplicates(paragraphs)
    # Lines as re.split("\n+", text): no empty lines except at the very start or end.
    lines = [line for line in stats.lines if line]
    if text.startswith("\n"):
        lines.insert(0, "")
    if text.endswith("\n"):
        lines.append("")
    line_dups, line_dup_chars = duplicates(lines)
    scores: dict[str, float | None] = {
        S.GOPHER_DUP_PARA_FRAC: para_dups / len(paragraphs),
        S.GOPHER_DUP_PARA_CHAR_FRAC: para_dup_chars / length,
        S.GOPHER_DUP_LINE_FRAC: line_dups / max(len(lines), 1),
        S.GOPHER_DUP_LINE_CHAR_FRAC: line_dup_chars / length,
    }

    ids, lengths = stats.token_ids, stats.token_lengths
    separator = 0 if stats.no_space else 1  # top n-grams are " ".join-ed, repeats "".join-ed
    cumulative = np.concatenate(([0], np.cumsum(lengths)))
    # Without spaces, tokens are characters and a word is ~1.5-2 of them: an n-gram of
    # words is measured as an n-gram of 2n characters.
    scale = CHARS_PER_WORD_NO_SPACE if stats.no_space else 1
    for n in TOP_NGRAMS:
        column = S.GOPHER_TOP_NGRAM_CHAR_FRAC[n]
        k = n * scale
        if len(ids) < k:
            scores[column] = 0.0
            continue
        chars = cumulative[k:] - cumulative[:-k] + separator * (k - 1)
        scores[column] = _top_ngram_chars(_ngram_keys(ids, k), chars) / length
    for n in DUP_NGRAMS:
        column = S.GOPHER_DUP_NGRAM_CHAR_FRAC[n]
        k = n * scale
        if len(ids) < k:
            scores[column] = 0.0
            continue
        chars = cumulative[k:] - cumulative[:-k]
        scores[column] = _repeated_ngram_chars(_ngram_keys(ids, k), chars, k) / length
    return scores


def quality_scores(stats: DocStats) -> dict[str, float | int | None]:
    """Gopher quality scores: word count, mean word length, symbols, bullets, ellipses,
    alphabetic words, stop words."""
    text = stats.text
    ids = stats.token_ids
    n_tokens = len(ids)
    is_word = stats.vocab_is_word[ids]
    n_words = int(is_word.sum())
    mean_length = float(stats.token_lengths[is_word].mean()) if n_words else 0.0
    symbols = max(text.count("#"), text.count("...") + text.count("…"))
    lines = stats.lines
    bullets = sum(line.lstrip().startswith(_BULLETS) for line in lines)
    ellipses = sum(line.rstrip().endswith(_ELLIPSES) for line in lines)
    stop_words = STOP_WORDS.get(stats.lang or "")
    return {
        S.GOPHER_WORDS: n_words,
        S.GOPHER_MEAN_WORD_LENGTH: None if stats.no_space else mean_length,
        S.GOPHER_SYMBOL_WORD_RATIO: symbols / n_tokens if n_tokens else 0.0,
        S.GOPHER_BULLET_LINES: bullets / len(lines),
        S.GOPHER_ELLIPSIS_LINES: ellipses / len(lines),
        S.GOPHER_ALPHA_WORDS: (float(stats.vocab_has_alpha[ids].mean()) if n_tokens else 0.0),
        S.GOPHER_STOP_WORDS: (
            None if stop_words is None else len(stop_words.intersection(stats.vocab))
        ),
    }
