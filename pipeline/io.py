"""Input listing and file access: local paths and fsspec URIs, plus atomic writes.

`expand_inputs` turns what the user typed after `--input` (files, directories, globs,
`s3://...` URIs) into one sorted, de-duplicated list of files. The position of a file in
that list is its file index, so the order must not depend on the file system: it is plain
string order. Anything that matches nothing fails here with `InputError`, before any work.

Local paths are opened with `open()`; anything with a `scheme://` goes through fsspec
(`s3://` needs the `s3fs` package, `gs://` needs `gcsfs` ...), so the reader never cares
where a file lives. The runner writes its outputs through `atomic_path`/`atomic_write_bytes`:
a temporary file in the same directory, renamed over the target only once complete, so a
crash never leaves a half-written shard or marker under its final name.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec

# File names the reader understands when it lists a directory or filters a glob. ARC files
# and other compressions (.zst, .lz4) are left out on purpose; a file named explicitly is
# always taken as given.
WARC_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz")  # also covers .warc.wet(.gz)

_GLOB_CHARS = ("*", "?", "[")
TEMP_PREFIX = ".tmp-"  # atomic_path's temporary names; readers skip them (finished_files)


class InputError(ValueError):
    """An input pattern that names no readable WARC/WET file, reported before any work."""


def is_uri(path: str) -> bool:
    """True for `scheme://...` paths that go through fsspec."""
    return "://" in path


def is_warc_name(path: str) -> bool:
    return path.lower().endswith(WARC_SUFFIXES)


def expand_inputs(patterns: list[str]) -> list[str]:
    """Expand files, directories, globs and URIs into a sorted list of unique files.

    A local file is returned exactly as typed (whatever its name); files found through a
    directory or a glob are kept only if their names end in one of WARC_SUFFIXES. URIs
    come back in fsspec's canonical spelling (`fs.unstrip_protocol`), so that a file named
    directly and the same file matched by a glob are one file.
    """
    if not patterns:
        raise InputError("no input given: pass at least one file, directory, glob or URI")
    found: list[str] = []
    for pattern in patterns:
        files = _expand_uri(pattern) if is_uri(pattern) else _expand_local(pattern)
        found.extend(files)
    return _sorted_unique(found)


def _expand_local(pattern: str) -> list[str]:
    if any(char in pattern for char in _GLOB_CHARS):
        matches = sorted(glob.glob(pattern, recursive=True))
        files: list[str] = []
        for match in matches:
            if os.path.isdir(match):
                files.extend(_walk_local_dir(match))
            elif is_warc_name(match):
                files.append(_readable(match))
        if not files:
            if matches:
                what = f"{len(matches)} paths but no *.warc[.gz]/*.wet[.gz] file"
            else:
                what = "nothing"
            raise InputError(f"input {pattern!r} matched {what}")
        return files
    if os.path.isdir(pattern):
        files = _walk_local_dir(pattern)
        if not files:
            raise InputError(f"input directory {pattern!r} holds no *.warc[.gz]/*.wet[.gz] file")
        return files
    if os.path.isfile(pattern):
        return [_readable(pattern)]
    if os.path.islink(pattern):
        _readable(pattern)  # raises: a link to nothing
    raise InputError(f"input {pattern!r} does not exist")


def _readable(path: str) -> str:
    """`path`, once it is known to be a file this process can read; else InputError, so a
    run stops before any work rather than at the file, after Ray has started."""
    if os.path.islink(path) and not os.path.exists(path):
        raise InputError(
            f"input file {path!r} is a symbolic link to {os.readlink(path)!r}, which does not exist"
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"input file {path!r} is not readable")
    return path


def _walk_local_dir(directory: str) -> list[str]:
    def fail(error: OSError) -> None:
        raise InputError(f"cannot list input directory {error.filename!r}: {error.strerror}")

    # os.walk silently skips a top directory it cannot open unless told to fail.
    if not os.access(directory, os.R_OK | os.X_OK):
        raise InputError(f"cannot list input directory {directory!r}: permission denied")
    files = []
    for root, _dirs, names in os.walk(directory, onerror=fail):
        files.extend(_readable(os.path.join(root, name)) for name in names if is_warc_name(name))
    return files


def _expand_uri(pattern: str) -> list[str]:
    try:
        fs, path = fsspec.core.url_to_fs(pattern)
    except (ImportError, ValueError) as exc:
        raise InputError(f"input {pattern!r}: no file system for this URI ({exc})") from None
    try:
        if any(char in path for char in _GLOB_CHARS):
            matches = sorted(fs.glob(path))
            files = []
            for match in matches:
                if fs.isdir(match):
                    files.extend(p for p in fs.find(match) if is_warc_name(p))
                elif is_warc_name(match):
                    files.append(match)
            if not files:
                raise InputError(f"input {pattern!r} matched no *.warc[.gz]/*.wet[.gz] file")
            return [fs.unstrip_protocol(p) for p in files]
        if fs.isdir(path):
            files = [p for p in fs.find(path) if is_warc_name(p)]
            if not files:
                raise InputError(f"input {pattern!r} holds no *.warc[.gz]/*.wet[.gz] file")
            return [fs.unstrip_protocol(p) for p in files]
        if fs.isfile(path):
            return [fs.unstrip_protocol(path)]  # one spelling per file, as globs return it
    except OSError as exc:
        raise InputError(f"input {pattern!r}: {exc}") from None
    raise InputError(f"input {pattern!r} does not exist")


def _sorted_unique(paths: list[str]) -> list[str]:
    """Sort by string; the same file reached twice ('a/x.warc', './a/x.warc') counts once,
    under the spelling met first (patterns in the order given)."""
    by_identity: dict[str, str] = {}
    for path in paths:
        identity = path if is_uri(path) else os.path.realpath(path)
        by_identity.setdefault(identity, path)
    return sorted(by_identity.values())


def open_binary(uri: str) -> BinaryIO:
    """Open a local path or fsspec URI for seekable binary reading. Close it when done."""
    if not is_uri(uri):
        return open(uri, "rb")  # noqa: SIM115 (the caller owns the handle)
    fs, path = fsspec.core.url_to_fs(uri)
    return fs.open(path, "rb")


def file_size(uri: str) -> int:
    if not is_uri(uri):
        return os.path.getsize(uri)
    fs, path = fsspec.core.url_to_fs(uri)
    return int(fs.size(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to `path`; rename it over `path` if the block succeeds.

    The temporary name is hidden (leading dot) and ends with the target's own name, so
    tools that look at the extension still see it. On an exception it is removed.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
    try:
        yield temp
        os.replace(temp, path)  # atomic on POSIX when both names are in one directory
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise


def write_problem(path: Path, exc: OSError) -> str:
    """Why `path` (or a directory above it) could not be created or written, on one line:
    the file standing where a directory is needed, else the OS's reason."""
    for parent in (path, *path.parents):
        if parent.exists():
            if parent != path and not parent.is_dir():
                return f"{parent} is not a directory"
            break
    return f"{exc.strerror or exc}: {exc.filename or path}"


