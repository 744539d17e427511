"""Atomic file writes: write a sibling temp file, fsync, then ``os.replace`` over the target.

A crash at any point leaves either the old file or the new one, never a torn mix. Files get the
usual permissions (0666 less the umask), like any file the user creates, so a team can share them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
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
def staged_file(
    directory: str | os.PathLike[str], name: str = "staged", *, target: str | os.PathLike[str] | None = None
) -> Iterator[StagedFile]:
    """Yield a temp file in ``directory`` to write now and name later with ``StagedFile.commit``.

    Content-addressed files are named by a hash that can be computed while the file is written;
    the file only appears under its name once complete and fsynced. Without a commit (an error, or
    the caller deciding to keep the file it already has) the temp file is deleted. An error names
    ``target`` when given (the file the user knows), else ``directory``, never the temp file.
    """
    directory = Path(directory)
    shown = Path(target) if target is not None else directory
    with _named_os_errors(shown, temps=True):
        directory.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(directory, f".{name}.", ".tmp")
    staged = StagedFile(tmp)
    try:
        with _named_os_errors(shown, temps=True):
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
    with staged_file(target.parent, target.name, target=target) as staged:
        yield staged.path
        staged.commit(target)


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike[str], *, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty temp folder beside ``target`` to write a set of files into; all or nothing.

    On success every file moves into ``target`` (created when missing; the whole folder is renamed
    when ``target`` is missing or empty), those named in ``last`` last, each by an atomic rename
    that needs no space: a file of ``target`` is replaced only once every new file is complete.
    On any error the temp folder is deleted, ``target`` is left as it was (a folder this call
    created is removed), and a file-system refusal names ``target``, never the temp folder.
    """
    from mqc.core.errors import StorageError, storage_error

    target = Path(target)
    existed = target.exists()
    stage: Path | None = None
    try:
        with _named_os_errors(target, temps=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(100):
                stage = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
                try:
                    stage.mkdir()
                    break
                except FileExistsError:
                    continue
            yield stage
            names = sorted(
                (p.name for p in stage.iterdir()), key=lambda n: (n in last, last.index(n) if n in last else 0)
            )
            if not target.exists() or (target.is_dir() and not any(target.iterdir())):
                os.replace(stage, target)
            else:
                for name in names:
                    os.replace(stage / name, target / name)
                stage.rmdir()
            stage = None
            _fsync_dir(target)
            _fsync_dir(target.parent)
    except StorageError as exc:
        # A write inside the temp folder names it; name the folder the user asked for instead.
        code = getattr(exc, "errno", None)
        named = storage_error(OSError(code, os.strerror(code)), target) if code else None
        if named is None or named is exc:
            raise
        raise named from exc
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
            if not existed:
                with contextlib.suppress(OSError):
                    target.rmdir()  # only when empty: a folder this call made for nothing


@contextlib.contextmanager
def _named_os_errors(path: Path, *, temps: bool = False) -> Iterator[None]:
    """A full disk, a refused permission, ... while writing under ``path`` becomes a StorageError
    naming it (the OS names no file for a failed ``write``); other errors pass unchanged, except that
    any failure on a file system with (almost) no space left is reported as the full disk it is:
    some writers hide ENOSPC (``torch.save``: "RuntimeError: ... unexpected pos 576 vs 534").
    With ``temps``, an error the OS raised on one of our temp files names ``path`` instead."""
    from mqc.core.errors import MqcError, storage_error, temp_target

    try:
        yield
    except OSError as exc:
        named = exc
        if temps and any(temp_target(f) is not None for f in (exc.filename, exc.filename2) if f is not None):
            named = OSError(exc.errno, exc.strerror)  # no file name: storage_error names ``path``
        err = storage_error(named, path)
        if err is None or err is exc:
            raise
        raise err from exc
    except Exception as exc:
        if isinstance(exc, MqcError) or not _almost_full(path):
            raise
        raise storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path) from exc  # type: ignore[misc]


_FULL_BELOW = 4 << 20  # bytes free under which a failed write is taken for a full disk


def _almost_full(path: Path) -> bool:
    for p in (path, *path.parents):
        if p.exists():
            try:
                st = os.statvfs(p)
            except (OSError, AttributeError):  # pragma: no cover - e.g. Windows
                return False
            return st.f_bavail * st.f_frsize < _FULL_BELOW
    return False  # pragma: no cover


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
    """Write ``obj`` as strict JSON (see ``dumps``) atomically."""
    write_text(target, dumps(obj, indent=indent) + "\n")


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``obj``: NaN and +-inf become ``null`` (``json.dumps`` would write bare
    ``NaN``/``Infinity`` tokens, which JSON parsers other than Python's reject); numpy values, paths
    and datetimes as in ``_json_default``. Every JSON file and ``--json`` output goes through it."""
    return json.dumps(_finite(obj), indent=indent, sort_keys=False, default=_json_default, allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return _finite(obj.tolist())
    return obj


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
    with _named_os_errors(target), open(_parent_made(target), "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _parent_made(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
