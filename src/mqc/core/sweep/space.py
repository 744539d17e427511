"""A sweep file: which profile keys vary, checked against the trainer's tables before anything runs.

The file is TOML and names keys exactly as profiles do (``train.lookback``, ``market.commission_bps``;
``seed`` is the trainer table's ``seed``)::

    train.steps = 200                                  # a scalar: fixed for every trial
    train.lookback = [64, 128, 192]                    # a list: a grid axis (categorical in a search)
    train.lr = {low = 1e-4, high = 1e-2, log = true}   # a range: searched with --samples N
    seed = [0, 1, 2]                                   # every configuration runs once per seed

A key whose own type is a list (``data.symbols``) takes a list of lists as its axis. Every value is
coerced to the field's type and the table is built with it (so its invariants run) here, not in
the middle of a sweep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_origin

from mqc.core import config
from mqc.core.errors import ArtifactNotFound, ConfigError

_RANGE_KEYS = {"low", "high", "log", "step"}
SEED = "seed"


@dataclass(frozen=True)
class Range:
    """A numeric interval searched by the sampler (``int`` when the field is an integer)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False


@dataclass(frozen=True)
class SweepSpace:
    """The validated sweep: fixed overrides, grid axes, ranges and seeds (keys ``table.field``)."""

    fixed: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, Range] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    seed_key: str = "train.seed"

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration of the grid axes (seed excluded), fixed values included, in file order."""
        if self.ranges:
            raise ConfigError(
                f"{', '.join(self.ranges)}: a range is searched, not enumerated",
                hint="give --samples N (random or TPE search), or list the values as a grid axis",
            )
        names = list(self.axes)
        return [
            {**self.fixed, **dict(zip(names, combo, strict=True))} for combo in itertools.product(*self.axes.values())
        ]

    def size(self) -> int:
        """Configurations of the grid (seeds excluded)."""
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n


def config_key(overrides: Mapping[str, Any]) -> str:
    """A short stable id of a configuration (its overrides without the seed)."""
    text = json.dumps({k: overrides[k] for k in sorted(overrides)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def read_sweep_file(path: str | Path) -> dict[str, Any]:
    """The TOML of a sweep file.

    Raises:
        ArtifactNotFound: no such file; ConfigError: not valid TOML.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ArtifactNotFound(f"sweep file {p} not found", hint="pass --grid FILE (a TOML file of profile keys)")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}", hint="fix the sweep file (docs/sweep.md)") from exc


