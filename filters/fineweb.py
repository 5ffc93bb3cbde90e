"""FineWeb's own rules (Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for
the Finest Text Data at Scale", section 3.5 and appendix: "custom filters").

Three line-level ratios and one list-likeness ratio, measured on the text after C4's line
cleaning (FineWeb runs C4 first, then these): the share of lines ending in terminal
punctuation, the share of lines of 30 characters or fewer, the share of characters in
duplicate lines, and newlines per word. Definitions follow datatrove's
FineWebQualityFilter (blank lines ignored; a line's punctuation is checked without
stripping it; characters are counted without newlines).

Scores only; filters/rules.py applies the thresholds. Language-aware through the shared
statistics: terminal punctuation is every Unicode sentence terminal (。！？ included) and
words of scripts without spaces are characters.
"""

from __future__ import annotations

from filters.c4 import CleanedText
from filters.gopher import duplicates
from filters.textstats import DocStats, ends_with_terminal_punctuation
from pipeline import schema as S
from pipeline.config import FineWebConfig


def fineweb_scores(
    stats: DocStats, cleaned: CleanedText | None, cfg: FineWebConfig
) -> dict[str, float]:
    """FineWeb's four ratios over the C4-cleaned lines (or the original text without C4)."""
    if cleaned is not None:
        lines = [line for line in cleaned.lines if line.strip()]
        chars = sum(len(line) for line in cleaned.lines)
        newlines = max(len(cleaned.lines) - 1, 0)
        n_tokens = cleaned.n_tokens
    else:
        lines = [line for line in stats.lines if line.strip()]
        chars = len(stats.text) - len(stats.lines) + 1
        newlines = len(stats.lines) - 1
        n_tokens = stats.n_tokens
    if not lines:
        return {
            S.FINEWEB_LINE_PUNCT: 0.0,
            S.FINEWEB_SHORT_LINES: 1.0,
            S.FINEWEB_DUP_LINE_CHARS: 0.0,
            S.FINEWEB_NEWLINE_WORDS: 0.0,
        }
    punct = sum(1 for line in lines if ends_with_terminal_punctuation(line))
    short = sum(1 for line in lines if len(line) <= cfg.short_line_chars)
    return {
        S.FINEWEB_LINE_PUNCT: punct / len(lines),
        S.FINEWEB_SHORT_LINES: short / len(lines),
        S.FINEWEB_DUP_LINE_CHARS: duplicates(lines)[1] / max(chars, 1),
        S.FINEWEB_NEWLINE_WORDS: newlines / max(n_tokens, 1),
    }
