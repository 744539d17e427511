"""Typed errors raised by the mqc library.

Every error carries an optional ``hint``: the command or change that fixes it. The CLI prints the
message as one red line and the hint beneath it; nothing else in core formats errors for a terminal.
"""

from __future__ import annotations

import errno as _errno
import os
import re
from pathlib import Path


class MqcError(Exception):
    """Base class of every domain error mqc raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(MqcError, ValueError):
    """A configuration value, profile or hyperparameter file is invalid."""


class UsageError(ConfigError):
    """A value given on the command line is invalid. The CLI exits with 2 for it, as for its own
    option errors; the same value from a profile or the environment stays a ``ConfigError`` (1)."""


class DataError(MqcError, ValueError):
    """Market data is missing, malformed or inconsistent."""


class ArtifactNotFound(MqcError, FileNotFoundError):
    """A file the user pointed at (checkpoint, run directory, model weights, profile) does not exist."""


class CheckpointError(MqcError, ValueError):
    """A checkpoint exists but cannot be used (corrupted, other version, other data)."""


class LedgerError(MqcError, ValueError):
    """A trading ledger is corrupt, of another version, or belongs to another broker or run."""


class BrokerError(MqcError, RuntimeError):
    """A broker refused a request or could not be reached (after the retries); ``retryable`` says
    whether trying again later may succeed (outage, rate limit) or not (bad keys, unknown symbol)."""

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class DependencyMissing(MqcError, ImportError):
    """An optional dependency is not installed; the hint names the extra that provides it."""


# Import name -> PyPI package, where they differ. ("mqc" on PyPI is an unrelated project, so hints
# name the real packages, and the extra only as an editable install from the mqc checkout.)
_PACKAGES = {"chronos": "chronos-forecasting", "safetensors.torch": "safetensors", "huggingface_hub": "huggingface_hub"}


def install_hint(module: str, extra: str, package: str | None = None) -> str:
    """The pip command that provides ``module``: its package, or the mqc extra from a source checkout."""
    pkg = package or _PACKAGES.get(module, module.split(".")[0])
    return f'pip install {pkg}  (or from the mqc checkout: pip install -e ".[{extra}]")'


def require(module: str, extra: str, package: str | None = None):
    """Import an optional dependency or raise DependencyMissing naming the package to install.

    Args:
        module: import name (``yfinance``, ``safetensors.torch``).
        extra: the mqc extra that lists it (for a source install).
        package: the PyPI name when it differs from the import name and is not in the built-in table.

    Raises:
        DependencyMissing: the import failed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyMissing(
            f"optional dependency {module!r} is not installed", hint=install_hint(module, extra, package)
        ) from exc


class StorageError(MqcError, OSError):
    """The file system refused a read or write that the user can fix: disk full, quota, permission,
    read-only file system, too many open files, a path through a regular file."""


# errno -> (what happened, the fix, the way around it: another directory). "{var}" is the MQC_*_DIR
# variable behind the path; without one the way around is phrased without it (or left out).
_STORAGE_ERRNOS: dict[int, tuple[str, str, str]] = {
    _errno.ENOSPC: (
        "no space left on device",
        "free space on that file system",
        "set {var} to a directory on another disk",
    ),
    _errno.EDQUOT: ("disk quota exceeded", "free space within your quota", "set {var} to a directory on another disk"),
    _errno.EACCES: (
        "permission denied",
        "check its permissions for this user (ls -ld, chmod/chown)",
        "set {var} to a directory you can write",
    ),
    _errno.EPERM: (
        "operation not permitted",
        "check its permissions for this user (ls -ld, chmod/chown)",
        "set {var} to a directory you can write",
    ),
    _errno.EROFS: (
        "read-only file system",
        "write to a writable file system",
        "set {var} to a directory on a writable file system",
    ),
    _errno.ENOTDIR: (
        "a part of the path is a file, not a directory",
        "use a path that does not pass through a file",
        "set {var} to such a directory",
    ),
    _errno.EMFILE: ("too many open files", "raise the open-file limit (e.g. ulimit -n 4096) and rerun", ""),
    _errno.ENFILE: (
        "too many open files in the system",
        "close other programs or raise the system's open-file limit, then rerun",
        "",
    ),
}
# Only about the directory an MQC_*_DIR variable names (or a parent of it): it cannot be made there.
_ROOT_ERRNOS: dict[int, tuple[str, str, str]] = {
    _errno.ENOENT: ("cannot be created here", "", "set {var} to a directory that exists or can be created"),
    _errno.EEXIST: ("exists and is not a directory", "remove that file", "set {var} to a directory"),
}


# ``atomic`` writes ``.<target name>.<random>.tmp`` beside the target, then renames it (random: 8 hex
# digits; tempfile's 8 of [a-z0-9_] in files left by older versions).
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-z_]{8}\.tmp$")


def temp_target(filename: str | os.PathLike[str] | bytes) -> Path | None:
    """The file an ``atomic`` temp file stands for (``.XOM.1d.json.obr585m7.tmp`` -> ``XOM.1d.json``
    beside it), or None when ``filename`` is no such temp file."""
    if isinstance(filename, bytes):
        filename = os.fsdecode(filename)
    p = Path(filename)
    m = _TEMP_NAME.match(p.name)
    return p.with_name(m.group("name")) if m else None


def storage_error(exc: OSError, path: str | os.PathLike[str] | None = None) -> StorageError | None:
    """``exc`` as a StorageError naming the file and the fix, or None when it is not the user's to fix.

    Args:
        exc: the error the operating system raised.
        path: the file or directory being written, when ``exc`` does not name one (a full disk on
            ``write`` has no file name).

    Returns:
        The StorageError to raise (``raise err from exc``), or None for any other OSError.
    """
    if isinstance(exc, StorageError):
        return exc
    from mqc.core import paths

    where = exc.filename if exc.filename is not None else path
    if where is not None and (target := temp_target(where)) is not None:
        where = target  # the file the user knows, not the temp file written beside it
    variable = paths.variable_for(where) if where is not None else None
    table = _STORAGE_ERRNOS
    if exc.errno in _ROOT_ERRNOS and variable is not None and paths.is_root_or_above(where, variable):
        table = _ROOT_ERRNOS
    if exc.errno not in table:
        return None
    what, fix, around = table[exc.errno]
    message = f"{where}: {what}" if where is not None else what
    if variable:
        message += f" ({variable}={os.environ[variable]})" if variable in os.environ else f" (the {variable} directory)"
    hint = ", or ".join(part for part in (fix, around.format(var=variable) if variable and around else "") if part)
    err = StorageError(message, hint=hint)
    err.errno = exc.errno  # (not strerror/filename: OSError's str() would then replace the message)
    return err
