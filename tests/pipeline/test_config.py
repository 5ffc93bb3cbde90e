"""Config: defaults equal configs/default.yaml; mistakes fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Config, ConfigError, config_from_dict, load_config

REPO = Path(__file__).resolve().parents[2]


def test_default_yaml_equals_builtin_defaults():
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_set_overrides_parse_yaml_values():
    cfg = load_config(None, ["langid.languages=[en, zh]", "extract.timeout_seconds=3", "seed=7"])
    assert cfg.langid.languages == ["en", "zh"]
    assert cfg.extract.timeout_seconds == 3.0
    assert cfg.seed == 7


@pytest.mark.parametrize(
    "override, message",
    [
        ("langid.min_score=high", "langid.min_score: expected a number"),
        ("langid.min_score=1.5", "langid.min_score: expected a number in [0, 1]"),
        ("langid.minscore=0.5", "langid.minscore: unknown key"),
        (
            "extract.extractor=boilerpy",
            "extract.extractor: expected one of 'trafilatura', 'resiliparse'",
        ),
        ("output.shard_tokens=0", "output.shard_tokens: expected a positive integer"),
        ("output.keep_rejected_text=maybe", "output.keep_rejected_text: expected true or false"),
        ("langid.languages=[]", "langid.languages"),
        ("nonsense", "expected KEY=VALUE"),
        ("=5", "--set '=5': empty key"),
        (" =5", "empty key"),
        ("langid..min_score=0.5", "empty part in key 'langid..min_score'"),
        (
            "langid.languages=[en, zh",
            "langid.languages: cannot parse value '[en, zh': expected ',' or ']', but got "
            "'<stream end>' (line 1, column 8)",
        ),
    ],
)
def test_mistakes_name_the_key(override, message):
    with pytest.raises(ConfigError) as excinfo:
        load_config(None, [override])
    assert message in str(excinfo.value)


def test_yaml_file_mistakes(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extract:\n  trafilatura:\n    fastest: true\n")
    with pytest.raises(ConfigError, match=r"extract\.trafilatura\.fastest: unknown key"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_unreadable_and_malformed_config_files_fail_on_one_line(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01 not text \x80")
    with pytest.raises(ConfigError) as excinfo:
        load_config(binary)
    assert str(excinfo.value) == f"{binary}: not a UTF-8 text file (invalid start byte at byte 0)"
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("seed: 1\nlangid:\n  languages: [en, zh\n  min_score: 0.5\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(syntax)
    message = str(excinfo.value)
    assert message.startswith(f"{syntax}: not valid YAML: ")
    assert "(line 4, column 12)" in message
    assert "\n" not in message and "^" not in message


@pytest.mark.parametrize(
    "low, high",
    [
        ("filters.gopher_quality.min_words=500", "filters.gopher_quality.max_words=100"),
        (
            "filters.gopher_quality.min_mean_word_length=6",
            "filters.gopher_quality.max_mean_word_length=5",
        ),
    ],
)
def test_a_minimum_above_its_maximum_names_both_keys(low, high):
    with pytest.raises(ConfigError) as excinfo:
        load_config(None, [low, high])
    message = str(excinfo.value)
    assert low.split("=")[0] in message and high.split("=")[0] in message
    # equal bounds are allowed, and each pair checks only its own keys
    equal = high.split("=")[0] + "=" + low.split("=")[1]
    load_config(None, [low, equal])


def test_round_trip_and_engine_kept_out_of_output_settings():
    cfg = load_config(None, ["engine.chunk_records=7"])
    assert config_from_dict(cfg.to_dict()) == cfg
    assert "engine" not in cfg.output_dict()
    assert cfg.fingerprint() == Config().fingerprint()


@pytest.mark.parametrize(
    "overrides, runs",
    [
        ([], False),  # default: every language kept, nothing to drop early
        (["langid.languages=[en]"], True),  # auto, with a list
        (["langid.languages=[en]", "langid.before_extraction=false"], False),
        (["langid.languages=[en]", "langid.before_extraction=true"], True),
        (["langid.languages=[en]", "extract.extractor=resiliparse"], False),
    ],
)
def test_language_id_before_extraction_runs_with_a_languages_list(overrides, runs):
    from pipeline.runner import build_stages, langid_before_extraction

    cfg = load_config(None, overrides)
    assert langid_before_extraction(cfg) is runs
    names = [stage.name for stage in build_stages(cfg)]
    assert ("langid_before_extraction" in names) is runs


def test_language_id_before_extraction_is_auto_true_or_false():
    with pytest.raises(ConfigError, match="langid.before_extraction: expected one of 'auto'"):
        load_config(None, ["langid.before_extraction=maybe"])
