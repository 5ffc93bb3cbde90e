"""Normalisation and shingling: trivial differences vanish, CJK gets character n-grams."""

from __future__ import annotations

import random
import sys

from dedup.normalize import (
    _NON_ASCII,
    CHARS,
    WORDS,
    _replace_digits_and_punctuation,
    _replacement,
    normalize_text,
    shingle_mode,
    shingles,
)


def test_case_punctuation_digits_and_width_vanish():
    assert normalize_text("Price: $1,299!  Call NOW") == "price 0 000 call now"
    assert normalize_text("ＡＢＣ　ｄｅｆ") == "abc def"  # NFKC: full-width letters and space
    assert normalize_text("Über—naïve «quote»") == "über naïve quote"
    assert normalize_text("...!!!") == ""


def test_word_shingles_are_5_grams_and_short_texts_are_one_shingle():
    text = "one two three four five six"
    assert shingles(text, "en") == [b"one two three four five", b"two three four five six"]
    assert shingles("Just three words", "en") == [b"just three words"]
    assert shingles("", "en") == []
    assert shingles("?!", "en") == []


def test_cjk_uses_character_ngrams_without_spaces():
    text = "我们 在这里。讨论问题"
    assert shingle_mode("zh", text) == CHARS
    assert shingles(text, "zh", char_ngram=5) == [
        s.encode() for s in ("我们在这里", "们在这里讨", "在这里讨论", "这里讨论问", "里讨论问题")
    ]


def test_mode_follows_the_label_then_the_script():
    assert shingle_mode("en", "这是中文") == WORDS  # the label decides when there is one
    assert shingle_mode(None, "这是中文，不是英文。") == CHARS
    assert shingle_mode(None, "plain English text") == WORDS
    assert shingle_mode("ja", "anything") == CHARS
    assert shingle_mode("th", "ภาษาไทย") == CHARS


def test_replacement_is_the_same_for_every_code_point_and_mix():
    """The ASCII and non-ASCII paths together give what one translate with a table of
    every code point gives (the way it was done before), for all 1.1 M code points in one
    string, in short mixed strings (lone surrogates included), and for pure ASCII."""
    every = {c: r for c in range(sys.maxunicode + 1) if (r := _replacement(c)) != c}
    assert len(every) > 9_000 and every[ord("7")] == "0" and every[ord("“")] == " "
    all_code_points = "".join(map(chr, range(sys.maxunicode + 1)))
    assert _replace_digits_and_punctuation(all_code_points) == all_code_points.translate(every)
    rng = random.Random(0)
    for _ in range(3_000):
        text = "".join(
            chr(rng.choice((rng.randrange(128), rng.randrange(0x3000), rng.randrange(0x110000))))
            for _ in range(rng.randrange(40))
        )
        assert _replace_digits_and_punctuation(text) == text.translate(every), repr(text)
    assert _replace_digits_and_punctuation("R2-D2, C-3PO!") == "R0 D0  C 0PO "
    assert len(_NON_ASCII) <= _NON_ASCII.MAX_ENTRIES  # every code point went through it
