"""Input listing (files, directories, globs, fsspec URIs) and atomic writes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import fsspec
import pytest

from pipeline.io import (
    InputError,
    atomic_path,
    atomic_write_bytes,
    expand_inputs,
    file_size,
    open_binary,
)
from pipeline.warc import read_file

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "sample"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """crawl/ with WARC/WET files at two depths and files the lister must leave alone."""
    root = tmp_path / "crawl"
    for name in (
        "b.warc.gz",
        "a.warc",
        "sub/c.wet.gz",
        "sub/d.warc.wet",
        "sub/deeper/e.WARC.GZ",
        "sub/f.wet",
        "README.md",
        "old.arc.gz",
        "sub/paths.gz",
        "sub/x.warc.gz.tmp",
    ):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def test_a_file_is_returned_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("odd-name.bin").write_bytes(b"x")  # named explicitly: taken whatever its name
    assert expand_inputs(["odd-name.bin"]) == ["odd-name.bin"]
    absolute = str(tmp_path / "odd-name.bin")
    assert expand_inputs([absolute]) == [absolute]


def test_a_directory_is_searched_recursively(tree):
    assert expand_inputs([str(tree)]) == [
        f"{tree}/a.warc",
        f"{tree}/b.warc.gz",
        f"{tree}/sub/c.wet.gz",
        f"{tree}/sub/d.warc.wet",
        f"{tree}/sub/deeper/e.WARC.GZ",
        f"{tree}/sub/f.wet",
    ]


def test_globs(tree):
    assert expand_inputs([f"{tree}/*.warc.gz"]) == [f"{tree}/b.warc.gz"]
    assert expand_inputs([f"{tree}/**/*.wet*"]) == [
        f"{tree}/sub/c.wet.gz",
        f"{tree}/sub/d.warc.wet",
        f"{tree}/sub/f.wet",
    ]
    # A glob that matches a directory takes its WARC/WET files; other names are skipped.
    assert expand_inputs([f"{tree}/su*"]) == [
        f"{tree}/sub/c.wet.gz",
        f"{tree}/sub/d.warc.wet",
        f"{tree}/sub/deeper/e.WARC.GZ",
        f"{tree}/sub/f.wet",
    ]


def test_sorted_and_each_file_once(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    got = expand_inputs(
        ["crawl/sub", "crawl/sub/c.wet.gz", "./crawl/sub/c.wet.gz", "crawl/*/*.wet"]
    )
    assert got == [
        "crawl/sub/c.wet.gz",
        "crawl/sub/d.warc.wet",
        "crawl/sub/deeper/e.WARC.GZ",
        "crawl/sub/f.wet",
    ]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("missing.warc.gz", "does not exist"),
        ("crawl/*.wat.gz", "matched nothing"),
        ("crawl/*.md", "matched 1 paths but no"),
        ("empty-dir", "holds no"),
    ],
)
def test_bad_patterns_fail_before_any_work(tree, monkeypatch, pattern, message):
    monkeypatch.chdir(tree.parent)
    (tree.parent / "empty-dir").mkdir()
    with pytest.raises(InputError, match=message) as error:
        expand_inputs(["crawl/a.warc", pattern])  # the good pattern first: still an error
    assert pattern in str(error.value)
    assert isinstance(error.value, ValueError)
    with pytest.raises(InputError):
        expand_inputs([])


def test_a_link_to_nothing_fails_before_any_work(tree):
    # Before, the run started Ray and then stopped on a bare "[Errno 2] No such file".
    link = tree / "sub" / "gone.warc.gz"
    link.symlink_to(tree / "nowhere.warc.gz")
    for pattern in (str(tree), str(tree / "**" / "*.warc.gz"), str(link)):
        with pytest.raises(InputError, match="is a symbolic link to .*, which does not exist"):
            expand_inputs([pattern])
    link.unlink()
    assert expand_inputs([str(tree)])  # the rest of the tree is fine


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any directory")
def test_unreadable_directory(tree):
    locked = tree / "sub"
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match="cannot list"):
            expand_inputs([str(tree)])
    finally:
        locked.chmod(0o755)


@pytest.fixture
def bucket():
    """An fsspec in-memory 'bucket' holding a real WARC: URIs work like s3:// ones."""
    name = f"bucket-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    data = (SAMPLE / "chatnoir-cc-main-2020-34.warc.gz").read_bytes()
    fs.pipe(f"/{name}/crawl/one.warc.gz", data)
    fs.pipe(f"/{name}/crawl/deep/two.warc.gz", data)
    fs.pipe(f"/{name}/crawl/notes.txt", b"x")
    yield name, data
    fs.rm(f"/{name}", recursive=True)


def test_uris_go_through_fsspec(bucket):
    name, data = bucket
    one, two = f"memory:///{name}/crawl/one.warc.gz", f"memory:///{name}/crawl/deep/two.warc.gz"
    assert expand_inputs([f"memory://{name}/crawl/*.warc.gz"]) == [one]
    assert expand_inputs([f"memory://{name}/crawl"]) == [two, one]
    assert expand_inputs(
        [f"memory://{name}/crawl/**/*.warc.gz", f"memory://{name}/crawl/one.warc.gz"]
    ) == [
        two,
        one,
    ]
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs([f"memory://{name}/nope.warc.gz"])
    with pytest.raises(InputError, match="no file system"):
        expand_inputs(["nosuchscheme://bucket/x.warc.gz"])
    assert file_size(one) == len(data)
    with open_binary(one) as stream:
        stream.seek(940)
        assert stream.read(2) == b"\x1f\x8b"
    assert read_file(one, 5_000_000).num_rows == 50


def test_local_open_and_size():
    path = str(SAMPLE / "chatnoir-cc-main-2020-34.warc.gz")
    assert file_size(path) == 135_896
    with open_binary(path) as stream:
        assert stream.seekable() and stream.read(2) == b"\x1f\x8b"


def test_atomic_write_bytes(tmp_path):
    target = tmp_path / "out" / "manifest.json"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.json"]


def test_atomic_path_renames_on_success_only(tmp_path):
    target = tmp_path / "shard-00000.arrow"
    with atomic_path(target) as temp:
        assert Path(temp).parent == tmp_path and temp.endswith("shard-00000.arrow")
        Path(temp).write_bytes(b"complete")
        assert not target.exists()  # nobody sees a half-written file under the final name
    assert target.read_bytes() == b"complete"

    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        Path(temp).write_bytes(b"half")
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["shard-00000.arrow"]
