"""The streaming stage: keys for alive rows only, the same whatever the batch size."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dedup.minhash import signatures
from dedup.normalize import shingles
from dedup.stage import DedupSignatureStage
from pipeline import schema as S
from pipeline.config import DedupConfig
from tests.dedup.texts import hanzi_text, words_text


def batch(texts, langs, reasons):
    return pa.table(
        {
            S.ID: [f"d{i}" for i in range(len(texts))],
            S.TEXT: pa.array(texts, pa.large_string()),
            S.LANG: langs,
            S.DROP_REASON: pa.array(reasons, pa.string()),
            S.DROP_STAGE: pa.array([r and "earlier" for r in reasons], pa.string()),
        }
    )


def test_columns_for_alive_rows_only():
    texts = [words_text(1), words_text(2), hanzi_text(3), "!!!", None]
    out = DedupSignatureStage(DedupConfig())(
        batch(texts, ["en", "en", "zh", "en", None], [None, "no_text", None, None, "no_text"])
    )
    assert out.num_rows == 5 and out[S.DROP_REASON].to_pylist()[1] == "no_text"
    sigs = out[S.MINHASH].to_pylist()
    assert [s is None for s in sigs] == [False, True, False, True, True]  # "!!!": no shingles
    assert out[S.TEXT_HASH].to_pylist()[1] is None and out[S.TEXT_HASH].to_pylist()[3] is None
    assert out[S.TEXT_CHARS].to_pylist() == [len(texts[0]), None, len(texts[2]), 3, None]
    expected = signatures([shingles(texts[0], "en"), shingles(texts[2], "zh")])
    np.testing.assert_array_equal(np.array([sigs[0], sigs[2]], np.uint32), expected)


def test_same_columns_whatever_the_batch_size():
    texts = [words_text(i, 50 + 10 * i) for i in range(12)]
    whole = batch(texts, ["en"] * 12, [None] * 12)
    stage = DedupSignatureStage(DedupConfig())
    one = stage(whole)
    pieces = pa.concat_tables(stage(whole.slice(i, 5)) for i in range(0, 12, 5))
    for name in (S.TEXT_HASH, S.TEXT_CHARS, S.MINHASH):
        assert one[name].to_pylist() == pieces[name].to_pylist()
