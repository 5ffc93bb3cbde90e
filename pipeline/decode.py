"""Bytes -> text for HTML payloads: which charset, and how we know.

`decode_html(payload, content_type)` returns `(text, how)`, where `how` names the Python
codec used and the evidence, e.g. "gb18030:http", "cp932:meta", "utf-8:bom",
"cp1251:detected", "utf-8:lossy", or `(None, "undecodable")` when nothing fits. The
pipeline stores `how` in the `charset` column, so stats can show how pages were decoded.

The evidence is tried in this order, as browsers do, with corrections for crawl data:

1. a byte-order mark;
2. the HTTP Content-Type `charset=` parameter, then `<meta charset>` or
   `<meta http-equiv="content-type">` in the first 4 KB (comments skipped);
3. detection (resiliparse's `detect_encoding`, ~0.3 ms for an 80 KB page);
4. the first of (declared, detected, utf-8) whose lossy decoding replaces < 1% of the
   characters; otherwise the page is undecodable, a counted reject.

Corrections, from the 3,913 benchmark pages (bench/realpages.warc.gz):

(a) Bytes that are valid UTF-8 and not pure ASCII are UTF-8 whatever a non-UTF-8 label
    says: other encodings almost never form valid multi-byte UTF-8, while pages converted
    to UTF-8 that keep their old label are common. 2,400 bench pages are such UTF-8; the
    detector names something else (cp1252, cp1250, cp1258, tis-620 ...) for 162 of them,
    so it is asked only about bytes that are not UTF-8.
(b) ISO-8859-1/windows-1252 labels are weak: servers send them by default and Latin-1
    decoding never fails, so a lie cannot show up as a decoding error. When such a page is
    detected as a CJK or Cyrillic encoding and decodes strictly under it, detection wins
    (for the 166 non-UTF-8 bench pages labelled Latin-1, the detector never named one).
(c) On Western pages with a few accents and curly quotes the detector often names DOS code
    pages (cp865, cp852) or ISO-8859-x; web pages do not use DOS code pages, and ISO-8859-x
    text never holds bytes 0x80-0x9F (C1 controls) while windows-1252 puts its quotes
    there, so those answers become cp1252 (e.g. "ownerÆs" -> "owner’s", "Estιe" -> "Estée").
(d) A page declared UTF-8 that holds real multi-byte characters plus a few stray bytes
    (< 1%) is damaged UTF-8, read with U+FFFD for the strays ("utf-8:lossy") rather than
    handed to the detector: 13 bench pages declare UTF-8 without being valid UTF-8, 10 of
    them are such; the other 3 are ASCII plus a Latin-1 byte, which detection reads right.

A declared charset whose strict decoding fails falls through to the next step (pages lie).
"Strict" tolerates only an incomplete character at the very end (a page cut mid-character).

Labels are mapped the WHATWG way (resiliparse's `map_encoding_to_html5`), then widened to
the superset codecs browsers really use: gb2312/gbk -> gb18030, shift_jis -> cp932,
euc-kr -> cp949, big5 -> big5hkscs, iso-8859-1/us-ascii -> cp1252 (with the five bytes
cp1252 leaves undefined decoded as C1 controls, as WHATWG does). Unknown labels fall
through to detection.
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

# How far into the page to look for <meta charset>. The HTML standard's prescan stops at
# 1,024 bytes; real pages put scripts and styles first, so we look 4x further.
META_PRESCAN_BYTES = 4096

# Lossy decoding is accepted only when fewer than 1% of the characters are U+FFFD.
MAX_REPLACEMENT_RATIO = 0.01

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Python codec (canonical name) -> the superset codec browsers use for that label.
_SUPERSET = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "ascii": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
}

# Labels Python knows but that must never be used to decode a web page.
_REFUSED = {"utf-7", "utf-32", "utf-32-le", "utf-32-be"}

# Labels servers send by default; detection may overrule them (see module docstring).
_WEAK_LABELS = {"cp1252"}

# Detection results strong enough to overrule a weak label: encodings of other scripts.
_DISTINCT_SCRIPTS = {
    "gb18030",
    "big5hkscs",
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "cp949",
    "cp1251",
    "koi8-r",
    "koi8-u",
    "cp866",
    "iso8859-5",
    "mac-cyrillic",
}

# Detector answers that are implausible for a web page and stand for windows-1252 (see (c)).
_DOS_CODE_PAGES = {"cp437", "cp850", "cp852", "cp858", "cp860", "cp861", "cp863", "cp865"}
_C1_BYTES = re.compile(rb"[\x80-\x9f]")

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([^\s"';,]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([^\s"'/>;,]+)""", re.IGNORECASE)
_HTML_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)

# windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined in Python; WHATWG maps them
# to the C1 controls U+0081 ... so an ISO-8859-1 page holding one of them still decodes.
_C1_HANDLER = "crawlmill-cp1252-c1"


def _c1_controls(error: UnicodeDecodeError) -> tuple[str, int]:
    undecodable = error.object[error.start : error.end]
    return "".join(chr(byte) for byte in undecodable), error.end


codecs.register_error(_C1_HANDLER, _c1_controls)