def parse_space(
    doc: Mapping[str, Any],
    tables: Mapping[str, type],
    base: Mapping[str, Mapping[str, Any]],
    where: str,
    *,
    seed_table: str,
) -> SweepSpace:
    """Validate a sweep file against the trainer's ``tables`` (name -> config class).

    Args:
        doc: the parsed TOML.
        tables: the tables a trial resolves (data, market, features, split, the trainer's own).
        base: the resolved base values by table (``config.to_dict``), that each override replaces.
        where: the file, for messages.
        seed_table: the trainer's own table, whose ``seed`` the top-level ``seed`` key sets.
    Raises:
        ConfigError: an unknown table or key (with a "did you mean"), a value of the wrong type or
            one the table refuses, an empty axis or an empty sweep.
    """
    train_table = seed_table if "seed" in config.field_types(tables[seed_table]) else None
    flat: dict[str, Any] = {}
    for name, value in doc.items():
        if name == SEED:
            if train_table is None:
                raise ConfigError(f"{where}: 'seed' needs a trainer table with a seed")
            flat[f"{train_table}.seed"] = value
            continue
        name = config.current_table(name, where)  # an old table name ([train] for [dm]) still reads, with a note
        if name not in tables:
            raise ConfigError(
                f"{where}: unknown table {name!r}{config.did_you_mean(name, [*tables, SEED])}",
                hint=f"a key is table.field of this trainer's tables: {', '.join(tables)} (or seed)",
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {name} must be a table of keys (e.g. {name}.<field> = [...])")
        types_ = config.field_types(tables[name])
        for key, v in value.items():
            if key not in types_:
                raise ConfigError(
                    f"{where}: unknown key {name}.{key}{config.did_you_mean(key, types_)}",
                    hint=f"the keys of [{name}] are listed by: mqc profile show",
                )
            flat[f"{name}.{key}"] = v
    if not flat:
        raise ConfigError(f"{where}: the sweep is empty", hint="name at least one key, e.g. train.lr = [1e-3, 3e-3]")
    fixed: dict[str, Any] = {}
    axes: dict[str, list[Any]] = {}
    ranges: dict[str, Range] = {}
    seeds: tuple[int, ...] = ()
    for key, raw in flat.items():
        table, name = key.split(".", 1)
        cls = tables[table]
        tp = config.field_types(cls)[name]
        is_seq = get_origin(tp) in (list, tuple) or _optional_seq(tp)
        label = f"{where}: {key}"
        if isinstance(raw, dict):
            ranges[key] = _range(raw, tp, label)
            for bound in (ranges[key].low, ranges[key].high):
                _check_value(cls, table, name, bound, base, label)
            continue
        if isinstance(raw, list) and (not is_seq or (raw and all(isinstance(x, list) for x in raw))):
            if not raw:
                raise ConfigError(f"{label} is an empty list", hint="give at least one value")
            values = [_check_value(cls, table, name, x, base, f"{label}[{i}]") for i, x in enumerate(raw)]
            if len({json.dumps(v, default=str) for v in values}) < len(values):
                raise ConfigError(f"{label} lists a value twice: {raw}")
            axes[key] = values
        else:
            fixed[key] = _check_value(cls, table, name, raw, base, label)
    seed_key = f"{train_table}.seed" if train_table else "train.seed"
    if seed_key in axes:
        seeds = tuple(int(s) for s in axes.pop(seed_key))
    elif seed_key in ranges:
        raise ConfigError(f"{where}: seed takes a list of seeds, not a range", hint="seed = [0, 1, 2]")
    elif seed_key in fixed:
        seeds = (int(fixed.pop(seed_key)),)
    else:
        seeds = (int(base.get(train_table or "", {}).get("seed", 0)),)
    return SweepSpace(fixed=fixed, axes=axes, ranges=ranges, seeds=seeds, seed_key=seed_key)


def _optional_seq(tp: Any) -> bool:
    import types
    import typing

    if get_origin(tp) in (typing.Union, types.UnionType):
        return any(get_origin(a) in (list, tuple) for a in typing.get_args(tp))
    return False


def _check_value(cls: type, table: str, name: str, raw: Any, base: Mapping[str, Mapping[str, Any]], label: str) -> Any:
    """``raw`` coerced to the field's type and accepted by the table (built on the base values)."""
    value = config.coerce(raw, config.field_types(cls)[name], label)
    try:
        cls(**{**base.get(table, {}), name: value})
    except ConfigError as exc:
        raise ConfigError(f"{label} = {raw!r}: {exc}", hint="fix that value in the sweep file") from exc
    return list(value) if isinstance(value, tuple) else value


def _range(raw: Mapping[str, Any], tp: Any, label: str) -> Range:
    extra = set(raw) - _RANGE_KEYS
    if extra or not {"low", "high"} <= set(raw):
        raise ConfigError(
            f"{label}: a range is {{low = ..., high = ...}} (optional log, step), got keys {sorted(raw)}"
            + (config.did_you_mean(sorted(extra)[0], _RANGE_KEYS) if extra else ""),
        )
    integer = tp is int
    if tp not in (int, float):
        raise ConfigError(f"{label}: a range needs a numeric key, this one is {getattr(tp, '__name__', tp)}")
    low = config.coerce(raw["low"], tp, f"{label}.low")
    high = config.coerce(raw["high"], tp, f"{label}.high")
    if not low < high:
        raise ConfigError(f"{label}: low must be below high, got {low} .. {high}")
    log = config.coerce(raw.get("log", False), bool, f"{label}.log")
    if log and low <= 0:
        raise ConfigError(f"{label}: a log range needs low > 0, got {low}")
    step = raw.get("step")
    step = None if step is None else config.coerce(step, tp, f"{label}.step")
    return Range(low=low, high=high, log=log, step=step, integer=integer)


def apply_overrides(base: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The base tables with ``table.field`` overrides applied (a deep copy)."""
    out = {t: dict(v) for t, v in base.items()}
    for key, value in overrides.items():
        table, name = key.split(".", 1)
        out.setdefault(table, {})[name] = value
    return out


def tables_of(classes: list[type]) -> dict[str, type]:
    """Table name -> class, in order."""
    return {config.table_name(c): c for c in classes}


def base_values(objs: list[Any]) -> dict[str, dict[str, Any]]:
    """Table name -> field values of resolved config objects."""
    return {config.table_name(type(o)): config.to_dict(o) for o in objs if dataclasses.is_dataclass(o)}
