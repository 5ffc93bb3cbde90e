"""Quality classifier: the shipped model ranks a clean article above spam; the stage
scores only alive documents in the model's languages; `train-quality` trains a model
on real text and reports held-out precision, recall and ROC-AUC."""

from __future__ import annotations

import argparse
import json
import pickle
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from filters.classifier import DEFAULT_MODEL, QualityClassifierStage
from filters.train_quality import add_command, roc_auc
from pipeline import schema as S
from pipeline.config import ClassifierConfig
from tests.filters.texts import GOOD_DE, GOOD_EN, MENU, SPAM
from tests.helpers import doc_batch

WET_SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "sample"
    / "whatsinthebox-cc-main-2020-50.warc.wet.gz"
)
R = S.Reason


@cache
def stage(min_score: float = 0.0) -> QualityClassifierStage:
    return QualityClassifierStage(ClassifierConfig(min_score=min_score))


def batch(texts, langs, reasons=None) -> pa.Table:
    return doc_batch(texts, reasons).append_column(S.LANG, pa.array(langs, pa.string()))


def test_shipped_model_is_small_and_ranks_a_clean_article_above_spam_and_chrome():
    assert DEFAULT_MODEL.stat().st_size < 5_000_000
    article, spam, menu = stage().scores([GOOD_EN, SPAM, MENU])
    assert article > 0.5 > spam
    assert article > menu


def test_scores_only_alive_documents_in_the_models_languages():
    out = stage()(batch([GOOD_EN, GOOD_DE, GOOD_EN, None], ["en", "de", "en", "en"],
                        [None, None, "gopher_stop_words", None]))  # fmt: skip
    scores = out[S.QUALITY_SCORE].to_pylist()
    assert scores[0] > 0.5 and scores[1:] == [None, None, None]
    assert out.schema.field(S.QUALITY_SCORE).type == pa.float32()
    assert out[S.DROP_REASON].to_pylist() == [None, None, "gopher_stop_words", None]


def test_min_score_drops_with_its_reason_and_can_be_disabled():
    strict = stage(min_score=0.5)
    out = strict(batch([GOOD_EN, SPAM], ["en", "en"]))
    assert out[S.DROP_REASON].to_pylist() == [None, R.QUALITY_LOW_SCORE]
    assert out[S.DROP_STAGE].to_pylist() == [None, "quality_classifier"]
    relaxed = QualityClassifierStage(ClassifierConfig(min_score=0.5), [R.QUALITY_LOW_SCORE])
    assert relaxed(batch([SPAM], ["en"]))[S.DROP_REASON].to_pylist() == [None]


def test_disabled_classifier_loads_nothing_and_writes_nulls():
    off = QualityClassifierStage(ClassifierConfig(enabled=False))
    assert off.model is None
    assert off(batch([GOOD_EN], ["en"]))[S.QUALITY_SCORE].to_pylist() == [None]


def test_bad_model_or_label_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="filters.classifier.model"):
        QualityClassifierStage(ClassifierConfig(model=str(tmp_path / "none.ftz")))
    with pytest.raises(ValueError, match="filters.classifier.label"):
        QualityClassifierStage(ClassifierConfig(label="good"))


def test_stage_pickles_as_its_config():
    copy = pickle.loads(pickle.dumps(stage()))
    assert copy.cfg == stage().cfg
    assert np.allclose(copy.scores([GOOD_EN]), stage().scores([GOOD_EN]))


def test_roc_auc():
    labels = np.array([True, True, False, False])
    assert roc_auc(labels, np.array([0.9, 0.8, 0.1, 0.2])) == 1.0
    assert roc_auc(labels, np.array([0.1, 0.2, 0.9, 0.8])) == 0.0
    assert roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def wet_training_files(tmp_path: Path) -> tuple[Path, Path]:
    """Real text from the bundled CC-MAIN-2020-50 WET sample (MIT): prose lines (long,
    ending in a full stop) are good; runs of short menu-like lines are bad."""
    good, bad = [], []
    for n, record in enumerate(
        ArchiveIterator(str(WET_SAMPLE), record_types=WarcRecordType.conversion)
    ):
        lines = record.reader.read().decode("utf-8").split("\n")
        prose = [line for line in lines if len(line) > 150 and line.endswith(".")]
        chrome = [line for line in lines if 0 < len(line) < 30]
        if prose:
            good.append({"text": "\n".join(prose), "group": f"doc{n}"})
        for i in range(0, len(chrome) - 9, 10):
            bad.append({"text": "\n".join(chrome[i : i + 10]), "group": f"doc{n}"})
    positive, negative = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    positive.write_text("".join(json.dumps(d) + "\n" for d in good))
    negative.write_text("".join(json.dumps(d) + "\n" for d in bad))
    return positive, negative


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="crawlmill")
    add_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_train_quality_command_reports_held_out_metrics(tmp_path, capsys):
    positive, negative = wet_training_files(tmp_path)
    model = tmp_path / "model.ftz"
    args = parse(["train-quality", "--positive", str(positive), "--negative", str(negative),
                  "-o", str(model), "--epoch", "10", "--dim", "16"])  # fmt: skip
    assert args.func(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    held_out = metrics["held_out"]
    assert held_out["good"] > 5 and held_out["bad"] > 5
    assert held_out["roc_auc"] > 0.8
    assert {"precision", "recall", "f1"} <= set(held_out["at_0.5"])
    assert model.is_file() and (tmp_path / "model.ftz.metrics.json").is_file()
    trained = QualityClassifierStage(ClassifierConfig(model=str(model)))
    assert trained.scores([GOOD_EN])[0] > trained.scores([MENU])[0]


def test_train_quality_help_and_input_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse(["train-quality", "--help"])
    help_text = capsys.readouterr().out
    assert "--positive" in help_text and "--negative" in help_text and "ROC-AUC" in help_text
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"body": "no text field"}\n')
    args = parse(["train-quality", "--positive", str(broken), "--negative", str(broken),
                  "-o", str(tmp_path / "m.ftz")])  # fmt: skip
    assert args.func(args) == 2
    assert "no string field 'text'" in capsys.readouterr().err
