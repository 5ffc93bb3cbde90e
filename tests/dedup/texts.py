"""Deterministic test documents: random word sequences, and edited copies of them."""

from __future__ import annotations

import random

# 600 pseudo-words (syllable pairs): enough that two random documents share no 5-gram.
_SYLLABLES = [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "ai")]
WORDS = [a + b for a in _SYLLABLES[:30] for b in _SYLLABLES[30:50]]
# 400 common Chinese characters (the first CJK block, spaced), for character shingles.
HANZI = [chr(0x4E00 + 37 * i) for i in range(400)]


def words_text(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(n)]
    # sentences and paragraphs, so normalisation has punctuation and newlines to remove
    out = []
    for i, word in enumerate(words):
        out.append(word.capitalize() if i % 12 == 0 else word)
        if i % 12 == 11:
            out[-1] += "."
        if i % 60 == 59:
            out[-1] += "\n"
    return " ".join(out)


def hanzi_text(seed: int, n: int = 400) -> str:
    rng = random.Random(seed)
    chars = [rng.choice(HANZI) for _ in range(n)]
    return "".join(c + ("。" if i % 20 == 19 else "") for i, c in enumerate(chars))


def edited(text: str, edits: int, seed: int, alphabet=None) -> str:
    """`text` with `edits` tokens replaced (words, or characters for a CJK text)."""
    rng = random.Random(seed)
    if alphabet is None:
        tokens = text.split(" ")
        for _ in range(edits):
            tokens[rng.randrange(len(tokens))] = rng.choice(WORDS) + "x"
        return " ".join(tokens)
    chars = list(text)
    for _ in range(edits):
        chars[rng.randrange(len(chars))] = rng.choice(alphabet)
    return "".join(chars)
