"""TOML profiles under ``<user config dir>/mqc/profiles/<name>.toml``: one table per config dataclass."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from mqc.core import atomic, config, paths
from mqc.core.errors import ArtifactNotFound, ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def profile_path(name: str) -> Path:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid profile name {name!r}: use letters, digits, '-', '_' or '.'",
        )
    return paths.profiles_dir() / f"{name}.toml"


def list_profiles() -> list[str]:
    d = paths.profiles_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def read_profile(name: str) -> dict[str, dict[str, Any]]:
    """Load and validate a profile. Unknown tables or keys and wrong types raise ConfigError."""
    path = profile_path(name)
    if not path.is_file():
        raise ArtifactNotFound(
            f"profile {name!r} not found at {path}", hint=f"mqc profile init {name}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint=f"fix or recreate it: mqc profile init {name} --force") from exc
    validate_profile(data, str(path))
    return data


def validate_profile(data: dict[str, Any], where: str) -> None:
    tables = config.known_tables()
    for table, values in data.items():
        if table not in tables:
            raise ConfigError(f"{where}: unknown table [{table}]{config.did_you_mean(table, tables)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{table}] must be a table of key = value")
        config.check_keys(tables[table], values, f"{where} [{table}]")
        types_ = config.field_types(tables[table])
        for key, raw in values.items():
            config.coerce(raw, types_[key], f"{where} [{table}].{key}")


def default_document() -> dict[str, dict[str, Any]]:
    doc: dict[str, dict[str, Any]] = {}
    for table, cls in sorted(config.known_tables().items()):
        obj = cls()
        doc[table] = {k: v for k, v in config.to_dict(obj).items() if v is not None}
    return doc


def write_profile(name: str, data: dict[str, dict[str, Any]]) -> Path:
    import tomli_w

    path = profile_path(name)
    validate_profile(data, str(path))
    atomic.write_text(path, tomli_w.dumps(data))
    return path


def init_profile(name: str, *, force: bool = False) -> Path:
    path = profile_path(name)
    if path.exists() and not force:
        raise ConfigError(f"profile {name!r} already exists at {path}", hint=f"mqc profile init {name} --force")
    return write_profile(name, default_document())


def set_value(name: str, dotted_key: str, raw: str) -> Any:
    """Set ``table.key`` in profile ``name`` from a string, type-checked; returns the stored value."""
    if "." not in dotted_key:
        raise ConfigError(f"key {dotted_key!r} must be TABLE.KEY, e.g. market.cost_bps")
    table, key = dotted_key.split(".", 1)
    tables = config.known_tables()
    if table not in tables:
        raise ConfigError(f"unknown table {table!r}{config.did_you_mean(table, tables)}")
    cls = tables[table]
    config.check_keys(cls, {key: None}, f"[{table}]")
    value = config.coerce(raw, config.field_types(cls)[key], f"{table}.{key}")
    data = read_profile(name) if profile_path(name).exists() else {}
    data.setdefault(table, {})[key] = list(value) if isinstance(value, tuple) else value
    if value is None:
        data[table].pop(key)
    write_profile(name, data)
    return value


def profile_table(name: str | None, cls: type) -> dict[str, Any]:
    """The table for ``cls`` in profile ``name`` (empty when no profile is selected)."""
    if not name:
        return {}
    return dict(read_profile(name).get(config.table_name(cls), {}))


def resolve_with_profile(cls: type, profile_name: str | None, *, hyperparams=None, flags=None):
    """Resolve ``cls`` through the full precedence order using the named profile."""
    return config.resolve(
        cls,
        hyperparams=hyperparams,
        profile=profile_table(profile_name, cls),
        profile_name=profile_name,
        flags=flags,
    )


def describe(cls: type) -> dict[str, str]:
    """Field name -> first line of its documentation (from ``metadata['help']``)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
