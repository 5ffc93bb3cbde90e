"""Exact dedup key: a 128-bit hash of the normalised text.

Two documents are exact duplicates when their texts are equal after `normalize_text`
(NFKC, lowercase, digits -> "0", punctuation and symbols -> spaces, whitespace collapsed:
dedup/normalize.py), i.e. the same words in the same order. Pages that differ only by a
date, a counter, a price or their punctuation are caught here, cheaply, before the MinHash
pass has to compare them.

BLAKE2b with a 16-byte digest (hashlib, ~1 GB/s): with 128 bits, the chance that any two
of 10**10 different documents collide is ~10**-19. A text that normalises to nothing
(only punctuation, digits become "0" so they stay) gets no key and is never a duplicate.

Exact dedup *before* extraction, by payload digest or URL, so duplicate pages skip the
extractor, is dedup/pre.py (`dedup.pre_extraction`): it needs no text. This key needs the
extracted text.
"""

from __future__ import annotations

import hashlib

TEXT_HASH_BYTES = 16


def text_hash(normalized_text: str) -> bytes | None:
    """The exact-dedup key of an already normalised text; None when it is empty."""
    if not normalized_text:
        return None
    return hashlib.blake2b(normalized_text.encode(), digest_size=TEXT_HASH_BYTES).digest()
