"""Per-document text statistics, computed once and read by every rule filter.

datatrove runs its word tokenizer (spaCy) again inside each filter: Gopher quality,
Gopher repetition and FineWeb each re-split the same text, and together they cost as much
CPU as HTML extraction. Here one pass builds a `DocStats` per document (lines, token ids
with where each line ends, per-token lengths and classes) and the Gopher, C4, FineWeb and
safety rules only read it. Line cleaning (C4) counts the kept lines' tokens from it, so
FineWeb's rules on the cleaned text need no second tokenization either. Chunks between
spaces are tokenized once per process (see `Vocabulary`), since web text repeats them.

Tokens follow spaCy's English tokenizer closely enough for the rules' thresholds (see
docs/FILTERS.md for the measured agreement with datatrove): words keep inner `.,:/&'`
("U.S.", "3.5", "1,000", "9/11"), English clitics are split ("do" + "n't", "it" + "'s"),
every other symbol is one token per character except "..." and "--", URLs stay whole.

Language-aware: scripts written without spaces between words (Chinese, Japanese kana,
Thai, Lao, Khmer, Myanmar, Tibetan) give one token per character, whatever the document's
`lang` label, so a Chinese page has ~1 token per character instead of ~1 per sentence.
`NO_SPACE_LANGS` are the languages whose word-length rule is skipped and whose n-gram
lengths carry no separator. Stop words: a small list per language, written for this
project (the most frequent function words of each language; Gopher's eight for English);
languages without a list skip the stop-word rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# Unicode sentence terminals (the Sentence_Terminal property), as listed by datatrove
# (`datatrove/utils/text.py`, Apache-2.0): FineWeb's line-punctuation rule uses this set.
TERMINAL_PUNCTUATION = (
    "!.?։؝؞؟۔܀܁܂߹࠷࠹࠽࠾।॥၊။።፧፨᙮᜵᜶។៕៖៙៚᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᭽᭾᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼⹓⹔。꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？｡"
    "𐩖𐩗𐽕𐽖𐽗𐽘𐽙𐾆𐾇𐾈𐾉𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑥄𑥆𑩂𑩃𑪛𑪜𑱁𑱂𑻷𑻸\U00011f43\U00011f44𖩮𖩯𖫵𖬷𖬸𖭄𖺘𛲟𝪈"
)
TERMINAL_PUNCTUATION_TUPLE = tuple(TERMINAL_PUNCTUATION)

# Characters that make a token a "symbol" (Gopher: words are tokens with anything else),
# as listed by datatrove (`PUNCTUATION`, Apache-2.0), plus the terminal punctuation above.
_PUNCTUATION = (
    "".join(map(chr, [*range(0, 9), *range(11, 32), *range(127, 160)]))
    + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«´»–—’“”„…∶━►、。〈〉《》「」【】！％（），．１：；？～"
)
_DELETE_PUNCTUATION = {ord(c): None for c in _PUNCTUATION + TERMINAL_PUNCTUATION}

# Scripts written without spaces between words: one token per character.
_NO_SPACE_CHARS = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # CJK Extensions B-G
)
# Languages (lid.176 labels) written without spaces: the mean-word-length rule is
# skipped and n-grams are measured without separators.
NO_SPACE_LANGS = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "dz", "wuu", "yue"})

# Combining marks belong to the word they sit on (Devanagari and other Indic vowel signs,
# Arabic and Hebrew points, Latin diacritics written apart): `\w` leaves them out.
_COMBINING_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
    "\u06d6-\u06ed\u0900-\u0dff\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
)
_WORD_CHAR = rf"(?:[^\W{_NO_SPACE_CHARS}]|[{_COMBINING_MARKS}])"
# Abbreviations spaCy keeps with their period: letter-dot sequences ("U.S.", "p.m.", "A.")
# and a list of its English exceptions.
_ABBREVIATIONS = (
    "Mr|Mrs|Ms|Dr|St|Jr|Sr|Inc|Corp|Co|Ltd|Bros|vs|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|"
    "Nov|Dec|Rep|Sen|Gov|Gen|Prof|Rev|Capt|Col|Lt|Sgt|Adm|Mt|Ft|Calif|Mass|Conn|Fla|Ill|Mich|"
    "Minn|Tenn|Wash|Ariz|Colo|Ga|Ky|La|Md|Mo|Pa|Va|Wis"
)
# What may join two runs of word characters into one token (spaCy's infix rules split the
# rest): ' & @ * ; | ^ ~ \ +; a period unless between a lowercase and an uppercase letter;
# a comma unless between letters; a hyphen before a digit (J-1, not 2020-2021); / : < > =
# unless before a letter (9/11, 10:30). Every alternative takes one character and a period
# matches two of them, so runs are possessive (`++`): "Nevada" + 30 periods took 1.6 s of
# backtracking (2^30 ways to split the run), 40 would never end.
_JOIN = (
    r"(?:['’&@*;|^~\\+]|\.(?![A-Z])|(?<![a-z])\.|,(?![^\W\d_])|(?<![^\W\d_]),"
    r"|(?<!\d)-(?=\d)|[/:<>=](?![^\W\d_]))"
)
_GLUE = r"[-|\\¶^~@]"  # symbols spaCy leaves attached at the start of a token ("-A", "@user")
_TOKEN = re.compile(
    r"(?:https?://|www\.)[^\s<>\"]+"  # URLs stay whole (spaCy: like_url)
    rf"|[{_NO_SPACE_CHARS}]"  # one character of a script without spaces
    rf"|(?:(?:[^\W\d_]\.)+|(?:{_ABBREVIATIONS})\.)(?!\w)"  # U.S. p.m. A. Nov. Inc.
    rf"|(?:(?<!\S){_GLUE}+)?{_WORD_CHAR}++(?:{_JOIN}++{_WORD_CHAR}++)*\+*"  # a word: 3.5 9/11 C++
    rf"|\.{{2,}}|-{{2,}}|'{{2,}}|{_GLUE}+"  # "...", "--", "''", "\|" are one token each
    r"|[^\w\s]"  # any other symbol: one token per character
)
_CLITIC = re.compile(r"^(.+?)(n['’]t|['’](?:s|m|d|ll|re|ve))$", re.IGNORECASE)
_ALPHA = re.compile(r"[^\W\d_]")

# Stop words per language. Gopher (Rae et al. 2021): a document must contain at least
# two of "the, be, to, of, and, that, have, with". For other languages: the most frequent
# function words, written for this project. zh and ja are single characters (tokens are
# characters there); th has no list (its words are several characters long) and skips
# the rule, as does every language not listed here.
STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the be to of and that have with",
        "de": "der die und in den von zu das mit sich des auf für ist im nicht",
        "fr": "de la le et les des en du un une est que pour dans qui",
        "es": "de la que el en y los del se las por un para con una",
        "pt": "de a o que e do da em um para com não uma os no",
        "it": "di e il la che per un in del è non una sono le",
        "nl": "de en van het een in is dat op te zijn met voor",
        "sv": "och i att det som en på är av för med till",
        "da": "og i at det en til er som på de med for af",
        "no": "og i det på som er en til å av for med har",
        "pl": "i w nie na się z do że to jest jak o po",
        "cs": "a v se na je že s z do to jako ve",
        "ru": "и в не на что я с он как это по но из к",
        "uk": "і в на не що з до та як це",
        "tr": "ve bir bu da de için ile çok ne daha olarak",
        "id": "yang dan di dengan untuk ini itu dari dalam tidak",
        "vi": "của và là có được các cho trong những một người",
        "ar": "في من على أن إلى التي عن هذا ما مع",
        "fa": "و در به از که این را با است برای",
        "hi": "के है में की और को से का एक पर",
        "ko": "수 및 등 그 이 것 더 또한 그리고 있는 있다 하는 한 할 있습니다",
        "zh": "的 了 是 在 和 有 我 不 这 也 就 都 人 他 们 中 一 上 为 个 地 到 说 要 与 以",
        "ja": "の に は を が で と た て し も な い か",
    }.items()
}


# Tokens never cross whitespace (no pattern above matches a space, and every lookaround
# sees the same at a chunk's edge as inside its line: a space or nothing), so a line's
# tokens are those of its whitespace-separated chunks, and a chunk's tokens depend on the
# chunk alone. Web text repeats its chunks ("the", "and,", "2019."): the realpages
# sample's 29.5 M characters hold 4.8 M chunks but only 412 k distinct ones. So each chunk
# is tokenized once per process, its tokens get ids in a process-wide vocabulary with
# their lengths and classes, and a document's statistics are dict lookups and numpy
# gathers: 10.7 s of CPU for those 3,853 documents before, 3.5 s now with every chunk new
# to the process, 1.9 s once they have been seen.
# Past this many chunks or tokens a new vocabulary starts: ~120 MB per worker at most
# (realpages' 412 k chunks and 230 k tokens took 93 MB).
VOCABULARY_LIMIT = 1 << 19
IS_WORD, HAS_ALPHA, IS_ALNUM = 1, 2, 4  # token class bits


def _chunk_tokens(chunk: str) -> list[str]:
    tokens = _TOKEN.findall(chunk)
    if "'" in chunk or "’" in chunk or "annot" in chunk:
        tokens = _split_clitics(tokens)
    return tokens


def _split_clitics(tokens: list[str]) -> list[str]:
    out = []
    for token in tokens:
        match = _CLITIC.match(token) if ("'" in token or "’" in token) else None
        if match and not token.startswith("http"):
            out.extend(match.groups())
        elif token.lower() == "cannot":
            out.extend((token[:3], token[3:]))
        else:
            out.append(token)
    return out


def token_class(token: str) -> int:
    """IS_WORD if the token has a character that is not punctuation (Gopher's "word"),
    HAS_ALPHA if it has a letter, IS_ALNUM if all its characters are letters or digits."""
    return (
        (IS_WORD if token.translate(_DELETE_PUNCTUATION) else 0)
        | (HAS_ALPHA if _ALPHA.search(token) else 0)
        | (IS_ALNUM if token.isalnum() else 0)
    )


class Vocabulary:
    """Token ids for this process: chunk -> chunk number -> its token ids, token -> id,
    and per id the token's length and class bits. Ids only mean "same token" within one
    document's statistics; `current_vocabulary` starts a new one between documents when
    it is full.

    A chunk's token ids sit in one flat array (`chunk_tokens`, from `chunk_first[number]`,
    `chunk_count[number]` of them), so a document's tokens are one numpy gather over its
    chunk numbers rather than a Python loop over tuples of ids: `compute_stats` over the
    2,984 realpages documents that reach the rule filters, same statistics, 0.85-0.96 ->
    0.74-0.89 CPU s with every chunk seen before, 1.71-1.89 -> 1.55-1.74 s from a new
    vocabulary (two alternating rounds)."""

    def __init__(self) -> None:
        self.chunk_numbers: dict[str, int] = {}
        self.chunk_first = np.zeros(1 << 12, np.int64)
        self.chunk_count = np.zeros(1 << 12, np.int64)
        self.chunk_tokens = np.zeros(1 << 12, np.int64)
        self.n_chunk_tokens = 0
        self.index: dict[str, int] = {}
        self.tokens: list[str] = []
        self.lengths = np.zeros(1 << 12, np.int64)
        self.classes = np.zeros(1 << 12, np.int8)

    def add_chunks(self, chunks: list[str], numbers: list[int | None]) -> list[int]:
        """Fill in `numbers` (each chunk's number, None where the chunk was not known),
        tokenizing each new chunk once."""
        firsts, counts, ids = [], [], []  # of the new chunks, for the arrays below
        index = self.index
        for i, number in enumerate(numbers):
            if number is not None:
                continue
            chunk = chunks[i]
            number = self.chunk_numbers.get(chunk)  # new, but seen earlier in this list
            if number is None:
                tokens = _chunk_tokens(chunk)
                number = self.chunk_numbers[chunk] = len(self.chunk_numbers)
                firsts.append(self.n_chunk_tokens + len(ids))
                counts.append(len(tokens))
                for token in tokens:
                    token_id = index.get(token)
                    ids.append(self.add_token(token) if token_id is None else token_id)
            numbers[i] = number
        first_new = len(self.chunk_numbers) - len(firsts)
        self.chunk_first = _put(self.chunk_first, first_new, firsts)
        self.chunk_count = _put(self.chunk_count, first_new, counts)
        self.chunk_tokens = _put(self.chunk_tokens, self.n_chunk_tokens, ids)
        self.n_chunk_tokens += len(ids)
        return numbers

    def add_token(self, token: str) -> int:
        i = self.index[token] = len(self.tokens)
        self.tokens.append(token)
        if i == len(self.lengths):
            self.lengths = np.resize(self.lengths, 2 * i)
            self.classes = np.resize(self.classes, 2 * i)
        self.lengths[i] = len(token)
        self.classes[i] = token_class(token)
        return i

    def chunk_ids(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(token ids of these chunks one after another, tokens before each chunk and
        after the last)."""
        counts = self.chunk_count[numbers]
        firsts = self.chunk_first[numbers]
        starts = np.zeros(len(numbers) + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        if starts[-1] == len(numbers):  # one token per chunk, as for most chunks
            return self.chunk_tokens[firsts], starts
        at = np.repeat(firsts - starts[:-1], counts) + np.arange(starts[-1])
        return self.chunk_tokens[at], starts

    def line_ids(self, line: str) -> list[int]:
        chunks = line.split()
        numbers = self.add_chunks(chunks, list(map(self.chunk_numbers.get, chunks)))
        return self.chunk_ids(np.array(numbers, np.int64))[0].tolist()

    @property
    def full(self) -> bool:
        return len(self.chunk_numbers) >= VOCABULARY_LIMIT or len(self.tokens) >= VOCABULARY_LIMIT


def _put(array: np.ndarray, at: int, values: list[int]) -> np.ndarray:
    """`array` with `values` written from `at` on, grown (doubled) when they do not fit."""
    end = at + len(values)
    if end > len(array):
        array = np.resize(array, max(2 * len(array), end))
    array[at:end] = values
    return array


_vocabulary = Vocabulary()


def current_vocabulary() -> Vocabulary:
    global _vocabulary
    if _vocabulary.full:
        _vocabulary = Vocabulary()
    return _vocabulary


def tokenize(line: str) -> list[str]:
    """Tokens of one line (tokens never span lines, so a text's tokens are its lines')."""
    vocabulary = _vocabulary
    return [vocabulary.tokens[i] for i in vocabulary.line_ids(line)]


@dataclass
class DocStats:
    """Everything the rules read about one document. Built by `compute_stats` only."""

    text: str
    lang: str | None
    no_space: bool  # the language is written without spaces (NO_SPACE_LANGS)
    lines: list[str]  # text.split("\n")
    line_ends: np.ndarray  # int64 per line: index in token_ids after its last token
    token_ids: np.ndarray  # int64 id of each token (same token, same id)
    token_lengths: np.ndarray  # int64 characters of each token
    token_classes: np.ndarray  # int8 IS_WORD | HAS_ALPHA | IS_ALNUM bits of each token
    vocabulary: Vocabulary = field(repr=False)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def tokens(self) -> list[str]:
        return [self.vocabulary.tokens[i] for i in self.token_ids.tolist()]

    @cached_property
    def distinct_tokens(self) -> tuple[list[str], np.ndarray]:
        """The document's distinct tokens and how often each occurs."""
        ids, counts = np.unique(self.token_ids, return_counts=True)
        return [self.vocabulary.tokens[i] for i in ids.tolist()], counts

    def count_present(self, tokens: frozenset[str]) -> int:
        """How many of these tokens occur in the document."""
        index = self.vocabulary.index
        ids = [index[token] for token in tokens if token in index]
        return sum(bool((self.token_ids == i).any()) for i in ids)

    def line_token_count(self, line: int) -> int:
        return int(self.line_ends[line] - (self.line_ends[line - 1] if line else 0))

    def line_alnum_tokens(self, line: int) -> int:
        start = self.line_ends[line - 1] if line else 0
        return int(((self.token_classes[start : self.line_ends[line]] & IS_ALNUM) > 0).sum())


def compute_stats(text: str, lang: str | None = None) -> DocStats:
    """One pass over the text: lines, token ids, and each token's length and classes."""
    vocabulary = current_vocabulary()
    lines = text.split("\n")
    chunks = text.split()  # every line's chunks, in order
    known = list(map(vocabulary.chunk_numbers.get, chunks))
    try:  # every chunk seen before: all ints (a None, for a new chunk, fails the cast)
        numbers = np.array(known, np.int64)
    except TypeError:
        numbers = np.array(vocabulary.add_chunks(chunks, known), np.int64)
    token_ids, chunk_starts = vocabulary.chunk_ids(numbers)
    line_chunk_ends = np.cumsum(np.fromiter(map(len, map(str.split, lines)), np.int64, len(lines)))
    line_ends = chunk_starts[line_chunk_ends]
    return DocStats(
        text=text,
        lang=lang,
        no_space=lang in NO_SPACE_LANGS,
        lines=lines,
        line_ends=line_ends,
        token_ids=token_ids,
        token_lengths=vocabulary.lengths[token_ids],
        token_classes=vocabulary.classes[token_ids],
        vocabulary=vocabulary,
    )


def ends_with_terminal_punctuation(line: str) -> bool:
    return line.endswith(TERMINAL_PUNCTUATION_TUPLE)
