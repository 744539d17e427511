"""Where mqc keeps its files. Environment variables override paths only, never behaviour."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

APP = "mqc"


def _dir(env: str, default: str, *, check: bool = True) -> Path:
    value = os.environ.get(env)
    if not value:
        return Path(default)
    path = Path(value).expanduser()
    if check:
        _check_dir_variable(env, path)
    return path


def _check_dir_variable(env: str, path: Path) -> None:
    """A directory variable that leads through a regular file can never work: say so up front (reads
    would otherwise find an "empty" catalog, writes fail deep inside a command)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                from mqc.core.errors import ConfigError

                where = "is a file" if p == path else f"passes through the file {p}"
                raise ConfigError(
                    f"{env}={os.environ[env]}: the path {where}, not a directory",
                    hint=f"set {env} to a directory (it is created when missing), or unset it",
                )
            return


def config_dir() -> Path:
    """User config dir (profiles live in ``profiles/`` below it). Override: ``MQC_CONFIG_DIR``."""
    import platformdirs

    return _dir("MQC_CONFIG_DIR", platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    """Data dir holding the bar catalog. Override: ``MQC_DATA_DIR``."""
    import platformdirs

    return _dir("MQC_DATA_DIR", platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    """Cache dir (provider downloads, forecast features). Override: ``MQC_CACHE_DIR``."""
    import platformdirs

    return _dir("MQC_CACHE_DIR", platformdirs.user_cache_dir(APP))


def runs_dir() -> Path:
    """Default parent of training and backtest run directories. Override: ``MQC_RUNS_DIR``."""
    return _dir("MQC_RUNS_DIR", str(data_dir() / "runs"))


# The directory variables (the runs dir defaults to a folder of the data dir).
DIR_VARIABLES: tuple[str, ...] = ("MQC_CONFIG_DIR", "MQC_DATA_DIR", "MQC_CACHE_DIR", "MQC_RUNS_DIR")


def _var_dirs() -> dict[str, Path]:
    """The directory behind each variable, unchecked (used while reporting an error about them)."""
    import platformdirs

    data = _dir("MQC_DATA_DIR", platformdirs.user_data_dir(APP), check=False)
    return {
        "MQC_RUNS_DIR": _dir("MQC_RUNS_DIR", str(data / "runs"), check=False),
        "MQC_CACHE_DIR": _dir("MQC_CACHE_DIR", platformdirs.user_cache_dir(APP), check=False),
        "MQC_CONFIG_DIR": _dir("MQC_CONFIG_DIR", platformdirs.user_config_dir(APP), check=False),
        "MQC_DATA_DIR": data,
    }


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def variable_for(path: str | os.PathLike[str]) -> str | None:
    """The ``MQC_*_DIR`` variable behind ``path``: the most specific directory holding it, else (for a
    parent of the directories, e.g. one that cannot be created) a variable the environment sets."""
    target = _absolute(path)
    roots = {name: _absolute(root) for name, root in _var_dirs().items()}
    holding = [name for name, root in roots.items() if target.is_relative_to(root)]
    if holding:
        return max(holding, key=lambda name: len(roots[name].parts))
    above = [name for name, root in roots.items() if root.is_relative_to(target)]
    # a variable the user set beats one derived from it (the runs dir lies below the data dir)
    above.sort(key=lambda name: (name not in os.environ, len(roots[name].parts)))
    return above[0] if above else None


def is_root_or_above(path: str | os.PathLike[str], variable: str) -> bool:
    """True when ``path`` is the directory of ``variable`` itself or one of its parents."""
    return _absolute(_var_dirs()[variable]).is_relative_to(_absolute(path))


def profiles_dir() -> Path:
    return config_dir() / "profiles"


def utc_stamp() -> str:
    """The current UTC time as every run and report folder is named: ``20261122T021400Z``."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _stamped(parent: Path, suffix: str) -> Iterator[Path]:
    stamp = utc_stamp()
    for i in range(10_000):
        yield parent / f"{stamp if i == 0 else f'{stamp}-{i}'}{suffix}"
    raise FileExistsError(f"no free name for {stamp}{suffix} under {parent}")  # pragma: no cover


def fresh_name(parent: Path, suffix: str = "") -> Path:
    """``parent/<utc_stamp><suffix>``, or with ``-1``, ``-2``, ... before the suffix when taken (for a
    file written atomically later; folders use ``new_dir``)."""
    return next(p for p in _stamped(parent, suffix) if not p.exists())


def new_dir(parent: Path) -> Path:
    """Create ``parent/<utc_stamp>`` (``-1``, ``-2``, ... when taken) exclusively: two runs started in
    the same second never share a folder."""
    for path in _stamped(parent, ""):
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")  # pragma: no cover