def finished_files(directory: str | os.PathLike, pattern: str) -> list[Path]:
    """The files in `directory` matching `pattern`, sorted, without atomic_path's temp
    files: a process killed inside atomic_path leaves a `.tmp-*` file (often 0 bytes)
    that glob("*.parquet") would otherwise hand to a reader as if it were complete."""
    return sorted(p for p in Path(directory).glob(pattern) if not p.name.startswith(TEMP_PREFIX))


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None):
    """One Parquet file (a part, a side table) as a pyarrow Table, `columns` only if given.

    Not `pq.read_table`: that goes through pyarrow.dataset, whose import pulls in pandas,
    0.15-0.2 s at the first read in every process (the driver's dedup phase, each worker
    that reads the drops of the dedup before extraction, each dedup task's process). A
    single file needs none of it; the table is the same."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        return parquet.read(columns=columns)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so readers see either the old file or all of the new one."""
    with atomic_path(path) as temp, open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def crash_point(name: str) -> None:
    """Fault injection for the resume tests: SIGKILL this process when CRAWLMILL_CRASH_AT
    names this point. The tests kill real processes at moments too brief to hit from
    outside (the write phase takes well under a second on the sample; a dedup round a few
    hundred milliseconds). Points: `write_phase:shards`, `write_phase:manifest`,
    `dedup:round:<name>` (after each round of the global dedup step), `dedup_pre:round:<name>`
    and `dedup_pre:done` (dedup/pre.py), `documents:chunk` (a worker actor, as it starts a
    chunk) and `documents:chunk:F-C` (only on chunk C of file F).
    With CRAWLMILL_CRASH_ONCE=PATH only the first process to get there dies (it creates
    PATH). Here, not in the runner, so dedup can fire it without importing the runner."""
    if os.environ.get("CRAWLMILL_CRASH_AT") != name:
        return
    once = os.environ.get("CRAWLMILL_CRASH_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # somebody already died here
    os.kill(os.getpid(), signal.SIGKILL)
