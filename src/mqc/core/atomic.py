"""Atomic file writes: write a sibling temp file, fsync, then ``os.replace`` over the target.

A crash at any point leaves either the old file or the new one, never a torn mix. Files get the
usual permissions (0666 less the umask), like any file the user creates, so a team can share them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class StagedFile:
    """A temp file written before its final name is known (see ``staged_file``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.committed: Path | None = None

    def commit(self, target: str | os.PathLike[str]) -> Path:
        """fsync the temp file, move it over ``target`` (same folder) atomically, fsync the folder."""
        target = Path(target)
        if target.parent.resolve() != self.path.parent.resolve():
            raise ValueError(f"{target}: a staged file can only be committed inside {self.path.parent}")
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.path, target)
        _fsync_dir(target.parent)
        self.committed = target
        return target


@contextlib.contextmanager
def staged_file(directory: str | os.PathLike[str], name: str = "staged") -> Iterator[StagedFile]:
    """Yield a temp file in ``directory`` to write now and name later with ``StagedFile.commit``.

    Content-addressed files are named by a hash that can be computed while the file is written;
    the file only appears under its name once complete and fsynced. Without a commit (an error, or
    the caller deciding to keep the file it already has) the temp file is deleted.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staged = StagedFile(_create_temp(directory, f".{name}.", ".tmp"))
    try:
        yield staged
    finally:
        if staged.committed is None:
            staged.path.unlink(missing_ok=True)


def _create_temp(directory: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file ``<prefix><random><suffix>`` in ``directory`` with mode 0666 less the
    umask (``tempfile.mkstemp`` would make it 0600, and the rename would keep that)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"{directory}: no free temp file name after 100 tries")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success move it over ``target`` atomically."""
    target = Path(target)
    with staged_file(target.parent, target.name) as staged:
        yield staged.path
        staged.commit(target)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    write_text(target, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def append_line(target: str | os.PathLike[str], line: str) -> None:
    """Append one line and fsync: used for jsonl logs and ledgers, where a torn last line is skipped."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())
