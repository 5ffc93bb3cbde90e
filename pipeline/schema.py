"""Column names, drop reasons and Arrow schemas: the one place that defines them.

Every stage reads and writes `pyarrow.Table` batches whose columns are named here. A row
is never deleted inside a phase: a stage that rejects a document sets `drop_reason` (and
`drop_stage`) and later stages skip that row. Rows leave at the end of a phase, kept ones
into shards and the others into `rejected/`, so every WARC record read is accounted for:

    records read == documents kept - rebalancing repeats + rows in rejected/

(a repeat is an extra copy of a kept document, id `<id>#r<k>`: mixers/rebalance.py).

Adding a column for a later stage (a quality score, a domain label) means adding it here
and to the schema that stage emits; nothing else keeps a list of columns.
"""

from __future__ import annotations

import pyarrow as pa

# --- Provenance: where a row came from (set by the reader, never changed) -------------
ID = "id"  # WARC-Record-ID, e.g. "<urn:uuid:...>"; "<source>@<offset>" if the record has none
URL = "url"  # WARC-Target-URI
CRAWL_DATE = "crawl_date"  # WARC-Date as written in the record (ISO 8601 string)
SOURCE = "source"  # input file path or URI, as given after glob/directory expansion
OFFSET = "offset"  # byte offset of the record in its (possibly compressed) input file
RECORD_TYPE = "record_type"  # WARC-Type: response, conversion, request, metadata, ...

# --- Raw payload (reader -> extraction; dropped after extraction) ---------------------
HTTP_STATUS = "http_status"  # HTTP status code of a response record; null for WET
CONTENT_TYPE = "content_type"  # HTTP Content-Type header, verbatim; null for WET
PAYLOAD = "payload"  # HTTP body bytes (response) or UTF-8 text bytes (WET conversion)

# --- Document content and per-document judgements ----------------------------------------
TEXT = "text"  # extracted main text
CHARSET = "charset"  # charset the payload was decoded with, and how (e.g. "gbk:meta")
LANG = "lang"  # fastText lid.176 label without "__label__", e.g. "en", "zh"
LANG_SCORE = "lang_score"  # its probability
N_TOKENS = "n_tokens"  # token count including the appended EOS (also for dropped rows with text)
TOKENS = "tokens"  # token ids, uint32

# --- Quality filters (filters/): one column per score, null where not computed --------------
# Written for every row alive when the filter stage starts; null for rows dropped earlier
# and for rules that do not apply to the document's language (docs/FILTERS.md).
URL_MATCH = "url_match"  # what blocked the URL, e.g. "ut1_adult:example.com", "banned_word:xxx"
GOPHER_WORDS = "gopher_words"  # words (no-space scripts: characters) that are not only symbols
GOPHER_MEAN_WORD_LENGTH = "gopher_mean_word_length"  # characters per such word
GOPHER_SYMBOL_WORD_RATIO = "gopher_symbol_word_ratio"  # max(#, ellipses) per token
GOPHER_BULLET_LINES = "gopher_bullet_lines"  # fraction of lines starting with a bullet
GOPHER_ELLIPSIS_LINES = "gopher_ellipsis_lines"  # fraction of lines ending with an ellipsis
GOPHER_ALPHA_WORDS = "gopher_alpha_words"  # fraction of tokens with a letter
GOPHER_STOP_WORDS = "gopher_stop_words"  # distinct stop words of the document's language
GOPHER_DUP_PARA_FRAC = "gopher_dup_para_frac"  # duplicate paragraphs / paragraphs
GOPHER_DUP_PARA_CHAR_FRAC = "gopher_dup_para_char_frac"  # their characters / characters
GOPHER_DUP_LINE_FRAC = "gopher_dup_line_frac"  # duplicate lines / lines
GOPHER_DUP_LINE_CHAR_FRAC = "gopher_dup_line_char_frac"  # their characters / characters
GOPHER_TOP_NGRAM_CHAR_FRAC = {n: f"gopher_top_{n}gram_char_frac" for n in (2, 3, 4)}
GOPHER_DUP_NGRAM_CHAR_FRAC = {n: f"gopher_dup_{n}gram_char_frac" for n in range(5, 11)}
C4_LINES_REMOVED = "c4_lines_removed"  # lines C4's line cleaning removed from `text`
C4_SENTENCES = "c4_sentences"  # sentences in the kept lines
C4_LOREM_IPSUM = "c4_lorem_ipsum"  # a line past the word checks contains "lorem ipsum"
C4_CURLY_BRACKET = "c4_curly_bracket"  # a line past the word checks contains "{"
FINEWEB_LINE_PUNCT = "fineweb_line_punct"  # fraction of lines ending in terminal punctuation
FINEWEB_SHORT_LINES = "fineweb_short_lines"  # fraction of lines of <= 30 characters
FINEWEB_DUP_LINE_CHARS = "fineweb_dup_line_chars"  # duplicate-line characters / characters
FINEWEB_NEWLINE_WORDS = "fineweb_newline_words"  # newlines per token
BANNED_WORD_RATIO = "banned_word_ratio"  # banned words and phrases per word (safety)
QUALITY_SCORE = "quality_score"  # fastText quality classifier: probability of the good label

