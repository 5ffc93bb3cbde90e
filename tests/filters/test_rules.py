"""Rule filters (Gopher repetition + quality, C4, FineWeb, safety): every rule with a
literal text that fails it with its own reason, good pages in en/zh/ja/de that pass, and
the stage contract (rows kept, scores as columns, first reason wins, text cleaned)."""

from __future__ import annotations

import dataclasses
import re

import pyarrow as pa
import pytest

from filters.c4 import count_sentences
from filters.rules import TEXT_FILTERS, TextFilterStage, all_rule_reasons, score_document
from filters.safety import trie_pattern
from pipeline import schema as S
from pipeline.config import Config, ConfigError, FiltersConfig, load_config
from tests.filters.texts import GOOD_DE, GOOD_EN, GOOD_JA, GOOD_ZH, MENU, SHORT_EN, SPAM
from tests.helpers import doc_batch

R = S.Reason
TEXT_RULES = [rule.reason for text_filter in TEXT_FILTERS for rule in text_filter.rules]
WORDS = [  # 55 distinct words
    "river",
    "city",
    "bridge",
    "market",
    "merchant",
    "boat",
    "timber",
    "wool",
    "harbour",
    "tower",
    "street",
    "garden",
    "castle",
    "church",
    "school",
    "library",
    "museum",
    "theatre",
    "station",
    "railway",
    "engine",
    "carriage",
    "field",
    "forest",
    "meadow",
    "valley",
    "mountain",
    "island",
    "coast",
    "village",
    "farm",
    "mill",
    "orchard",
    "vineyard",
    "cellar",
    "kitchen",
    "window",
    "door",
    "roof",
    "chimney",
    "lantern",
    "candle",
    "mirror",
    "clock",
    "table",
    "chair",
    "blanket",
    "basket",
    "barrel",
    "bottle",
    "letter",
    "parcel",
    "ticket",
    "journey",
    "voyage",
]


SENTENCES = [
    "The old mill by the river ground flour for three villages until 1921.",
    "Its wheel was turned by water that came down a narrow stone channel.",
    "After the war, a small electric motor replaced most of the machinery.",
    "Children from the school still visit every spring to see how it worked.",
    "A local society restored the roof in 1987 with money raised at fairs.",
    "Visitors can now buy bread baked from flour milled on the site itself.",
    "The miller's cottage next door has become a museum of rural tools.",
    "Among them are sickles, flails and a wooden plough drawn by oxen.",
    "Volunteers explain each object and answer questions about farm life.",
    "On quiet afternoons herons fish in the pond above the weir.",
    "Walkers often stop there before climbing the hill towards the church.",
    "From the top you can see the whole valley and, on clear days, the sea.",
    "Records from the parish mention the mill as early as the twelfth century.",
    "Floods damaged it badly in 1703, when the river rose during a storm.",
    "The owners rebuilt it in brick, which is why the walls look younger.",
    "Today the building is protected as part of the national heritage.",
    "Grants from a charity pay for repairs to the sluice gates each decade.",
    "A new footbridge makes the path safer for families with prams.",
    "Local artists hold an exhibition in the granary every September.",
    "Their paintings show the mill in every season and every kind of light.",
]


def prose(n_sentences: int = 12, start: int = 0) -> str:
    """Varied English sentences written for these tests, one per line."""
    return "\n".join(SENTENCES[start : start + n_sentences])


def batch(texts, langs=None, reasons=None) -> pa.Table:
    b = doc_batch(texts, reasons)
    langs = langs or ["en"] * len(texts)
    return b.append_column(S.LANG, pa.array(langs, pa.string()))


def only(reason: str, **sections) -> FiltersConfig:
    """Config with every text rule but `reason` switched off (and section overrides)."""
    cfg = Config().filters
    for name, values in sections.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **values)})
    return dataclasses.replace(cfg, disabled_rules=[r for r in TEXT_RULES if r != reason])


