"""Text normalisation and shingling: what both dedup passes compare.

Two documents are compared as *sets of shingles* of their normalised text (Broder 1997).
Normalisation makes trivial differences invisible before hashing:

    Unicode NFKC -> lowercase -> every decimal digit becomes "0" -> every punctuation or
    symbol character (Unicode categories P* and S*) becomes a space -> whitespace collapsed

so "Price: $1,299!" and "price 0000" shingle alike, full-width "ＡＢＣ" equals "abc", and a
changed date or counter does not make a page look new. The exact pass hashes this
normalised text; the near pass shingles it:

- **words** (default): word n-grams, n = `dedup.near.ngram` (5, as in Gopher's and
  FineWeb's MinHash dedup: Rae et al. 2021, Penedo et al. 2024);
- **characters** for languages written without spaces between words (Chinese, Japanese,
  Thai ...): character n-grams over the text with its whitespace removed,
  n = `dedup.near.char_ngram` (5). Word n-grams there would be n-grams of whole sentences
  (nothing would ever match) or of single characters if split per character (everything
  would). The mode follows the row's `lang` label (one of `dedup.near.char_ngram_languages`
  -> characters, any other -> words); a row without a label falls back to its script:
  characters when at least half of its letters are in a no-space script.

A text shorter than n units is one shingle (itself), so short documents are still compared;
an empty normalised text has no shingles and takes part in neither pass.

Shingles are UTF-8 bytes, the input datasketch's `MinHash.update` expects, so a signature
computed here equals datasketch's for the same shingles (tests/dedup/test_minhash.py).
"""

from __future__ import annotations

import re
import unicodedata

# Languages (fastText lid.176 labels) shingled by characters. zh, ja, th, lo, km, my, bo
# and the Chinese varieties (yue, wuu) are written without spaces between words. Korean
# is written with spaces, but its spaced units (eojeol) glue particles to words, so the
# same sentence re-inflected shares almost no word 5-grams: characters work better.
CHAR_NGRAM_LANGS = frozenset({"zh", "ja", "ko", "th", "lo", "km", "my", "bo", "yue", "wuu"})

# Scripts written without spaces (and Hangul, see above): the fallback for unlabelled rows.
_NO_SPACE_SCRIPT = re.compile(
    "["
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # CJK Extensions B-G
    "]"
)

WORDS = "words"
CHARS = "chars"


def _replacement(code_point: int) -> str | int:
    """What normalisation makes of one code point: "0" for a decimal digit (Unicode
    category Nd), a space for punctuation or a symbol (P*, S*), else the code point itself."""
    category = unicodedata.category(chr(code_point))
    if category == "Nd":
        return "0"
    return " " if category[0] in "PS" else code_point


class _NonAsciiReplacements(dict):
    """Code point -> `_replacement`, filled in as `str.translate` meets each code point:
    a page uses a few dozen non-ASCII characters, so building the table for all 1.1 M
    code points up front (0.08 s in every process) was wasted. Past MAX_ENTRIES (a
    Chinese corpus uses ~20,000 characters) it starts again, so a text made of every code
    point cannot grow it to ~100 MB."""

    MAX_ENTRIES = 1 << 16

    def __missing__(self, code_point: int) -> str | int:
        if len(self) >= self.MAX_ENTRIES:
            self.clear()
        value = self[code_point] = _replacement(code_point)
        return value


_NON_ASCII = _NonAsciiReplacements()
# The ASCII part as a 256-byte table for `bytes.translate` (bytes >= 0x80 stay).
_ASCII = bytes(ord(r) if isinstance(r := _replacement(b), str) else b for b in range(128))
_ASCII += bytes(range(128, 256))
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _replace_digits_and_punctuation(text: str) -> str:
    """Every code point of `text` replaced by `_replacement`.

    One `str.translate` with a table of every code point did it, but CPython's translate
    takes its fast path only for all-ASCII strings, and web text nearly always holds a
    curly quote or a dash: 0.32 s for 2,000 realpages documents. Here the non-ASCII runs
    (a few per page) go through `str.translate`, and the ASCII rest through
    `bytes.translate` on the UTF-8 bytes, which leaves multi-byte characters alone (their
    bytes are all >= 0x80): 0.09 s, the same string for every code point
    (tests/dedup/test_normalize.py)."""
    if not text.isascii():
        text = _NON_ASCII_RUN.sub(lambda run: run.group().translate(_NON_ASCII), text)
        if not text.isascii():  # letters such as "é" stay
            data = text.encode("utf-8", "surrogatepass").translate(_ASCII)
            return data.decode("utf-8", "surrogatepass")
    return text.encode("ascii").translate(_ASCII).decode("ascii")


def normalize_words(text: str) -> list[str]:
    """The normalised text as a list of words (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _replace_digits_and_punctuation(text).split()


def normalize_text(text: str) -> str:
    """The normalised text, words joined by one space: what the exact pass hashes."""
    return " ".join(normalize_words(text))


def shingle_mode(lang: str | None, text: str, char_langs=CHAR_NGRAM_LANGS) -> str:
    """WORDS or CHARS for a document, from its language label, else from its script."""
    if lang in char_langs:
        return CHARS
    if lang:
        return WORDS
    letters = sum(1 for c in text if c.isalpha())
    return CHARS if letters and 2 * len(_NO_SPACE_SCRIPT.findall(text)) >= letters else WORDS


def shingles_from_words(words: list[str], mode: str, ngram: int, char_ngram: int) -> list[bytes]:
    """Shingles (UTF-8 bytes) of an already normalised word list."""
    if mode == CHARS:
        chars = "".join(words)
        n = char_ngram
        if len(chars) <= n:
            return [chars.encode()] if chars else []
        return [chars[i : i + n].encode() for i in range(len(chars) - n + 1)]
    n = ngram
    if len(words) <= n:
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)]


def shingles(
    text: str, lang: str | None = None, ngram: int = 5, char_ngram: int = 5
) -> list[bytes]:
    """Shingles of a raw text: word n-grams, or character n-grams for no-space languages."""
    return shingles_from_words(normalize_words(text), shingle_mode(lang, text), ngram, char_ngram)
