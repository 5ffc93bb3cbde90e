"""Content safety: the share of a document's words that are banned words or phrases.

C4 (Raffel et al. 2020) drops every page containing any word of the "List of Dirty,
Naughty, Obscene or Otherwise Bad Words"; Dodge et al. 2021 ("Documenting Large
Webtext Corpora") found that this also removes medical, legal and LGBTQ pages. So the
score here is a ratio, `banned_word_ratio` = (banned words + banned phrases) / words, and
the threshold (filters.safety.max_banned_word_ratio) drops pages where such words are a
noticeable part of the text, not pages that mention one.

The lists are FineWeb's (datatrove 0.10.1 `assets/`, Apache-2.0, shipped in
filters/data/): `banned_words.txt` (single words) and `banned_subwords.txt` (words and
phrases); lines starting with "#" are switched off there and here. They are English;
other languages get a null score (filters.safety.languages), since no permissive list
for them is available offline.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np

from filters.textstats import DocStats

DATA = Path(__file__).resolve().parent / "data"


def read_word_list(path: Path) -> list[str]:
    """Entries of a list file: one per line, lowercased; "#" lines are switched off."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip().lower()
        if line and not line.startswith("#"):
            entries.append(line)
    return entries


class BannedWords:
    """Banned single words (matched against tokens) and phrases (matched in the text)."""

    def __init__(self, entries: list[str]) -> None:
        self.words = frozenset(entry for entry in entries if " " not in entry)
        phrases = sorted((entry for entry in entries if " " in entry), key=len, reverse=True)
        self.phrases = (
            re.compile(r"\b(?:" + "|".join(map(re.escape, phrases)) + r")\b") if phrases else None
        )

    def ratio(self, stats: DocStats) -> float:
        """(banned word tokens + banned phrases) / word tokens."""
        ids = stats.token_ids
        is_word = stats.vocab_is_word[ids]
        n_words = int(is_word.sum())
        if n_words == 0:
            return 0.0
        banned_vocab = np.fromiter(
            (token.lower() in self.words for token in stats.vocab), bool, len(stats.vocab)
        )
        hits = int(banned_vocab[ids].sum())
        if self.phrases is not None:
            hits += len(self.phrases.findall(stats.text.lower()))
        return hits / n_words


@cache
def default_banned_words() -> BannedWords:
    return BannedWords(
        read_word_list(DATA / "banned_words.txt") + read_word_list(DATA / "banned_subwords.txt")
    )