def reasons(texts, cfg: FiltersConfig | None = None, langs=None) -> list[str | None]:
    out = TextFilterStage(cfg or Config().filters)(batch(texts, langs))
    return out[S.DROP_REASON].to_pylist()


# --- good pages pass every rule ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, lang",
    [(GOOD_EN, "en"), (GOOD_ZH, "zh"), (GOOD_JA, "ja"), (GOOD_DE, "de"), (prose(), "en")],
    ids=["en", "zh", "ja", "de", "prose"],
)
def test_good_pages_pass_every_rule(text, lang):
    assert reasons([text], langs=[lang]) == [None]


def test_chinese_and_japanese_count_characters_and_use_their_stop_words():
    scores_zh, _ = score_document(GOOD_ZH, "zh", Config().filters)
    scores_ja, _ = score_document(GOOD_JA, "ja", Config().filters)
    # one word per character: ~240 "words", not ~5 space-separated chunks
    assert scores_zh[S.GOPHER_WORDS] > 200 and scores_ja[S.GOPHER_WORDS] > 200
    assert scores_zh[S.GOPHER_STOP_WORDS] >= 2 and scores_ja[S.GOPHER_STOP_WORDS] >= 2
    assert scores_zh[S.GOPHER_MEAN_WORD_LENGTH] is None  # rule does not apply
    # the same Chinese page judged as English words would be dropped
    assert reasons([GOOD_ZH], langs=["en"]) != [None]


def test_languages_without_stop_word_list_skip_that_rule():
    scores, _ = score_document(prose(), "sw", Config().filters)
    assert scores[S.GOPHER_STOP_WORDS] is None
    assert reasons([prose()], langs=["sw"]) == [None]


# --- each rule: a literal text that fails it, with its reason ------------------------------

REPEATED = "The committee will publish its annual report on the state of the railways"
FAILING = {
    # Gopher repetition
    R.GOPHER_DUP_PARA_FRAC: "\n\n".join(["A first paragraph of text here."] * 3 + ["Other."]),
    R.GOPHER_DUP_PARA_CHAR_FRAC: "\n\n".join([prose(6), "Short one.", prose(6), "Two.", "3."]),
    R.GOPHER_DUP_LINE_FRAC: "\n".join(["Share", "Like", prose(3), "Share", "Like", "Like"]),
    R.GOPHER_DUP_LINE_CHAR_FRAC: "\n".join([prose(4), prose(1, 9), prose(4), "a", "b", "c"]),
    **{
        R.GOPHER_TOP_NGRAM[n]: " ".join(f"data science and more {w}." for w in WORDS)
        for n in (2, 3, 4)
    },  # fmt: skip
    **{R.GOPHER_DUP_NGRAM[n]: f"{REPEATED}. {prose(1)}\n{REPEATED}!" for n in range(5, 11)},
    # Gopher quality
    R.GOPHER_TOO_FEW_WORDS: SHORT_EN,
    R.GOPHER_MEAN_WORD_LENGTH: " ".join(
        [
            "an",
            "as",
            "at",
            "be",
            "by",
            "do",
            "go",
            "he",
            "if",
            "in",
            "is",
            "it",
            "me",
            "my",
            "no",
            "of",
            "oh",
            "on",
            "or",
            "ox",
            "so",
            "to",
            "up",
            "us",
            "we",
        ]
        * 2
    ),
    R.GOPHER_SYMBOL_RATIO: " ".join(f"#{w} #news" for w in WORDS[:30]),
    R.GOPHER_BULLET_LINES: "\n".join(
        f"- {a} and {b} for sale" for a, b in zip(WORDS, WORDS[1:], strict=False)
    ),
    R.GOPHER_ELLIPSIS_LINES: "\n".join(
        [f"The {w} was waiting for us..." for w in WORDS[:5]] + prose(6).split("\n")
    ),
    R.GOPHER_ALPHA_WORDS: "Results: " + " ".join(f"{i} {i * 7 % 13}.{i}" for i in range(40)),
    R.GOPHER_STOP_WORDS: "\n".join(
        f"Cheap {a} {b} sale, free shipping now." for a, b in zip(WORDS, WORDS[2:], strict=False)
    ),  # fmt: skip
    # C4
    R.C4_LOREM_IPSUM: prose() + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
    R.C4_CURLY_BRACKET: prose() + "\nfunction show(x) { return x + 1; } is the code.",
    R.C4_EMPTY: "\n".join(["Home", "News", "About", "Contact"] * 1),
    R.C4_TOO_FEW_SENTENCES: "The river is long and wide. It flows to the sea.",
    # FineWeb
    R.FINEWEB_LINE_PUNCT: MENU,
    R.FINEWEB_SHORT_LINES: "\n".join(["Home", "News", "Sport", prose(1), "Weather", "Travel"]),
    R.FINEWEB_DUP_LINE_CHARS: prose(20) + "\nRead more about it here.\nRead more about it here.",
    R.FINEWEB_NEWLINE_WORDS: "\n".join(f"{w}." for w in WORDS),
    # safety
    R.SAFETY_BANNED_WORDS: prose(3) + "\nporn xxx hardcore porno milf nsfw pussy slut.",
}


