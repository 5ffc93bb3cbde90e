"""`crawlmill run` mistakes fail before any work: exit 2, one line naming the key or path,
no traceback, no output directory and no Ray. In-process and off Ray: `init_ray` is
replaced by a function that fails the test if anything gets that far."""

from __future__ import annotations

import pytest

from pipeline import runner
from pipeline.cli import main


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if a run starts Ray; leave a Ray other tests started alone."""

    def init_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(runner, "init_ray", init_ray)
    monkeypatch.setattr(runner, "stop_ray", lambda: None)


def run_cli(capsys, sample_dir, output, *args: str) -> tuple[int, str]:
    code = main(["run", "--input", str(sample_dir), "--output", str(output), *args])
    return code, capsys.readouterr().err


def assert_one_line_error(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crawlmill run: error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_num_cpus_must_be_a_positive_integer(no_ray, sample_dir, tmp_path, capsys, value):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as excinfo:
        run_cli(capsys, sample_dir, out, "--num-cpus", value)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"crawlmill run: error: argument --num-cpus: expected a positive integer, got {value!r}"
    )
    assert not out.exists()


def test_output_that_is_a_file_or_under_a_file(no_ray, sample_dir, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    code, err = run_cli(capsys, sample_dir, afile)
    assert code == 2
    assert_one_line_error(err, f"--output {afile}: exists and is not a directory")
    code, err = run_cli(capsys, sample_dir, afile / "sub")
    assert code == 2
    assert_one_line_error(err, f"--output {afile / 'sub'}: cannot create it: {afile} is not a")
    assert afile.read_text() == "not a directory"


def test_config_file_that_is_not_text_or_not_yaml(no_ray, sample_dir, tmp_path, capsys):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("langid:\n  languages: [en, zh\n")
    out = tmp_path / "never"
    for config, problem in [(binary, "not a UTF-8 text file"), (syntax, "not valid YAML")]:
        code = main(["run", str(config), "--input", str(sample_dir), "--output", str(out)])
        assert code == 2
        assert_one_line_error(capsys.readouterr().err, f"{config}: {problem}")
    assert not out.exists()


def write_files(tmp_path):
    binary = tmp_path / "binary.dat"
    binary.write_bytes(b"\xff\xfe\x00\x01binary\x80\x81")
    not_a_model = tmp_path / "not_a_model.bin"
    not_a_model.write_text("hello\n")
    not_a_tokenizer = tmp_path / "tokenizer.json"
    not_a_tokenizer.write_text('{"a": 1}')
    return binary, not_a_model, not_a_tokenizer


@pytest.mark.parametrize(
    "key, which, problem",
    [
        ("filters.urls.allow_domains_file", "binary", "is not a UTF-8 text file of domains"),
        ("filters.urls.block_domains_file", "binary", "is not a UTF-8 text file of domains"),
        ("filters.urls.allow_domains_file", "directory", "is a directory"),
        ("filters.classifier.model", "not_a_model", "wrong file format"),
        ("domains.model", "not_a_model", "wrong file format"),
        ("langid.model", "not_a_model", "wrong file format"),
        ("tokenizer.name", "not_a_tokenizer", "is not a Hugging Face tokenizer.json"),
    ],
)
def test_bad_files_in_settings_name_the_key(
    no_ray, sample_dir, tmp_path, capsys, key, which, problem
):
    binary, not_a_model, not_a_tokenizer = write_files(tmp_path)
    path = {
        "binary": binary,
        "directory": tmp_path,
        "not_a_model": not_a_model,
        "not_a_tokenizer": not_a_tokenizer,
    }[which]
    out = tmp_path / "never"
    code, err = run_cli(capsys, sample_dir, out, "--set", f"{key}={path}")
    assert code == 2
    assert_one_line_error(err, f"error: {key}: ", problem)
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "=5"], "--set '=5': empty key"),
        (
            ["--set", "langid.languages=[en, zh"],
            "langid.languages: cannot parse value '[en, zh': expected ',' or ']'",
        ),
        (
            [
                "--set",
                "filters.gopher_quality.min_words=500",
                "--set",
                "filters.gopher_quality.max_words=100",
            ],
            "filters.gopher_quality.min_words (500) is above filters.gopher_quality.max_words",
        ),
        (
            [
                "--set",
                "dedup.near.false_positive_weight=0",
                "--set",
                "dedup.near.false_negative_weight=0",
            ],
            "dedup.near.false_positive_weight, dedup.near.false_negative_weight: both 0",
        ),
    ],
)
def test_set_mistakes(no_ray, sample_dir, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code, err = run_cli(capsys, sample_dir, out, *args)
    assert code == 2
    assert_one_line_error(err, message)
    assert not out.exists()


def test_min_above_max_is_checked_for_a_config_built_in_code():
    """`run()` checks the pairs too (check_cross_key_config), not only load_config."""
    from pipeline.config import Config, ConfigError, config_from_dict

    data = Config().to_dict()
    data["filters"]["gopher_quality"]["min_mean_word_length"] = 12.0
    with pytest.raises(
        ConfigError, match=r"min_mean_word_length \(12.0\) is above \S*max_mean_word_length"
    ):
        runner.check_cross_key_config(config_from_dict(data))


def test_a_key_given_twice_in_a_config_file(no_ray, sample_dir, tmp_path, capsys):
    # PyYAML keeps the last of two equal keys; the first section's settings were lost.
    twice = tmp_path / "twice.yaml"
    twice.write_text("langid:\n  min_score: 0.5\nfilters: {}\nlangid:\n  languages: [en]\n")
    inner = tmp_path / "inner.yaml"
    inner.write_text("langid:\n  min_score: 0.5\n  min_score: 0.7\n")
    out = tmp_path / "never"
    for config, key, first, again in [(twice, "langid", 1, 4), (inner, "min_score", 2, 3)]:
        code = main(["run", str(config), "--input", str(sample_dir), "--output", str(out)])
        assert code == 2
        assert_one_line_error(
            capsys.readouterr().err,
            f"{config}: not valid YAML: duplicate key {key!r} (first on line {first}), again "
            f"(line {again},",
        )
    code, err = run_cli(capsys, sample_dir, out, "--set", "langid.languages={a: 1, a: 2}")
    assert code == 2
    assert_one_line_error(err, "langid.languages: cannot parse value", "duplicate key 'a'")
    assert not out.exists()


def test_yaml_merge_keys_may_be_overridden():
    from pipeline.config import parse_yaml

    text = "base: &b {min_score: 0.5, languages: [en]}\nlangid:\n  <<: *b\n  min_score: 0.7\n"
    assert parse_yaml(text)["langid"] == {"min_score": 0.7, "languages": ["en"]}


def test_a_ray_address_nothing_listens_on(no_ray, sample_dir, tmp_path, capsys, monkeypatch):
    # Before, Ray retried such an address for more than ten minutes, then a traceback.
    import socket

    with socket.socket() as probe:  # a local port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    out = tmp_path / "never"
    code, err = run_cli(capsys, sample_dir, out, "--ray-address", address)
    assert code == 2
    assert_one_line_error(err, f"--ray-address {address}: cannot connect (Connection refused)")
    monkeypatch.setenv("RAY_ADDRESS", f"ray://{address}")
    code, err = run_cli(capsys, sample_dir, out)
    assert code == 2
    assert_one_line_error(err, f"RAY_ADDRESS ray://{address}: cannot connect")
    assert not out.exists()
