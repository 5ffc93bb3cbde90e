"""C4 line cleaning and document rules (Raffel et al. 2020, "Exploring the Limits of
Transfer Learning with a Unified Text-to-Text Transformer", section 2.2).

Line by line, in the order of C4's reference code (tensorflow_datasets c4_utils, as
datatrove ports it): a line goes if it has a word over `max_word_length` characters, if
(when configured) it does not end in terminal punctuation, if it has fewer than
`min_words_per_line` words, if it mentions "javascript", or if it holds cookie / terms of
use / privacy policy boilerplate. Wikipedia-style citations ("[1]", "[edit]") are cut
from kept lines. A line that passes the word-count checks (C4's reference order: before
the javascript and policy checks) with "lorem ipsum" or a curly bracket condemns the whole
document (reasons c4_lorem_ipsum, c4_curly_bracket), and fewer than `min_sentences`
sentences in the kept lines drops it (c4_too_few_sentences).

`clean_lines` returns the scores and the kept lines (their text, and their token count
from the document's DocStats, so FineWeb's rules on the cleaned text need no new
tokenization);
filters/rules.py writes the cleaned text back to `text` for documents that stay.

Language-aware: for scripts without spaces a line's "words" are its word characters, and
sentences end at 。！？ without a following space as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from filters.textstats import TERMINAL_PUNCTUATION, DocStats, tokenize
from pipeline import schema as S
from pipeline.config import C4Config

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
# Every policy substring holds one of these: most lines are cleared by three searches.
_POLICY_HINTS = ("cookie", "terms of use", "privacy policy")


def _has_policy(lower_line: str) -> bool:
    if not any(hint in lower_line for hint in _POLICY_HINTS):
        return False
    return any(policy in lower_line for policy in POLICY_SUBSTRINGS)


# C4: "a terminal punctuation mark (i.e. a period, exclamation mark, question mark, or end
# quotation mark)"; here every Unicode sentence terminal (。！？ ...) plus closing quotes.
END_PUNCTUATION = tuple(TERMINAL_PUNCTUATION) + ('"', "'", "”", "’", "」", "』")
ELLIPSIS = "..."

# A sentence ends at . ! ? (optionally closed by quotes or brackets) followed by space and
# more text, or at the end of the line. Abbreviations ("Mr.", "U.S.", initials) do not end
# one: spaCy's sentencizer, which datatrove uses, keeps them inside a token.
_SENTENCE_END = re.compile(r"([.!?]+)[\"'”’)\]]*\s+(?=\S)")
_CJK_SENTENCE_END = re.compile(r"[。！？]+[」』）”’]*(?=\S)")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "mt",
        "ft",
        "gen",
        "gov",
        "sen",
        "rep",
        "rev",
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "fig",
        "vol",
        "pp",
        "ed",
        "est",
        "approx",
        "dept",
        "univ",
    ]
)
_LONGEST_ABBREVIATION = max(map(len, _ABBREVIATIONS))
_TRAILING_WORD = re.compile(r"\w*\Z")


def count_sentences(line: str) -> int:
    """Sentences in one non-empty line."""
    count = 1
    if "." in line or "!" in line or "?" in line:
        for match in _SENTENCE_END.finditer(line):
            if match.group(1) == "." and _is_abbreviation(line, match.start()):
                continue
            count += 1
    if "。" in line or "！" in line or "？" in line:
        count += len(_CJK_SENTENCE_END.findall(line))
    return count


def _is_abbreviation(line: str, end: int) -> bool:
    """Whether the run of word characters ending at `end` is an abbreviation ("Mr",
    "Fig") or an initial ("J"): a period after it does not end a sentence."""
    tail = line[max(end - _LONGEST_ABBREVIATION - 1, 0) : end]
    word = _TRAILING_WORD.search(tail).group()
    if len(word) == len(tail) and len(tail) > _LONGEST_ABBREVIATION:
        return False  # longer than any abbreviation
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())


@dataclass
class CleanedText:
    """The lines C4 kept: their text (stripped, citations cut) and how many tokens."""

    lines: list[str]
    n_tokens: int  # tokens in the kept lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip()


def clean_lines(stats: DocStats, cfg: C4Config) -> tuple[dict, CleanedText]:
    """C4's line cleaning over one document: (scores, kept lines)."""
    kept: list[str] = []
    kept_tokens = removed = sentences = 0
    lorem = curly = False
    for number, line in enumerate(stats.lines):
        line = line.strip()
        if not line:
            continue  # blank lines are layout, not content: not counted as removed
        words = line.split()
        if len(line) > cfg.max_word_length and any(
            len(word) > cfg.max_word_length for word in words
        ):
            removed += 1
            continue
        tokens = None  # the line's own tokens, unless citations were cut from it
        if cfg.remove_citations and "[" in line:
            cited = CITATION.sub("", line)
            if cited != line:
                line = cited
                tokens = tokenize(line)
        if cfg.drop_lines_without_terminal_punct and (
            not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)
        ):
            removed += 1
            continue
        # without spaces, words are characters (and any Latin words among them)
        if not stats.no_space:
            n_words = len(words)
        elif tokens is None:
            n_words = stats.line_alnum_tokens(number)
        else:
            n_words = sum(1 for token in tokens if token.isalnum())
        if n_words < cfg.min_words_per_line:
            removed += 1
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            lorem = True
        if cfg.drop_javascript_lines and "javascript" in lower:
            removed += 1
            continue
        if "{" in line:
            curly = True
        if cfg.drop_policy_lines and _has_policy(lower):
            removed += 1
            continue
        sentences += count_sentences(line)
        kept.append(line)
        kept_tokens += stats.line_token_count(number) if tokens is None else len(tokens)
    scores = {
        S.C4_LINES_REMOVED: removed,
        S.C4_SENTENCES: sentences,
        S.C4_LOREM_IPSUM: lorem,
        S.C4_CURLY_BRACKET: curly,
    }
    return scores, CleanedText(kept, kept_tokens)