def codec_for_label(label: str) -> str | None:
    """Python codec for a charset label (WHATWG mapping, then supersets); None if unknown."""
    label = label.strip().strip("\"'").strip().lower()
    if not label:
        return None
    name = map_encoding_to_html5(label, fallback_utf8=False)
    if name is None:  # not a WHATWG label: accept Python's own spellings (cp936, latin-1 ...)
        try:
            info = codecs.lookup(label)
        except (LookupError, ValueError):  # ValueError: a NUL in the label (bench/fuzz.py)
            return None
        if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zip ...
            return None
        name = info.name
    try:
        name = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    if name in _REFUSED:
        return None
    return _SUPERSET.get(name, name)


def http_charset(content_type: str | None) -> str | None:
    """The raw `charset=` parameter of a Content-Type header, if any."""
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type)
    return match.group(1) if match else None


def meta_charset(payload: bytes) -> str | None:
    """The charset label of the first <meta> that declares one in the page's first 4 KB."""
    head = payload[:META_PRESCAN_BYTES]
    if b"<!--" in head:
        head = _HTML_COMMENT.sub(b"", head)
    match = _META_CHARSET.search(head)
    return match.group(1).decode("ascii", "replace") if match else None


def decode_strict(payload: bytes, codec: str) -> str | None:
    """Decode without errors, tolerating only an incomplete character at the very end."""
    errors = _C1_HANDLER if codec == "cp1252" else "strict"
    try:
        return codecs.getincrementaldecoder(codec)(errors).decode(payload, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(payload: bytes, content_type: str | None) -> tuple[str | None, str]:
    """Decode an HTML payload; return (text, "codec:how") or (None, "undecodable")."""
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            text = decode_strict(payload[len(bom) :], codec)
            if text is not None:
                return text, f"{codec}:bom"
            break

    utf8_text = decode_strict(payload, "utf-8")
    utf8_multibyte = utf8_text is not None and not utf8_text.isascii()

    declared = []  # (codec, where) in order of authority
    http_label = http_charset(content_type)
    if http_label and (codec := codec_for_label(http_label)):
        declared.append((codec, "http"))
    meta_label = meta_charset(payload)
    if meta_label and (codec := codec_for_label(meta_label)):
        # A page cannot declare UTF-16 in its own (ASCII) markup; WHATWG reads it as UTF-8.
        declared.append(("utf-8" if codec.startswith("utf-16") else codec, "meta"))

    detection: list[str | None] = []  # run the detector at most once, and only if needed

    def detected() -> str | None:
        if not detection:
            detection.append(_detect(payload))
        return detection[0]

    for codec, where in declared:
        if codec == "utf-8":
            if utf8_text is not None:
                return utf8_text, f"utf-8:{where}"
            # Declared UTF-8 with real multi-byte characters and a few stray bytes (a
            # Latin-1 apostrophe pasted in) is damaged UTF-8, not another encoding.
            lossy = _lossy_utf8(payload)
            if lossy is not None:
                return lossy, "utf-8:lossy"
            continue
        if utf8_multibyte:
            return utf8_text, "utf-8:detected"
        text = decode_strict(payload, codec)
        if text is None:
            continue  # the label lies; try the next piece of evidence
        if codec in _WEAK_LABELS and not text.isascii() and detected() in _DISTINCT_SCRIPTS:
            detected_text = decode_strict(payload, detected())
            if detected_text is not None:
                return detected_text, f"{detected()}:detected"
        return text, f"{codec}:{where}"

    # Pure 7-bit bytes are ASCII/UTF-8, unless ISO-2022-JP escapes (ESC $ ...) hide in them.
    if utf8_text is not None and b"\x1b$" not in payload:
        return utf8_text, "utf-8:detected"
    if detected():
        text = decode_strict(payload, detected())
        if text is not None:
            return text, f"{detected()}:detected"

    # Nothing decodes cleanly: accept the first candidate that loses < 1% of characters.
    candidates = [codec for codec, _ in declared] + [detected(), "utf-8"]
    for codec in dict.fromkeys(c for c in candidates if c):
        errors = _C1_HANDLER if codec == "cp1252" else "replace"
        text = payload.decode(codec, errors)
        if text.count("\ufffd") < MAX_REPLACEMENT_RATIO * max(len(text), 1):
            return text, f"{codec}:lossy"
    return None, "undecodable"


def _lossy_utf8(payload: bytes) -> str | None:
    """UTF-8 with < 1% replaced characters and at least one real multi-byte character."""
    text = payload.decode("utf-8", "replace")
    replaced = text.count("\ufffd")
    if replaced >= MAX_REPLACEMENT_RATIO * max(len(text), 1):
        return None
    return text if not text.replace("\ufffd", "").isascii() else None


def _detect(payload: bytes) -> str | None:
    """resiliparse's guess as a Python codec, with implausible Western guesses -> cp1252."""
    label = detect_encoding(payload, html5_compatible=False)
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in _REFUSED:
        return None
    name = _SUPERSET.get(name, name)
    if name in _DOS_CODE_PAGES:
        return "cp1252"
    if name.startswith("iso8859-") and _C1_BYTES.search(payload):
        return "cp1252"
    return name


def decode_text(payload: bytes) -> str:
    """WET conversion records are UTF-8 by definition; stray bad bytes become U+FFFD."""
    return payload.decode("utf-8", errors="replace")