def test_every_text_rule_has_a_failing_text():
    # gopher_too_many_words (100,000 words) is tested by its threshold below
    assert set(FAILING) | {R.GOPHER_TOO_MANY_WORDS} == set(TEXT_RULES)


@pytest.mark.parametrize("reason", sorted(FAILING))
def test_rule_fails_its_text_with_its_reason_and_passes_a_good_page(reason):
    cfg = only(reason, c4={"min_words_per_line": 0})
    if reason == R.C4_EMPTY:
        cfg = only(reason)  # every line of the menu is under 3 words: nothing kept
    assert reasons([FAILING[reason]], cfg) == [reason]
    assert reasons([GOOD_EN, GOOD_ZH, GOOD_JA], cfg, ["en", "zh", "ja"]) == [None] * 3


def test_natural_first_failing_reasons_with_default_config():
    texts = [FAILING[R.GOPHER_DUP_PARA_FRAC], SHORT_EN, MENU, SPAM]
    assert reasons(texts) == [
        R.GOPHER_DUP_PARA_FRAC,
        R.GOPHER_TOO_FEW_WORDS,
        R.FINEWEB_LINE_PUNCT,
        R.GOPHER_ALPHA_WORDS,
    ]


def test_too_many_words_by_threshold():
    cfg = dataclasses.replace(
        Config().filters,
        gopher_quality=dataclasses.replace(Config().filters.gopher_quality, max_words=100),
    )
    assert reasons([GOOD_EN], cfg) == [R.GOPHER_TOO_MANY_WORDS]


# --- C4 line cleaning ------------------------------------------------------------------------


def test_c4_cleans_lines_and_records_how_many():
    text = "\n".join(
        [
            prose(6),
            "Menu",  # < 3 words
            "Please enable JavaScript to view the comments.",
            "This site uses cookies to improve your experience.",
            "The bridge was opened in 1894 by the Prince of Wales.[3][edit]",
        ]
    )
    out = TextFilterStage(Config().filters)(batch([text]))
    assert out[S.DROP_REASON].to_pylist() == [None]
    assert out[S.C4_LINES_REMOVED].to_pylist() == [3]
    cleaned = out[S.TEXT].to_pylist()[0]
    assert cleaned == prose(6) + "\nThe bridge was opened in 1894 by the Prince of Wales."


def test_c4_terminal_punctuation_when_configured():
    text = prose(6) + "\nA heading without a full stop\nSee more..."
    cfg = Config().filters
    cfg = dataclasses.replace(
        cfg, c4=dataclasses.replace(cfg.c4, drop_lines_without_terminal_punct=True)
    )
    out = TextFilterStage(cfg)(batch([text]))
    assert out[S.C4_LINES_REMOVED].to_pylist() == [2]
    assert out[S.TEXT].to_pylist() == [prose(6)]


