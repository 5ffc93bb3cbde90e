"""`crawlmill train-domain`: a real fastText model from labelled JSONL, per-class held-out
figures, byte-identical retrains, and clear errors for bad rows."""

from __future__ import annotations

import json

from mixers.domains import load_domain_model, predict_domains
from mixers.train_domain import SEED_TEXTS, lexicon_label
from pipeline.cli import main


def test_train_domain_writes_a_model_with_per_class_figures(tmp_path, capsys):
    # the seed texts, three times under distinct groups: enough rows for both sides
    rows = [json.loads(line) for line in SEED_TEXTS.read_text().splitlines()]
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(
            json.dumps({**r, "group": f"{i}:{n}"}) + "\n"
            for n in range(4)
            for i, r in enumerate(rows)
        )
    )
    model = tmp_path / "m.ftz"
    assert main(["train-domain", str(data), "-o", str(model), "--epoch", "5"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    held = metrics["held_out"]
    assert held["documents"] > 0 and "science" in held["per_class_top1"]
    assert json.loads((tmp_path / "m.ftz.metrics.json").read_text())["held_out"] == held
    labels, _ = predict_domains(load_domain_model(str(model)), ["quantum particle experiment"])
    assert labels[0] == "science"  # the seed texts teach it physics words
    # single thread + fixed seed: the same data gives the same bytes
    again = tmp_path / "again.ftz"
    assert main(["train-domain", str(data), "-o", str(again), "--epoch", "5"]) == 0
    assert again.read_bytes() == model.read_bytes()


def test_bad_rows_fail_naming_the_line(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "a", "label": "science"}\n{"text": "b", "label": "sports"}\n')
    assert main(["train-domain", str(data), "-o", str(tmp_path / "m.ftz")]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err


def test_lexicon_labels_only_unambiguous_text():
    physics = (
        "The experiment measured the neutron and electron spectrum; the theoretical equation "
        "and the hypothesis about particle physics and quantum galaxy evolution were tested."
    )
    assert lexicon_label(physics) == "science"
    assert lexicon_label("a short text about nothing in particular") is None
