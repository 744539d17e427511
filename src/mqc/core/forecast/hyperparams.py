"""Per-symbol, per-bar-size forecast settings: ``<dir>/<model>/<SYMBOL>.<tf>.json`` and
``<dir>/best/<SYMBOL>.<tf>.json``.

A file applies to one symbol at one bar size (``AAPL.1d.json``, ``SOLUSDT.1h.json``; the label is the
canonical one, ``1h`` not ``60m``): settings tuned on daily bars never reach an hourly forecast.
Files of the old layout, ``<SYMBOL>.json``, are still read, for the bar size in their
``config.timeframe`` (``1d`` when they have none, the default they were written for) and no other;
in one directory a ``<SYMBOL>.<tf>.json`` wins over them. ``tune`` and ``select`` write the new layout.

Lookup order (first hit wins): ``forecast.hyperparams_dir`` (``--hyperparams-dir``) when set, else
the user dir ``<user config dir>/mqc/hyperparams`` and then the defaults shipped in the repository's
``hyperparams/``. ``tune`` and ``select`` write to ``--hyperparams-dir`` or the user dir, never
silently into the repository.

File layout (validated on load; unknown keys are errors with a "did you mean")::

    {"symbol": "AAPL", "model": "chronos2",
     "config": {ForecastConfig fields: timeframe, model_id, context_length, prediction_length, ...},
     "validation": {...}, "test": {...}, "windows": {...}, "metadata": {...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mqc.core import atomic, config, paths
from mqc.core.errors import ConfigError
from mqc.core.forecast.config import ForecastConfig

# The bar size an old-layout file without ``config.timeframe`` was written for (ForecastConfig's default).
LEGACY_TIMEFRAME = "1d"

SECTIONS = ("symbol", "model", "config", "validation", "test", "windows", "metadata")
REQUIRED = ("symbol", "model", "config")
BEST = "best"


@dataclass
class Hyperparams:
    symbol: str
    model: str
    config: dict[str, Any]
    validation: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def timeframe(self) -> str:
        """The canonical bar size this file applies to (``config.timeframe``; old files without it: 1d)."""
        return canonical_timeframe(self.config.get("timeframe") or LEGACY_TIMEFRAME)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SECTIONS}


def shipped_dir() -> Path | None:
    """The repository's ``hyperparams/`` (present in a source checkout, absent in a wheel install)."""
    d = Path(__file__).resolve().parents[4] / "hyperparams"
    return d if d.is_dir() else None


def user_dir() -> Path:
    return paths.config_dir() / "hyperparams"


def search_dirs(hyperparams_dir: str | None) -> list[Path]:
    if hyperparams_dir:
        return [Path(hyperparams_dir).expanduser()]
    shipped = shipped_dir()
    return [user_dir(), *([shipped] if shipped else [])]


def write_dir(hyperparams_dir: str | None) -> Path:
    return Path(hyperparams_dir).expanduser() if hyperparams_dir else user_dir()


def canonical_timeframe(label: str) -> str:
    """``60m`` -> ``1h``, ``daily`` -> ``1d``: one file name per bar size.

    Raises:
        DataError: not a bar size.
    """
    from mqc.core.data.timeframe import normalise_timeframe

    return normalise_timeframe(label)


def file_name(symbol: str, timeframe: str) -> str:
    """``AAPL``, ``1h`` -> ``AAPL.1h.json``."""
    return f"{symbol.upper()}.{canonical_timeframe(timeframe)}.json"


def validate(data: Any, where: str) -> Hyperparams:
    """Check a parsed hyperparams document; errors name the file and the key.

    Raises:
        ConfigError: missing/unknown sections, wrong types, unknown or ill-typed config keys.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object with keys {', '.join(SECTIONS)}")
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(f"{where}: unknown key {key!r}{config.did_you_mean(key, SECTIONS)}")
    for key in REQUIRED:
        if key not in data:
            raise ConfigError(f"{where}: missing key {key!r}", hint=f"a hyperparams file needs {', '.join(REQUIRED)}")
    for key in ("symbol", "model"):
        if not isinstance(data[key], str) or not data[key]:
            raise ConfigError(f"{where}: {key!r} must be a non-empty string, got {data[key]!r}")
    for key in ("config", "validation", "test", "windows", "metadata"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{where}: {key!r} must be an object, got {type(data[key]).__name__}")
    cfg = dict(data["config"])
    config.check_keys(ForecastConfig, cfg, f"{where}: config")
    types_ = config.field_types(ForecastConfig)
    for key, raw in cfg.items():
        config.coerce(raw, types_[key], f"{where}: config.{key}")
    try:
        config.from_dict(ForecastConfig, {**cfg, "model": data["model"]}, f"{where}: config")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return Hyperparams(
        symbol=data["symbol"].upper(),
        model=data["model"],
        config=cfg,
        validation=data.get("validation", {}),
        test=data.get("test", {}),
        windows=data.get("windows", {}),
        metadata=data.get("metadata", {}),
    )


def load(path: str | Path) -> Hyperparams:
    """Read and validate one hyperparams file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}", hint="fix the file or delete it to use defaults"
        ) from exc
    hp = validate(data, str(path))
    hp.path = path
    return hp


def find(kind: str, symbol: str, timeframe: str, hyperparams_dir: str | None) -> Hyperparams | None:
    """The file for ``symbol`` at ``timeframe`` along the lookup order, validated; None when absent.

    In each directory ``<kind>/<SYMBOL>.<tf>.json`` comes first, then an old-layout
    ``<kind>/<SYMBOL>.json`` whose bar size (``config.timeframe``, else 1d) is ``timeframe``.

    Raises:
        ConfigError: a malformed file, or a ``<SYMBOL>.<tf>.json`` whose ``config.timeframe`` is another bar size.
    """
    tf = canonical_timeframe(timeframe)
    for d in search_dirs(hyperparams_dir):
        p = d / kind / file_name(symbol, tf)
        if p.is_file():
            hp = load(p)
            if hp.timeframe != tf:
                raise ConfigError(
                    f"{p}: config.timeframe is {hp.config.get('timeframe')!r}, but the file name says {tf}",
                    hint=f'set "timeframe": "{tf}" in its config, or rename it to {file_name(symbol, hp.timeframe)}',
                )
            return hp
        legacy = d / kind / f"{symbol.upper()}.json"
        if legacy.is_file():
            hp = load(legacy)
            if hp.timeframe == tf:
                return hp
    return None


def save(hp: Hyperparams, kind: str, hyperparams_dir: str | None) -> Path:
    """Validate and atomically write ``hp`` to ``<write dir>/<kind>/<SYMBOL>.<tf>.json`` (tf:
    ``hp.config['timeframe']``).

    Raises:
        ConfigError: ``hp`` is not a valid hyperparams document, or its config names no timeframe.
    """
    if not hp.config.get("timeframe"):
        raise ConfigError(f"{kind}/{hp.symbol}: the config names no timeframe, so the file would apply to no bar size")
    name = file_name(hp.symbol, hp.config["timeframe"])
    validate(json.loads(json.dumps(hp.to_dict(), default=atomic._json_default)), f"{kind}/{name}")
    path = write_dir(hyperparams_dir) / kind / name
    atomic.write_json(path, hp.to_dict())
    return path


def stored_config(cfg: ForecastConfig) -> dict[str, Any]:
    """The ``config`` section for ``cfg``: every field but the model name and the lookup dir."""
    return {k: v for k, v in config.to_dict(cfg).items() if k not in ("model", "hyperparams_dir")}