def test_sentence_count_keeps_abbreviations_together():
    assert count_sentences("Mr. Smith lives in the U.S. now. He likes it! Really?") == 3
    assert count_sentences("第一句。第二句！第三句") == 3
    assert count_sentences("No punctuation at all") == 1


# --- the stage contract ------------------------------------------------------------------------


def test_rows_kept_scores_only_for_alive_rows_and_earlier_reasons_kept():
    b = batch([GOOD_EN, SHORT_EN, GOOD_EN, None], reasons=[None, None, "lang_low_score", None])
    out = TextFilterStage(Config().filters)(b)
    assert out.num_rows == 4
    assert out[S.DROP_REASON].to_pylist() == [None, R.GOPHER_TOO_FEW_WORDS, "lang_low_score", None]
    assert out[S.DROP_STAGE].to_pylist() == [None, "gopher_quality", "earlier", None]
    words = out[S.GOPHER_WORDS].to_pylist()
    assert words[0] > 50 and words[1] == 16 and words[2] is None and words[3] is None
    # every score column exists with the schema's type
    for name, type_ in S.FILTER_SCORE_FIELDS:
        if name not in (S.URL_MATCH, S.QUALITY_SCORE):
            assert out.schema.field(name).type == type_
    # rejected rows keep their original text (for audits)
    assert out[S.TEXT].to_pylist()[1] == SHORT_EN


def test_scores_of_all_filters_are_written_even_after_an_early_rule_fails():
    """Threshold changes can be previewed from the columns."""
    out = TextFilterStage(Config().filters)(batch([SHORT_EN]))
    assert out[S.DROP_REASON].to_pylist() == [R.GOPHER_TOO_FEW_WORDS]
    assert out[S.FINEWEB_LINE_PUNCT].to_pylist()[0] is not None
    assert out[S.C4_SENTENCES].to_pylist() == [2]


def test_disabled_filter_writes_null_columns():
    cfg = dataclasses.replace(
        Config().filters, gopher_quality=dataclasses.replace(Config().filters.gopher_quality,
                                                             enabled=False)
    )  # fmt: skip
    out = TextFilterStage(cfg)(batch([SHORT_EN]))
    assert out[S.GOPHER_WORDS].to_pylist() == [None]
    assert out[S.DROP_REASON].to_pylist() == [R.C4_TOO_FEW_SENTENCES]


def test_disabled_rules_are_checked_by_config():
    cfg = load_config(None, ["filters.disabled_rules=[gopher_stop_words, url_adult_domain]"])
    assert cfg.filters.disabled_rules == ["gopher_stop_words", "url_adult_domain"]
    with pytest.raises(ConfigError, match="filters.disabled_rules"):
        load_config(None, ["filters.disabled_rules=[gopher_stopwords]"])
    assert R.QUALITY_LOW_SCORE in all_rule_reasons()
    with pytest.raises(ConfigError, match="filters.fineweb.min_line_punct"):
        load_config(None, ["filters.fineweb.min_line_punct=2"])


def test_banned_phrase_trie_matches_like_a_longest_first_alternation():
    phrases = ["two girls one cup", "two girls", "blow your load", "blow job", "2 girls 1 cup"]
    flat = re.compile(
        r"\b(?:" + "|".join(map(re.escape, sorted(phrases, key=len, reverse=True))) + r")\b"
    )
    trie = re.compile(rf"\b{trie_pattern(phrases)}\b")
    text = (
        "two girls one cup; two girls one cupboard, two girlsx, blow job, blow jobs, "
        "xblow your load, 2 girls 1 cup. two girls"
    )
    assert trie.findall(text) == flat.findall(text)
    assert len(trie.findall(text)) == 5