# --- Dedup (dedup/, docs/DEDUP.md) -----------------------------------------------------------
# Written by the streaming stage dedup/stage.py for every row alive when it runs (null for
# rows dropped earlier), read by the global dedup step (dedup/barrier.py).
TEXT_HASH = "text_hash"  # 16-byte BLAKE2b of the normalised text (exact dedup key)
TEXT_CHARS = "text_chars"  # characters in `text` (survivor choice: longest text)
MINHASH = "minhash"  # MinHash signature, dedup.near.num_perm uint32 (null: no shingles)
# Set on the rows the global dedup step drops (rejected/ only): what they duplicated.
DUP_CLUSTER_ID = "dup_cluster_id"  # id of the document kept from this row's cluster
DUP_CLUSTER_SIZE = "dup_cluster_size"  # documents in that cluster, the kept one included

# --- Domain (mixers/domains.py, docs/DOMAINS.md) ---------------------------------------------
# Written for every row alive when the domain stage runs (null for rows dropped earlier).
DOMAIN = "domain"  # one of pipeline.config.DOMAIN_LABELS, e.g. "science"
DOMAIN_SCORE = "domain_score"  # 1.0 for a URL rule, the classifier's probability otherwise
DOMAIN_SOURCE = "domain_source"  # what decided: "url", "classifier" or "none" (-> other)
DOMAIN_MATCH = "domain_match"  # the URL rule that matched, e.g. "ut1:shopping:example.com"

# --- Fate of the row ---------------------------------------------------------------------
DROP_REASON = "drop_reason"  # null while the row is alive; first reason wins
DROP_STAGE = "drop_stage"  # name of the stage that set drop_reason
# What went wrong, in words, where the reason alone does not say: the reader's message for
# a read_error row ("record is cut short", "gzip body does not decode" ...); null otherwise.
# Added within manifest format_version 2 (a column more in rejected/; the shards and every
# other column are as they were, so readers of older runs must not require it).
DROP_DETAIL = "drop_detail"


