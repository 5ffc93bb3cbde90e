"""The streaming half of dedup: per-document keys computed where the text already is.

`DedupSignatureStage` runs in the documents phase, after language ID and the quality
filters (so it sees the final text, and never hashes a document already dropped), and
writes three columns for every alive row:

- `text_hash`: the exact-dedup key (dedup/exact.py), 16 bytes;
- `text_chars`: the text's length, for the survivor choice;
- `minhash`: the MinHash signature (dedup/minhash.py), num_perm uint32, null when the
  normalised text has no shingles.

Why here and not in the global step: the signature is the costly part (~0.3 ms per 2 KB
document, mostly SHA-1 per shingle), and here it runs inside the workers that already
hold the text, overlapped with extraction, which costs ~30x more per page (~10 ms). The
global step then reads 512 + 20 bytes per document from the parts instead of the text
(~5 KB per document), and never re-tokenises anything: it stays a cheap, memory-bounded
barrier. A run's parts written without these columns still work: the global step then
computes them from `text` (dedup/barrier.py), which is slower but identical.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.exact import text_hash
from dedup.minhash import sha1_hash32_many, signatures_from_hashes
from dedup.normalize import normalize_words, shingle_mode, shingles_from_words
from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.stage import alive_mask, set_column


def document_keys(
    texts: list[str | None], langs: list[str | None], cfg: DedupConfig
) -> tuple[list[bytes | None], np.ndarray, np.ndarray]:
    """For each text: its exact key (None without text or words), and its signature with
    a flag saying whether it has one (False: no text, no shingles, or near disabled)."""
    near = cfg.near
    char_langs = frozenset(near.char_ngram_languages)
    hashes: list[bytes | None] = []
    shingle_hashes = []
    counts = np.zeros(len(texts), np.int64)
    for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
        if text is None:
            hashes.append(None)
            continue
        words = normalize_words(text)
        hashes.append(text_hash(" ".join(words)))
        if not near.enabled or not words:
            continue
        mode = shingle_mode(lang, text, char_langs)
        shingles = shingles_from_words(words, mode, near.ngram, near.char_ngram)
        counts[i] = len(shingles)
        shingle_hashes.append(sha1_hash32_many(shingles))
    flat = np.concatenate(shingle_hashes) if shingle_hashes else np.empty(0, np.uint32)
    sigs = signatures_from_hashes(flat, counts, near.num_perm, near.seed)
    return hashes, sigs, counts > 0


def signature_column(sigs: np.ndarray, present: np.ndarray) -> pa.Array:
    """list<uint32> column: row i = sigs[i] where present[i], else null."""
    num_perm = sigs.shape[1]
    lengths = np.where(present, num_perm, 0)
    offsets = np.zeros(len(present) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(sigs[present].reshape(-1), pa.uint32())
    return pa.ListArray.from_arrays(
        pa.array(offsets), values, type=pa.list_(pa.uint32()), mask=pa.array(~present)
    )


class DedupSignatureStage:
    """Streaming stage: text_hash, text_chars, minhash for every alive row."""

    name = "dedup_signature"

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.cfg.enabled:  # the columns exist either way (DOC_SCHEMA), null here
            n = batch.num_rows
            batch = set_column(batch, S.TEXT_HASH, pa.nulls(n, pa.binary(16)), pa.binary(16))
            batch = set_column(batch, S.TEXT_CHARS, pa.nulls(n, pa.int32()), pa.int32())
            return set_column(
                batch, S.MINHASH, pa.nulls(n, pa.list_(pa.uint32())), pa.list_(pa.uint32())
            )
        alive = np.asarray(alive_mask(batch).to_numpy(zero_copy_only=False), dtype=bool)
        texts = [t if a else None for t, a in zip(batch[S.TEXT].to_pylist(), alive, strict=True)]
        langs = batch[S.LANG].to_pylist() if S.LANG in batch.schema.names else [None] * len(texts)
        hashes, sigs, present = document_keys(texts, langs, self.cfg)
        chars = pc.if_else(pa.array(alive), pc.utf8_length(batch[S.TEXT]), None)
        batch = set_column(batch, S.TEXT_HASH, pa.array(hashes, pa.binary(16)), pa.binary(16))
        batch = set_column(batch, S.TEXT_CHARS, chars, pa.int32())
        return set_column(batch, S.MINHASH, signature_column(sigs, present), pa.list_(pa.uint32()))
