"""Config dataclasses and the one precedence order that resolves them.

Each concern has one frozen dataclass registered under a table name (``@config_table("market")``).
A value resolves, lowest to highest, from:

    defaults < hyperparams file < profile < MQC_<TABLE>_<FIELD> environment < CLI flags

and ``resolve`` reports where each value came from, so ``mqc profile show`` can print it.
Unknown tables and keys are errors with a "did you mean" suggestion, and so are ``MQC_*`` variables
mqc does not read (checked whenever a config is resolved).

A table that was renamed keeps its old name as an alias (``@config_table("dm", old_names=("train",))``):
a profile's ``[train]`` and ``MQC_TRAIN_*`` still resolve the ``[dm]`` table, each with a deprecation
note sent to the note sink (the CLI prints it as one ``note:`` line; library callers get a
``FutureWarning``). Setting both names at once is an error, never a silent choice.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import os
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from mqc.core.errors import ConfigError, UsageError

T = TypeVar("T")

_TABLES: dict[str, type] = {}
_OLD_NAMES: dict[str, str] = {}  # old table name -> current one
_note_sink: Callable[[str], None] | None = None


def set_note_sink(sink: Callable[[str], None] | None) -> None:
    """Where deprecation notes go (the CLI prints them on stderr); ``None``: a ``FutureWarning``."""
    global _note_sink
    _note_sink = sink


def note(message: str) -> None:
    """Report a deprecation (an old table or variable name that still works) to the note sink."""
    if _note_sink is not None:
        _note_sink(message)
    else:
        warnings.warn(message, FutureWarning, stacklevel=3)


# Modules that define config tables. Imported lazily by ``known_tables`` so that validating a profile
# sees every table; each must stay light (dataclasses only, no torch/pandas at import time).
CONFIG_MODULES: tuple[str, ...] = (
    "mqc.core.data.config",
    "mqc.core.market.config",
    "mqc.core.train.config",
    "mqc.core.backtest.config",
    "mqc.core.forecast.config",
    "mqc.core.forecast.kronos.config",
    "mqc.core.gym.config",
    "mqc.core.trade.config",
    "mqc.core.lm.config",
)


def config_table(name: str, *, old_names: tuple[str, ...] = ()):
    """Class decorator registering a frozen config dataclass under a profile table name.

    ``old_names``: earlier names of the table, still read (profiles, ``MQC_*``, stored runs) with a note.

    Every registered table also gets ``check_values`` (finite numbers, integers in range, the
    fields' ``min``/``max`` metadata) before its own ``__post_init__`` invariants run, so no table
    can accept ``nan``, ``inf`` or ``1e29`` steps by forgetting a check.
    """

    def wrap(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        existing = _TABLES.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"config table {name!r} registered twice ({existing.__name__}, {cls.__name__})")
        _TABLES[name] = cls
        for old in old_names:
            _OLD_NAMES[old] = name
        cls.__config_table__ = name  # type: ignore[attr-defined]
        _install_value_checks(cls)
        return cls

    return wrap


# No count or size mqc uses comes near this; larger integers overflow numpy/torch (int64).
INT_LIMIT = 2**63 - 1


def _install_value_checks(cls: type) -> None:
    own = cls.__dict__.get("__post_init__") or getattr(cls, "__post_init__", None)
    if own is not None:
        # the dataclass __init__ calls __post_init__: check the values first, then the invariants
        def __post_init__(self: Any) -> None:
            check_values(self)
            own(self)

        cls.__post_init__ = __post_init__  # type: ignore[attr-defined]
        return
    init = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        check_values(self)

    cls.__init__ = __init__  # type: ignore[method-assign]


def _hint(table: str, name: str) -> str:
    return f"fix the option that sets it, [{table}] {name} in the profile, or {env_name(table, name)}"


def _bound(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,g}"


def check_values(obj: Any) -> None:
    """Value checks every config table shares: each number finite, each integer within
    ``INT_LIMIT``, and within the field's ``metadata["min"]``/``["max"]`` when it declares them.

    Raises:
        ConfigError: naming ``table.field``, the value and where to fix it.
    """
    table = getattr(type(obj), "__config_table__", type(obj).__name__)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        items = value if isinstance(value, (tuple, list)) else (value,)
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{table}.{f.name} must be a finite number, got {v}", hint=_hint(table, f.name))
            shown = f"{v:g}" if isinstance(v, float) or abs(v) >= 10**12 else str(v)
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None and v < lo:
                raise ConfigError(
                    f"{table}.{f.name} must be at least {_bound(lo)}, got {shown}", hint=_hint(table, f.name)
                )
            if hi is not None and v > hi:
                raise ConfigError(
                    f"{table}.{f.name} must be at most {_bound(hi)}, got {shown}", hint=_hint(table, f.name)
                )
            if isinstance(v, int) and abs(v) > INT_LIMIT:
                raise ConfigError(
                    f"{table}.{f.name} is out of range (at most {INT_LIMIT:,}), got {shown}", hint=_hint(table, f.name)
                )


def known_tables() -> dict[str, type]:
    for mod in CONFIG_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
    return dict(_TABLES)


def table_name(cls: type) -> str:
    return cls.__config_table__  # type: ignore[attr-defined]


def old_table_names() -> dict[str, str]:
    """Old table name -> current name, for every renamed table."""
    known_tables()
    return dict(_OLD_NAMES)


def old_names_of(table: str) -> tuple[str, ...]:
    """The earlier names of ``table`` (``("train",)`` for ``dm``)."""
    return tuple(old for old, new in old_table_names().items() if new == table)


def current_table(table: str, where: str = "") -> str:
    """``table``, or the current name of an old one (with a deprecation note naming ``where``)."""
    new = old_table_names().get(table)
    if new is None:
        return table
    note(f"{where + ': ' if where else ''}table [{table}] is now [{new}]; rename it ([{table}] is still read)")
    return new


def did_you_mean(name: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (from TOML, an env string or a CLI flag) to the annotated type ``tp``."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            if type(None) in get_args(tp):
                return None
        errors = []
        for arg in args:
            try:
                return coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        if isinstance(value, str):
            for c in choices:
                if str(c) == value.strip():
                    return c
        raise ConfigError(
            f"{where}: {value!r} is not one of {', '.join(map(str, choices))}"
            + did_you_mean(str(value), map(str, choices))
        )
    if origin in (tuple, list):
        args = get_args(tp)
        inner = args[0] if args else str
        if isinstance(value, str):
            items = [s.strip() for s in value.split(",") if s.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ConfigError(f"{where}: expected a list (comma-separated), got {value!r}")
        out = [coerce(v, inner, where) for v in items]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if tp is Any:
        return value
    return value


def check_keys(cls: type, values: Mapping[str, Any], where: str) -> None:
    names = field_types(cls)
    for key in values:
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, names)}")


@dataclasses.dataclass(frozen=True)
class Resolved(typing.Generic[T]):
    value: T
    sources: dict[str, str]


def env_name(table: str, field: str) -> str:
    return f"MQC_{table.upper()}_{field.upper()}"


# MQC_* variables that are not MQC_<TABLE>_<FIELD> settings (paths, the profile, tracebacks).
OTHER_VARIABLES: frozenset[str] = frozenset(
    {"MQC_PROFILE", "MQC_DEBUG", "MQC_CONFIG_DIR", "MQC_DATA_DIR", "MQC_CACHE_DIR", "MQC_RUNS_DIR"}
)


def known_variables(*, old: bool = True) -> set[str]:
    """Every ``MQC_*`` environment variable mqc reads (``old=False``: without the deprecated names
    of renamed tables, ``MQC_TRAIN_*``)."""
    tables = known_tables()
    names = {env_name(t, f) for t, cls in tables.items() for f in field_types(cls)} | OTHER_VARIABLES
    if old:
        names |= {env_name(o, f) for o, t in _OLD_NAMES.items() for f in field_types(tables[t])}
    return names


def _current_variable(name: str) -> str:
    """``MQC_TRAIN_STEPS`` -> ``MQC_DM_STEPS`` (a name of a current table unchanged)."""
    for old, new in _OLD_NAMES.items():
        prefix = f"MQC_{old.upper()}_"
        if name.startswith(prefix):
            return f"MQC_{new.upper()}_" + name[len(prefix) :]
    return name


def check_env(env: Mapping[str, str] | None = None) -> None:
    """A misspelt ``MQC_*`` variable is an error, not silently ignored (like an unknown profile key).

    Raises:
        ConfigError: an ``MQC_*`` name mqc does not read, with a "did you mean".
    """
    env = os.environ if env is None else env
    unknown = sorted(k for k in env if k.startswith("MQC_"))
    if not unknown:
        return
    known = known_variables()
    for name in unknown:
        if name not in known:
            match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            suggestion = f"; did you mean {_current_variable(match[0])!r}?" if match else ""
            raise ConfigError(
                f"unknown environment variable {name}{suggestion}",
                hint=f"fix its name or unset it (unset {name}); a setting is MQC_<TABLE>_<FIELD> of a profile "
                "table and key, e.g. MQC_DM_STEPS for dm.steps",
            )


def resolve(
    cls: type[T],
    *,
    hyperparams: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
    profile_name: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Resolved[T]:
    """Build ``cls`` from the layers in precedence order and record where each value came from.

    ``profile`` is the table for ``cls`` only (a mapping of field -> value). ``flags`` entries whose
    value is ``None`` mean "not given on the command line" and are skipped.
    """
    table = table_name(cls)
    types_ = field_types(cls)
    env = os.environ if env is None else env
    check_env(env)
    values: dict[str, Any] = {}
    sources = {name: "default" for name in types_}
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if hyperparams:
        layers.append(("hyperparams", hyperparams))
    if profile:
        layers.append((f"profile:{profile_name or '?'}", profile))
    env_layer: dict[str, tuple[str, str]] = {}  # field -> (variable, raw value)
    for name in types_:
        for variable in (env_name(table, name), *(env_name(old, name) for old in old_names_of(table))):
            if variable not in env:
                continue
            if name in env_layer:
                raise ConfigError(
                    f"both {env_layer[name][0]} and {variable} are set",
                    hint=f"unset {variable} ({_current_variable(variable)} is its current name)",
                )
            env_layer[name] = (variable, env[variable])
            if variable != env_name(table, name):
                note(f"{variable} is deprecated; use {env_name(table, name)}")
    for label, layer in layers:
        check_keys(cls, layer, f"[{table}] in {label}")
        for key, raw in layer.items():
            values[key] = coerce(raw, types_[key], f"[{table}].{key} in {label}")
            sources[key] = label
    for key, (variable, raw) in env_layer.items():
        values[key] = coerce(raw, types_[key], variable)
        sources[key] = f"env:{variable}"
    before_flags = dict(values)
    if flags:
        check_keys(cls, flags, f"[{table}] flags")
        for key, raw in flags.items():
            if raw is None:
                continue
            try:
                values[key] = coerce(raw, types_[key], f"--{key.replace('_', '-')}")
            except ConfigError as exc:
                raise UsageError(str(exc), hint=exc.hint) from exc
            sources[key] = "flag"
    try:
        obj = cls(**values)
    except TypeError as exc:  # pragma: no cover - guarded by check_keys
        raise ConfigError(f"[{table}]: {exc}") from exc
    except ConfigError as exc:
        if values != before_flags and _builds(cls, before_flags):
            # Valid without the command line's values: those are what the user must change.
            raise UsageError(str(exc), hint=exc.hint) from exc
        raise
    return Resolved(obj, sources)


def _builds(cls: type, values: Mapping[str, Any]) -> bool:
    try:
        cls(**values)
    except (ConfigError, TypeError):
        return False
    return True


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON/TOML-friendly dict of a config dataclass (tuples become lists, None dropped for TOML)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def from_dict(cls: type[T], values: Mapping[str, Any], where: str = "config") -> T:
    """Rebuild a config from a stored dict (e.g. a checkpoint's ``config.json``), type-checked."""
    types_ = field_types(cls)
    check_keys(cls, values, where)
    return cls(**{k: coerce(v, types_[k], f"{where}.{k}") for k, v in values.items()})
