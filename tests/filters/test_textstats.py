"""Shared text statistics: tokens close to spaCy's English tokenizer (what datatrove's
filters use), one token per character in scripts without spaces, computed once."""

from __future__ import annotations

import pytest

from filters.textstats import compute_stats, tokenize


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
    assert stats.token_ids.tolist() == [0, 1, 2, 0, 3, 4, 5, 6]
    assert stats.vocab_is_word.tolist() == [True, True, False, True, False, True, False]
    assert stats.vocab_has_alpha.tolist() == [True, True, False, True, False, False, False]
    assert not stats.no_space and compute_stats("中文", "zh").no_space
