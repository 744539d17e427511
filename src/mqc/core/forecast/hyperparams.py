"""Per-symbol forecast settings: ``<dir>/<model>/<SYMBOL>.json`` and ``<dir>/best/<SYMBOL>.json``.

Lookup order (first hit wins): ``forecast.hyperparams_dir`` (``--hyperparams-dir``) when set, else
the user dir ``<user config dir>/mqc/hyperparams`` and then the defaults shipped in the repository's
``hyperparams/``. ``tune`` and ``select`` write to ``--hyperparams-dir`` or the user dir, never
silently into the repository.

File layout (validated on load; unknown keys are errors with a "did you mean")::

    {"symbol": "AAPL", "model": "chronos2",
     "config": {ForecastConfig fields: model_id, context_length, prediction_length, quantile_levels, ...},
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
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}", hint="fix the file or delete it to use defaults") from exc
    hp = validate(data, str(path))
    hp.path = path
    return hp


def find(kind: str, symbol: str, hyperparams_dir: str | None) -> Hyperparams | None:
    """The first ``<dir>/<kind>/<SYMBOL>.json`` along the lookup order, validated; None when absent."""
    for d in search_dirs(hyperparams_dir):
        p = d / kind / f"{symbol.upper()}.json"
        if p.is_file():
            return load(p)
    return None


def save(hp: Hyperparams, kind: str, hyperparams_dir: str | None) -> Path:
    """Validate and atomically write ``hp`` to ``<write dir>/<kind>/<SYMBOL>.json``."""
    validate(json.loads(json.dumps(hp.to_dict(), default=atomic._json_default)), f"{kind}/{hp.symbol}.json")
    path = write_dir(hyperparams_dir) / kind / f"{hp.symbol.upper()}.json"
    atomic.write_json(path, hp.to_dict())
    return path


def stored_config(cfg: ForecastConfig) -> dict[str, Any]:
    """The ``config`` section for ``cfg``: every field but the model name and the lookup dir."""
    return {k: v for k, v in config.to_dict(cfg).items() if k not in ("model", "hyperparams_dir")}
