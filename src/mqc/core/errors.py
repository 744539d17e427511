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


class UsageError(ConfigError):
    """A value given on the command line is invalid. The CLI exits with 2 for it, as for its own
    option errors; the same value from a profile or the environment stays a ``ConfigError`` (1)."""


class DataError(MqcError, ValueError):
    """Market data is missing, malformed or inconsistent."""


class ArtifactNotFound(MqcError, FileNotFoundError):
    """A file the user pointed at (checkpoint, run directory, model weights, profile) does not exist."""


class CheckpointError(MqcError, ValueError):
    """A checkpoint exists but cannot be used (corrupted, other version, other data)."""


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
        raise DependencyMissing(f"optional dependency {module!r} is not installed", hint=install_hint(module, extra, package)) from exc
