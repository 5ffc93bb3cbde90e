"""Shared text statistics: tokens close to spaCy's English tokenizer (what datatrove's
filters use), one token per character in scripts without spaces, computed once."""

from __future__ import annotations

import pytest

from filters import textstats
from filters.textstats import HAS_ALPHA, IS_WORD, compute_stats, tokenize
from tests.filters.texts import GOOD_EN, GOOD_JA, GOOD_ZH, MENU, SPAM


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("It's 3.5% of $1,000.", ["It", "'s", "3.5", "%", "of", "$", "1,000", "."]),
        ("The U.S. and Nov. 9/11", ["The", "U.S.", "and", "Nov.", "9/11"]),
        ("don't cannot e-mail J-1", ["do", "n't", "can", "not", "e", "-", "mail", "J-1"]),
        ("wait... -- C++", ["wait", "...", "--", "C++"]),
        ("see http://x.com/a-b ok", ["see", "http://x.com/a-b", "ok"]),
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # vowel signs stay in the word
        ("中文abc。", ["中", "文", "abc", "。"]),
        ("ภาษา", ["ภ", "า", "ษ", "า"]),
    ],
)
def test_tokens(text, tokens):
    assert tokenize(text) == tokens


def test_stats_hold_lines_ids_and_token_classes():
    stats = compute_stats("The cat.\n\nThe dog, 42!", "en")
    assert stats.lines == ["The cat.", "", "The dog, 42!"]
    assert stats.tokens == ["The", "cat", ".", "The", "dog", ",", "42", "!"]
    ids = stats.token_ids.tolist()
    assert ids[0] == ids[3] and len(set(ids)) == 7  # same token, same id
    assert stats.token_lengths.tolist() == [3, 3, 1, 3, 3, 1, 2, 1]
    is_word = (stats.token_classes & IS_WORD) > 0
    has_alpha = (stats.token_classes & HAS_ALPHA) > 0
    assert is_word.tolist() == [True, True, False, True, True, False, True, False]
    assert has_alpha.tolist() == [True, True, False, True, True, False, False, False]
    assert stats.line_ends.tolist() == [3, 3, 8]
    assert [stats.line_token_count(i) for i in range(3)] == [3, 0, 5]
    assert not stats.no_space and compute_stats("中文", "zh").no_space


def test_a_run_of_periods_does_not_backtrack():
    # Two join rules match a period: without possessive runs, a word followed by n periods
    # is split 2^n ways before the match gives up (n=30 took 1.6 s; this would never end).
    assert tokenize("Nevada" + "." * 200) == ["Nevada", "." * 200]
    assert tokenize("1" + ".2" * 200 + "." * 200 + "!") == ["1" + ".2" * 200, "." * 200, "!"]


def _whole_line_tokens(line: str) -> list[str]:
    """The definition: the token pattern over the whole line, clitics split."""
    return textstats._split_clitics(textstats._TOKEN.findall(line))


@pytest.mark.parametrize("text", [GOOD_EN, GOOD_ZH, GOOD_JA, MENU, SPAM])
def test_tokens_by_chunk_equal_tokens_of_the_whole_line(text):
    lines = text.split("\n") + [
        "U.S.  Nov.\tMr. X -- C++ e-mail 9/11 http://x.com/a?b=c it's don’t",
        '@user\u00a0#tag (@other) "quoted," [1] 1,000.5 ...and -A ~25%',
    ]
    for line in lines:
        assert tokenize(line) == _whole_line_tokens(line), line


def test_statistics_are_the_same_across_a_vocabulary_reset(monkeypatch):
    texts = [GOOD_EN, SPAM, GOOD_ZH, MENU, GOOD_EN]
    before = [compute_stats(text, "en") for text in texts]
    monkeypatch.setattr(textstats, "VOCABULARY_LIMIT", 8)  # a new vocabulary per document
    after = [compute_stats(text, "en") for text in texts]
    assert after[0].vocabulary is not after[-1].vocabulary
    for old, new in zip(before, after, strict=True):
        assert new.tokens == old.tokens
        assert new.token_lengths.tolist() == old.token_lengths.tolist()
        assert new.token_classes.tolist() == old.token_classes.tolist()
        assert new.line_ends.tolist() == old.line_ends.tolist()
        # ids differ between vocabularies but mean the same within a document
        assert (new.token_ids[:, None] == new.token_ids).tolist() == (
            old.token_ids[:, None] == old.token_ids
        ).tolist()
