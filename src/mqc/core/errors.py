"""Typed errors raised by the mqc library.

Every error carries an optional ``hint``: the command or change that fixes it. The CLI prints the
message as one red line and the hint beneath it; nothing else in core formats errors for a terminal.
"""

from __future__ import annotations


class MqcError(Exception):
    """Base class of every domain error mqc raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(MqcError, ValueError):
    """A configuration value, profile or hyperparameter file is invalid."""


class DataError(MqcError, ValueError):
    """Market data is missing, malformed or inconsistent."""


class ArtifactNotFound(MqcError, FileNotFoundError):
    """A file the user pointed at (checkpoint, run directory, model weights, profile) does not exist."""


class CheckpointError(MqcError, ValueError):
    """A checkpoint exists but cannot be used (corrupted, other version, other data)."""


class DependencyMissing(MqcError, ImportError):
    """An optional dependency is not installed; the hint names the extra that provides it."""


def require(module: str, extra: str):
    """Import an optional dependency or raise DependencyMissing naming the mqc extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyMissing(
            f"optional dependency {module!r} is not installed",
            hint=f"pip install 'mqc[{extra}]'",
        ) from exc