class Reason:
    """Every value `drop_reason` can take. Stats group by these strings."""

    # reader: records that are not documents, or not usable ones
    NOT_A_DOCUMENT = "not_a_document"  # warcinfo, request, metadata, resource ... records
    REVISIT = "revisit"  # revisit record: no payload, points to another capture
    HTTP_STATUS = "http_status"  # response whose HTTP status is not 200
    NOT_HTML = "not_html"  # response whose Content-Type (or sniffed payload) is not HTML
    HTML_TOO_LARGE = "html_too_large"  # payload above read.max_payload_bytes
    READ_ERROR = "read_error"  # the record could not be parsed (truncated, garbage)
    # decode + extract
    UNDECODABLE = "undecodable"  # no charset turns the bytes into text
    EXTRACT_TIMEOUT = "extract_timeout"  # extractor ran over extract.timeout_seconds
    EXTRACT_ERROR = "extract_error"  # extractor raised or its process died
    NO_TEXT = "no_text"  # extractor found no main text (or less than min_text_chars)
    # language ID
    LANG_NOT_WANTED = "lang_not_wanted"  # language not in langid.languages
    LANG_LOW_SCORE = "lang_low_score"  # lang_score below langid.min_score
    # URL filter (before extraction: a blocked page is never extracted)
    URL_ADULT_DOMAIN = "url_adult_domain"  # host or a parent domain on the UT1 adult list
    URL_ADULT_URL = "url_adult_url"  # the URL (host + path) on the UT1 adult URL list
    URL_USER_BLOCKED = "url_user_blocked"  # host or a parent domain on the user's block list
    URL_BANNED_WORD = "url_banned_word"  # a banned word among the URL's words
    URL_SOFT_BANNED_WORDS = "url_soft_banned_words"  # >= N "soft" banned words in the URL
    URL_BANNED_SUBWORD = "url_banned_subword"  # a banned subword inside the normalised URL
    # Gopher repetition (Rae et al. 2021, table A1)
    GOPHER_DUP_PARA_FRAC = "gopher_dup_para_frac"
    GOPHER_DUP_PARA_CHAR_FRAC = "gopher_dup_para_char_frac"
    GOPHER_DUP_LINE_FRAC = "gopher_dup_line_frac"
    GOPHER_DUP_LINE_CHAR_FRAC = "gopher_dup_line_char_frac"
    GOPHER_TOP_NGRAM = {n: f"gopher_top_{n}gram" for n in (2, 3, 4)}
    GOPHER_DUP_NGRAM = {n: f"gopher_dup_{n}gram" for n in range(5, 11)}
    # Gopher quality (Rae et al. 2021)
    GOPHER_TOO_FEW_WORDS = "gopher_too_few_words"
    GOPHER_TOO_MANY_WORDS = "gopher_too_many_words"
    GOPHER_MEAN_WORD_LENGTH = "gopher_mean_word_length"
    GOPHER_SYMBOL_RATIO = "gopher_symbol_ratio"
    GOPHER_BULLET_LINES = "gopher_bullet_lines"
    GOPHER_ELLIPSIS_LINES = "gopher_ellipsis_lines"
    GOPHER_ALPHA_WORDS = "gopher_alpha_words"
    GOPHER_STOP_WORDS = "gopher_stop_words"
    # C4 (Raffel et al. 2020)
    C4_LOREM_IPSUM = "c4_lorem_ipsum"
    C4_CURLY_BRACKET = "c4_curly_bracket"
    C4_TOO_FEW_SENTENCES = "c4_too_few_sentences"
    C4_EMPTY = "c4_empty"  # line cleaning removed every line
    # FineWeb (Penedo et al. 2024)
    FINEWEB_LINE_PUNCT = "fineweb_line_punct"
    FINEWEB_SHORT_LINES = "fineweb_short_lines"
    FINEWEB_DUP_LINE_CHARS = "fineweb_dup_line_chars"
    FINEWEB_NEWLINE_WORDS = "fineweb_newline_words"
    # content safety and the quality classifier
    SAFETY_BANNED_WORDS = "safety_banned_words"
    QUALITY_LOW_SCORE = "quality_low_score"
    # dedup (the global step between the documents and the write phase)
    EXACT_DUPLICATE = "exact_duplicate"  # same normalised text as the kept document
    NEAR_DUPLICATE = "near_duplicate"  # in the MinHash/LSH cluster of the kept document
    # rebalancing (the mix barrier after dedup, mixers/rebalance.py)
    DOMAIN_DOWNSAMPLED = "domain_downsampled"  # hash(id, seed) above its domain's rate
    # exact dedup before extraction (dedup/pre.py): never extracted
    PAYLOAD_DUPLICATE = "payload_duplicate"  # same HTTP body (+ charset) as an earlier record
    URL_DUPLICATE = "url_duplicate"  # same normalised target URI as an earlier record


# Score columns of the quality filters, in DOC_SCHEMA and REJECTED_SCHEMA order.
DOMAIN_FIELDS = [
    (DOMAIN, pa.string()),
    (DOMAIN_SCORE, pa.float32()),
    (DOMAIN_SOURCE, pa.string()),
    (DOMAIN_MATCH, pa.string()),
]

FILTER_SCORE_FIELDS = [
    (URL_MATCH, pa.string()),
    (GOPHER_DUP_PARA_FRAC, pa.float32()),
    (GOPHER_DUP_PARA_CHAR_FRAC, pa.float32()),
    (GOPHER_DUP_LINE_FRAC, pa.float32()),
    (GOPHER_DUP_LINE_CHAR_FRAC, pa.float32()),
    *[(name, pa.float32()) for name in GOPHER_TOP_NGRAM_CHAR_FRAC.values()],
    *[(name, pa.float32()) for name in GOPHER_DUP_NGRAM_CHAR_FRAC.values()],
    (GOPHER_WORDS, pa.int32()),
    (GOPHER_MEAN_WORD_LENGTH, pa.float32()),
    (GOPHER_SYMBOL_WORD_RATIO, pa.float32()),
    (GOPHER_BULLET_LINES, pa.float32()),
    (GOPHER_ELLIPSIS_LINES, pa.float32()),
    (GOPHER_ALPHA_WORDS, pa.float32()),
    (GOPHER_STOP_WORDS, pa.int32()),
    (C4_LINES_REMOVED, pa.int32()),
    (C4_SENTENCES, pa.int32()),
    (C4_LOREM_IPSUM, pa.bool_()),
    (C4_CURLY_BRACKET, pa.bool_()),
    (FINEWEB_LINE_PUNCT, pa.float32()),
    (FINEWEB_SHORT_LINES, pa.float32()),
    (FINEWEB_DUP_LINE_CHARS, pa.float32()),
    (FINEWEB_NEWLINE_WORDS, pa.float32()),
    (BANNED_WORD_RATIO, pa.float32()),
    (QUALITY_SCORE, pa.float32()),
]


