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


def require_profile(name: str) -> Path:
    """The path of profile ``name``, which must exist.

    Raises:
        ArtifactNotFound: no such profile (with a "did you mean" among the existing ones).
    """
    path = profile_path(name)
    if not path.is_file():
        have = list_profiles()
        listing = f"; profiles: {', '.join(have)}" if have else "; there are no profiles yet"
        raise ArtifactNotFound(
            f"profile {name!r} not found at {path}{config.did_you_mean(name, have)}{listing}",
            hint=f"check --profile / MQC_PROFILE, or create it: mqc profile init {name}",
        )
    return path


def list_profiles() -> list[str]:
    d = paths.profiles_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def read_profile(name: str) -> dict[str, dict[str, Any]]:
    """Load and validate a profile. Unknown tables or keys and wrong types raise ConfigError."""
    path = profile_path(name)
    if not path.is_file():
        raise ArtifactNotFound(f"profile {name!r} not found at {path}", hint=f"mqc profile init {name}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid TOML: {exc}", hint=f"fix or recreate it: mqc profile init {name} --force"
        ) from exc
    validate_profile(data, str(path))
    return data


def validate_profile(data: dict[str, Any], where: str) -> None:
    """Check every table and key; an old table name (``[train]`` for ``[dm]``) is accepted, but not
    beside its current name."""
    tables = config.known_tables()
    old = config.old_table_names()
    for table, values in data.items():
        current = old.get(table, table)
        if current not in tables:
            raise ConfigError(f"{where}: unknown table [{table}]{config.did_you_mean(table, tables)}")
        if current != table and current in data:
            raise ConfigError(
                f"{where}: both [{current}] and [{table}] (its old name) are present",
                hint=f"move the keys of [{table}] into [{current}] and delete [{table}]",
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{table}] must be a table of key = value")
        config.check_keys(tables[current], values, f"{where} [{table}]")
        types_ = config.field_types(tables[current])
        for key, raw in values.items():
            config.coerce(raw, types_[key], f"{where} [{table}].{key}")


def render_profile(data: dict[str, dict[str, Any]]) -> str:
    """TOML text of a profile: every known table and key, with its help as a comment.

    Keys present in ``data`` are written as values; the rest appear commented out with their
    defaults, so a fresh profile documents every setting without pinning any of them (a value
    that is only a default keeps reporting ``default`` as its source, and follows mqc's defaults).
    """
    import dataclasses

    import tomli_w

    lines = [
        "# mqc profile: uncomment a key to set it. Precedence: defaults < hyperparams < profile",
        "# < MQC_<TABLE>_<FIELD> environment < command-line flags. `mqc profile show` prints the result.",
        "",
    ]
    tables = config.known_tables()
    for table in [*sorted(tables), *sorted(set(data) - set(tables))]:
        cls = tables.get(table)
        values = data.get(table, {})
        lines.append(f"[{table}]")
        if cls is not None and cls.__doc__:
            lines.append(f"# {cls.__doc__.strip().splitlines()[0]}")
        fields = dataclasses.fields(cls) if cls is not None else []
        for f in fields:
            help_ = f.metadata.get("help")
            if f.name in values:
                lines.append(_toml_line(tomli_w, f.name, values[f.name]) + (f"  # {help_}" if help_ else ""))
            else:
                default = getattr(cls(), f.name)
                shown = (
                    _toml_line(tomli_w, f.name, list(default) if isinstance(default, tuple) else default)
                    if default is not None
                    else f"{f.name} = ..."
                )
                lines.append(f"# {shown}" + (f"  # {help_}" if help_ else ""))
        lines.append("")
    return "\n".join(lines)


def _toml_line(tomli_w: Any, key: str, value: Any) -> str:
    """``key = value`` on one line (tomli_w would spread arrays over several lines)."""
    return f"{key} = {_toml_value(tomli_w, value)}"


def _toml_value(tomli_w: Any, value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(tomli_w, v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip()[len("v = ") :]


def write_profile(name: str, data: dict[str, dict[str, Any]]) -> Path:
    path = profile_path(name)
    validate_profile(data, str(path))
    atomic.write_text(path, render_profile(data))
    return path


def init_profile(name: str, *, force: bool = False) -> Path:
    """Write a profile that lists every setting (commented out, with its default and help)."""
    path = profile_path(name)
    if path.exists() and not force:
        raise ConfigError(f"profile {name!r} already exists at {path}", hint=f"mqc profile init {name} --force")
    return write_profile(name, {})


def set_value(name: str, dotted_key: str, raw: str) -> Any:
    """Set ``table.key`` in profile ``name`` from a string, type-checked; returns the stored value."""
    if "." not in dotted_key:
        raise ConfigError(f"key {dotted_key!r} must be TABLE.KEY, e.g. market.equity_fee_bps")
    table, key = dotted_key.split(".", 1)
    tables = config.known_tables()
    table = config.current_table(table)
    if table not in tables:
        raise ConfigError(f"unknown table {table!r}{config.did_you_mean(table, tables)}")
    cls = tables[table]
    config.check_keys(cls, {key: None}, f"[{table}]")
    value = config.coerce(raw, config.field_types(cls)[key], f"{table}.{key}")
    data = read_profile(name) if profile_path(name).exists() else {}
    for old in config.old_names_of(table):  # rewritten under the current name, keys kept
        if old in data:
            config.note(f"profile {name}: table [{old}] is renamed [{table}] (its keys are kept)")
            data[table] = data.pop(old)
    data.setdefault(table, {})[key] = list(value) if isinstance(value, tuple) else value
    if value is None:
        data[table].pop(key)
    # Build the config from the table, so its __post_init__ invariants (dates, ranges, ...) reject a
    # value before it is written, rather than in every later command that reads the profile.
    types_ = config.field_types(cls)
    cls(**{k: config.coerce(v, types_[k], f"{table}.{k}") for k, v in data[table].items()})
    write_profile(name, data)
    return value


def profile_table(name: str | None, cls: type) -> dict[str, Any]:
    """The table for ``cls`` in profile ``name`` (empty when no profile is selected)."""
    if not name:
        return {}
    data = read_profile(name)
    table = config.table_name(cls)
    if table in data:
        return dict(data[table])
    for old in config.old_names_of(table):
        if old in data:
            config.current_table(old, f"profile {name}")
            return dict(data[old])
    return {}


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
