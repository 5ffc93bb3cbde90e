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
  the symbol ratio is the larger of the "#" and ellipsis counts per token; stop words are
  counted once each.

Language-aware: for scripts without spaces (textstats.NO_SPACE_LANGS) tokens are
characters, n-grams are measured without separators and the mean-word-length rule does
not apply (null score); stop words come from textstats.STOP_WORDS, and languages without
a list get a null stop-word score (rule skipped).
"""

from __future__ import annotations

import re
from bisect import bisect_left

import numpy as np

from filters.textstats import HAS_ALPHA, IS_WORD, STOP_WORDS, DocStats
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


_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def _extend_keys(keys: np.ndarray, ids: np.ndarray, positions: np.ndarray, start: int, n: int):
    """Keys of the n-grams at `positions`, from the keys of their first `start` tokens:
    one uint64 per n-gram, a polynomial hash of its token ids (collisions need two
    different n-grams of one document to agree on 64 bits)."""
    for k in range(start, n):
        keys = keys * _HASH_MULTIPLIER + ids[positions + k].astype(np.uint64)
    return keys


def _repeated_ngram_chars(positions: np.ndarray, keys: np.ndarray, chars: np.ndarray, n: int):
    """Characters in n-grams that occur again, scanning left to right and jumping past a
    repeat (no overlap): Gopher's "duplicate n-gram character fraction" as datatrove
    computes it. `positions` are the (sorted) starts of the n-grams that occur more than
    once, with their keys and characters: only those can count."""
    candidates = positions.tolist()
    keys_list = keys.tolist()
    seen: set[int] = set()
    total = i = next_free = 0
    while i < len(candidates):
        position = candidates[i]
        if position < next_free:
            i = bisect_left(candidates, next_free, i)
            continue
        key = keys_list[i]
        if key in seen:
            total += int(chars[i])
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
    scores.update(_ngram_scores(stats, length))
    return scores


def _ngram_scores(stats: DocStats, length: int) -> dict[str, float]:
    """Top 2-4-gram and duplicate 5-10-gram character shares, n ascending. An n-gram can
    occur twice only where its first n-1 tokens occur twice, so each n is computed on the
    positions where n-1 repeated: one np.unique over the whole document, then over ever
    fewer positions (3.0 s -> 1.6 s of CPU for the realpages sample's 3,853 documents)."""
    ids, lengths = stats.token_ids, stats.token_lengths
    separator = 0 if stats.no_space else 1  # top n-grams are " ".join-ed, repeats "".join-ed
    cumulative = np.concatenate(([0], np.cumsum(lengths)))
    # Without spaces, tokens are characters and a word is ~1.5-2 of them: an n-gram of
    # words is measured as an n-gram of 2n characters.
    scale = CHARS_PER_WORD_NO_SPACE if stats.no_space else 1
    scores: dict[str, float] = {}
    positions = np.arange(len(ids))
    keys = np.zeros(len(ids), np.uint64)
    done = 0  # tokens hashed into `keys` so far
    for n in (*TOP_NGRAMS, *DUP_NGRAMS):
        top = n in TOP_NGRAMS
        column = S.GOPHER_TOP_NGRAM_CHAR_FRAC[n] if top else S.GOPHER_DUP_NGRAM_CHAR_FRAC[n]
        k = n * scale
        fits = positions <= len(ids) - k
        positions, keys = positions[fits], keys[fits]
        if not len(positions):
            scores[column] = 0.0
            continue
        keys = _extend_keys(keys, ids, positions, done, k)
        done = k
        _, first, inverse, counts = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        if top:
            # the most frequent n-gram (count x its length); among equally frequent ones the
            # first seen, as Counter.most_common does. 0 when no n-gram occurs twice
            # (datatrove counts an n-gram seen once: short texts).
            best = int(counts.max())
            if best > 1:
                at = positions[first[counts == best]].min()
                top_chars = cumulative[at + k] - cumulative[at] + separator * (k - 1)
                scores[column] = best * int(top_chars) / length
            else:
                scores[column] = 0.0
        repeated = counts[inverse] > 1
        positions, keys = positions[repeated], keys[repeated]
        if not top:
            chars = cumulative[positions + k] - cumulative[positions]
            scores[column] = _repeated_ngram_chars(positions, keys, chars, k) / length
    return scores


def quality_scores(stats: DocStats) -> dict[str, float | int | None]:
    """Gopher quality scores: word count, mean word length, symbols, bullets, ellipses,
    alphabetic words, stop words."""
    text = stats.text
    n_tokens = stats.n_tokens
    is_word = (stats.token_classes & IS_WORD) > 0
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
        S.GOPHER_ALPHA_WORDS: (
            float(((stats.token_classes & HAS_ALPHA) > 0).mean()) if n_tokens else 0.0
        ),
        S.GOPHER_STOP_WORDS: (None if stop_words is None else stats.count_present(stop_words)),
    }
