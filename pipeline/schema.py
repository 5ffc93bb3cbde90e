"""Column names, drop reasons and Arrow schemas: the one place that defines them.

Every stage reads and writes `pyarrow.Table` batches whose columns are named here. A row
is never deleted inside a phase: a stage that rejects a document sets `drop_reason` (and
`drop_stage`) and later stages skip that row. Rows leave at the end of a phase, kept ones
into shards and the others into `rejected/`, so every WARC record read is accounted for:

    records read == documents kept + rows in rejected/

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
N_TOKENS = "n_tokens"  # token count including the appended EOS
TOKENS = "tokens"  # token ids, uint32

# --- Fate of the row ---------------------------------------------------------------------
DROP_REASON = "drop_reason"  # null while the row is alive; first reason wins
DROP_STAGE = "drop_stage"  # name of the stage that set drop_reason


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
        (DROP_REASON, pa.string()),
        (DROP_STAGE, pa.string()),
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
        (N_TOKENS, pa.int32()),
        (TOKENS, pa.list_(pa.uint32())),
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
        (TEXT, pa.large_string()),
    ]
)