# Schema of what the reader emits: one row per WARC record.
RAW_SCHEMA = pa.schema(
    [
        (ID, pa.string()),
        (URL, pa.string()),
        (CRAWL_DATE, pa.string()),
        (SOURCE, pa.string()),
        (OFFSET, pa.int64()),
        (RECORD_TYPE, pa.string()),
        (HTTP_STATUS, pa.int32()),
        (CONTENT_TYPE, pa.string()),
        (PAYLOAD, pa.large_binary()),
        (DROP_REASON, pa.string()),
        (DROP_STAGE, pa.string()),
        (DROP_DETAIL, pa.string()),
    ]
)

# Schema after the streaming phase: what `_work/docs/*.parquet` holds, kept and dropped rows.
DOC_SCHEMA = pa.schema(
    [
        (ID, pa.string()),
        (URL, pa.string()),
        (CRAWL_DATE, pa.string()),
        (SOURCE, pa.string()),
        (OFFSET, pa.int64()),
        (RECORD_TYPE, pa.string()),
        (HTTP_STATUS, pa.int32()),
        (CONTENT_TYPE, pa.string()),
        (CHARSET, pa.string()),
        (TEXT, pa.large_string()),
        (LANG, pa.string()),
        (LANG_SCORE, pa.float32()),
        (N_TOKENS, pa.int32()),
        (TOKENS, pa.list_(pa.uint32())),
        *FILTER_SCORE_FIELDS,
        *DOMAIN_FIELDS,
        (DROP_REASON, pa.string()),
        (DROP_STAGE, pa.string()),
        (DROP_DETAIL, pa.string()),
        (TEXT_HASH, pa.binary(16)),
        (TEXT_CHARS, pa.int32()),
        (MINHASH, pa.list_(pa.uint32())),
    ]
)

# Schema of a token shard (Arrow IPC file): one row per kept document. Uncompressed so a
# trainer can memory-map it and read one document's tokens without touching the rest.
SHARD_SCHEMA = pa.schema(
    [
        (ID, pa.string()),
        (URL, pa.string()),
        (CRAWL_DATE, pa.string()),
        (SOURCE, pa.string()),
        (LANG, pa.string()),
        (LANG_SCORE, pa.float32()),
        (DOMAIN, pa.string()),
        (DOMAIN_SCORE, pa.float32()),
        (DOMAIN_SOURCE, pa.string()),
        (N_TOKENS, pa.int32()),
        (TOKENS, pa.list_(pa.uint32())),
        # since manifest format_version 2: what `crawlmill inspect --where` and the report use
        (TEXT_CHARS, pa.int32()),
        (QUALITY_SCORE, pa.float32()),
    ]
)

# Schema of `rejected/*.parquet`: every row that did not become a document, with its reason
# and whatever scores were computed before it was dropped. TEXT is null unless
# output.keep_rejected_text is set.
REJECTED_SCHEMA = pa.schema(
    [
        (ID, pa.string()),
        (URL, pa.string()),
        (CRAWL_DATE, pa.string()),
        (SOURCE, pa.string()),
        (OFFSET, pa.int64()),
        (RECORD_TYPE, pa.string()),
        (HTTP_STATUS, pa.int32()),
        (CONTENT_TYPE, pa.string()),
        (CHARSET, pa.string()),
        (LANG, pa.string()),
        (LANG_SCORE, pa.float32()),
        (DROP_STAGE, pa.string()),
        (DROP_REASON, pa.string()),
        (DROP_DETAIL, pa.string()),  # not in rejected/ of runs older than the column
        (TEXT, pa.large_string()),
        *FILTER_SCORE_FIELDS,
        *DOMAIN_FIELDS,
        (DUP_CLUSTER_ID, pa.string()),
        (DUP_CLUSTER_SIZE, pa.int32()),
        # since manifest format_version 2: what the row would have weighed (null: no text).
        # n_tokens is counted for every row with text, dropped or not (pipeline/tokenize.py)
        (TEXT_CHARS, pa.int32()),
        (N_TOKENS, pa.int32()),
    ]
)


def part_name(file_index: int, chunk_index: int) -> str:
    """The file name of a chunk's documents-phase part (in `_work/docs/`): sorting the
    names gives input order."""
    return f"{file_index:05d}-{chunk_index:05d}.parquet"


def drops_name(index: int) -> str:
    """The file name of one file of a dedup side table (below): a group of input files
    before extraction (dedup/pre.py), a range of parts after (dedup/barrier.py)."""
    return f"drops-{index:05d}.parquet"


# A dedup side table (dedup/pre.py before extraction, dedup/barrier.py after): one row per
# dropped row of a documents-phase part, naming the part and row, why, and the cluster.
DEDUP_DROP_FIELDS = [
    ("file_index", pa.int32()),
    ("chunk_index", pa.int32()),
    ("row", pa.int32()),
    (DROP_REASON, pa.string()),
    (DUP_CLUSTER_ID, pa.string()),
    (DUP_CLUSTER_SIZE, pa.int32()),
]
