"""``run_forecast``: catalog bars -> per-symbol settings -> batched forecasts, and saving them.

Per-symbol settings resolve through the one precedence order (defaults < hyperparams file <
profile < MQC_FORECAST_* < flags); symbols that end up with identical settings share one model
and one batched call. ``--model best`` takes each symbol's model from ``best/<SYMBOL>.<tf>.json`` and
then resolves that model's settings exactly as ``--model <that model>`` would (its tuned
``<model>/<SYMBOL>.<tf>.json`` when present), the same rule ``eval`` and ``select`` use. Files are
keyed by bar size: ``-t 1h`` never reads settings tuned or chosen on daily bars.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mqc.core import atomic
from mqc.core.data.catalog import Catalog
from mqc.core.dates import check_timestamp
from mqc.core.errors import ConfigError, DataError, UsageError
from mqc.core.forecast import base, hyperparams
from mqc.core.forecast.base import Forecast
from mqc.core.forecast.config import ForecastConfig
from mqc.core.profiles import resolve_with_profile


@dataclass
class ForecastResult:
    forecasts: dict[str, Forecast]
    configs: dict[str, ForecastConfig]
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    hyperparams_files: dict[str, str | None] = field(default_factory=dict)
    selection_files: dict[str, str | None] = field(default_factory=dict)  # best/<SYMBOL>.<tf>.json behind --model best

    def to_dict(self) -> dict[str, Any]:
        from mqc.core.config import to_dict

        return {
            s: {
                **f.to_dict(),
                "config": to_dict(self.configs[s]),
                "hyperparams_file": self.hyperparams_files.get(s),
                "selection_file": self.selection_files.get(s),
            }
            for s, f in self.forecasts.items()
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([f.to_frame() for f in self.forecasts.values()], ignore_index=True)


def load_frames(
    symbols: Sequence[str], timeframe: str, *, end: str | None = None, catalog: Catalog | None = None
) -> dict[str, pd.DataFrame]:
    """Each symbol's full canonical frame from the catalog, on its own calendar (no cross-symbol alignment).

    ``end`` cuts the history (inclusive) to forecast as of an earlier date. ``frame.attrs['asset_class']``
    carries the catalog's asset class for the calendar.

    Raises:
        DataError: an invalid timeframe label (checked before any symbol lookup).
        ArtifactNotFound: a symbol is not in the catalog (with a did-you-mean).
    """
    from mqc.core.data.timeframe import parse_timeframe

    parse_timeframe(timeframe)  # "hourly" is a bad label, not a missing symbol
    cat = catalog or Catalog()
    frames: dict[str, pd.DataFrame] = {}
    for s in symbols:
        entry = cat.find(s, timeframe)
        df = cat.load(entry.symbol, entry.timeframe)
        if end:
            cut = pd.Timestamp(check_timestamp(end, "--end"), tz="UTC")
            if len(end) <= 10:
                cut = cut + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
            df = df[df["timestamp"] <= cut].reset_index(drop=True)
            if df.empty:
                raise DataError(f"{entry.symbol}: no bars on or before {end}")
        df.attrs["asset_class"] = entry.asset_class
        frames[entry.symbol] = df
    return frames


def resolve_config(
    symbol: str, profile: str | None, flags: Mapping[str, Any]
) -> tuple[ForecastConfig, dict[str, str], str | None]:
    """Settings for one symbol: (config, where each value came from, hyperparams file used).

    ``model="best"`` reads the model name from ``best/<SYMBOL>.<tf>.json``; the settings of that model
    then resolve like any other (defaults < ``<model>/<SYMBOL>.<tf>.json`` < profile < env < flags).

    Raises:
        ConfigError: no selection record for ``best``, a malformed hyperparams file, bad settings.
    """
    cfg, sources, path, _ = resolve_symbol(symbol, profile, flags)
    return cfg, sources, path


def check_model(name: str, source: str, *, allow_best: bool = False) -> None:
    """Raise unless ``name`` is a registered forecaster (or ``best`` where ``allow_best``).

    Args:
        name: the model name.
        source: where it came from (``flag``, ``profile:NAME``, ``env:...``, ``default``).
        allow_best: accept ``best`` (``forecast run`` only).

    Raises:
        UsageError: an unknown name given on the command line (exit 2), with a did-you-mean;
        ConfigError: the same from a profile or the environment (exit 1).
    """
    from mqc.core.config import did_you_mean

    names = [*base.available(), *(["best"] if allow_best else [])]
    if name in names:
        return
    where = {"flag": "--model"}.get(source, source)
    error = UsageError if source == "flag" else ConfigError
    raise error(
        f"unknown model {name!r} ({where}){did_you_mean(name, names)}",
        hint=f"available models: {', '.join(names)} (mqc forecast models)",
    )


def resolve_base(profile: str | None, flags: Mapping[str, Any], *, allow_best: bool = False) -> ForecastConfig:
    """The ``[forecast]`` settings before any per-symbol file, with the model name checked.

    Raises:
        UsageError / ConfigError: an unknown model (see ``check_model``) or a bad setting.
    """
    res = resolve_with_profile(ForecastConfig, profile, flags=flags)
    check_model(res.value.model, res.sources.get("model", "default"), allow_best=allow_best)
    return res.value


def resolve_symbol(
    symbol: str, profile: str | None, flags: Mapping[str, Any]
) -> tuple[ForecastConfig, dict[str, str], str | None, str | None]:
    """``resolve_config`` plus the ``best/<SYMBOL>.<tf>.json`` that chose the model (None unless ``best``)."""
    first = resolve_base(profile, flags, allow_best=True)
    model, selection = first.model, None
    if model == "best":
        rec = hyperparams.find(hyperparams.BEST, symbol, first.timeframe, first.hyperparams_dir)
        if rec is None:
            name = hyperparams.file_name(symbol, first.timeframe)
            raise ConfigError(
                f"no model-selection record for {symbol} at {first.timeframe} (best/{name}) in"
                f" {', '.join(map(str, hyperparams.search_dirs(first.hyperparams_dir)))}",
                hint=f"mqc forecast select {symbol} -t {first.timeframe} --models naive,ewma-vol,chronos2",
            )
        model, selection = rec.model, str(rec.path) if rec.path else None
    hp = hyperparams.find(model, symbol, first.timeframe, first.hyperparams_dir)
    res = resolve_with_profile(
        ForecastConfig,
        profile,
        hyperparams={**(hp.config if hp else {}), "model": model},
        flags={**flags, "model": None},
    )
    cfg = dataclasses.replace(res.value, model=model)
    return cfg, res.sources, str(hp.path) if hp and hp.path else None, selection


@dataclass
class ModelSettings:
    """Per model label, per symbol: the resolved config and the hyperparams file applied (or None)."""

    configs: dict[str, dict[str, ForecastConfig]]
    files: dict[str, dict[str, str | None]]


def model_settings(
    models: Sequence[str],
    symbols: Sequence[str],
    *,
    profile: str | None = None,
    flags: Mapping[str, Any] | None = None,
    quantile_levels: tuple[float, ...] | None = None,
) -> ModelSettings:
    """Each model's settings for each symbol, resolved like ``forecast run`` does (tuned files included).

    Args:
        models: model names (``best`` is not a candidate here).
        symbols: symbols whose per-symbol hyperparams files are looked up.
        profile: profile name for the precedence order.
        flags: ForecastConfig field -> CLI value (None = not given); ``model`` is ignored.
        quantile_levels: levels to ask of every model (the evaluation's), overriding the files'.

    Returns:
        ModelSettings with configs and hyperparams file paths per model and symbol.

    Raises:
        ConfigError: ``best`` among the models, a malformed hyperparams file, bad settings.
    """
    if "best" in models:
        raise UsageError(
            "'best' is not a model to compare (--models)",
            hint="name the candidates, e.g. --models naive,ewma-vol,chronos2",
        )
    configs: dict[str, dict[str, ForecastConfig]] = {}
    files: dict[str, dict[str, str | None]] = {}
    for m in models:
        configs[m], files[m] = {}, {}
        for s in symbols:
            cfg, _, path, _ = resolve_symbol(s, profile, {**(flags or {}), "model": m})
            configs[m][s] = dataclasses.replace(cfg, quantile_levels=quantile_levels) if quantile_levels else cfg
            files[m][s] = path
    return ModelSettings(configs, files)


def run_forecast(
    symbols: Sequence[str],
    *,
    profile: str | None = None,
    flags: Mapping[str, Any] | None = None,
    end: str | None = None,
    catalog: Catalog | None = None,
    frames: Mapping[str, pd.DataFrame] | None = None,
) -> ForecastResult:
    """Forecast ``symbols`` from their latest bar (or ``end``).

    Args:
        symbols: catalog symbols.
        profile: profile name for the precedence order.
        flags: ForecastConfig field -> CLI value (None = not given).
        end: forecast as of this date instead of the latest bar.
        catalog: catalog to read (default: the user's).
        frames: bars to use instead of the catalog (tests, library use).

    Returns:
        ForecastResult with one Forecast per symbol and the resolved settings.

    Raises:
        ConfigError: unknown model or bad settings; ArtifactNotFound: missing symbol or weights;
        DataError: too little context.
    """
    flags = dict(flags or {})
    if not symbols:
        raise UsageError("no symbols to forecast", hint="name them: mqc forecast AAPL MSFT --model naive")
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(flags.get("timeframe"))  # flags are the command line's: a bad one is exit 2
    tf = flags.get("timeframe") or resolve_with_profile(ForecastConfig, profile, flags={}).value.timeframe
    data = dict(frames) if frames is not None else load_frames(symbols, tf, end=end, catalog=catalog)
    configs, sources, files, selections = {}, {}, {}, {}
    for s in data:
        configs[s], sources[s], files[s], selections[s] = resolve_symbol(s, profile, flags)
    groups: dict[ForecastConfig, list[str]] = {}
    for s, cfg in configs.items():
        groups.setdefault(cfg, []).append(s)
    forecasts: dict[str, Forecast] = {}
    for cfg, syms in groups.items():
        model = base.create(cfg.model, config=cfg)
        forecasts.update(model.predict({s: data[s] for s in syms}, cfg.prediction_length, cfg.sorted_levels))
    ordered = {s: forecasts[s] for s in data}
    return ForecastResult(ordered, configs, sources, files, selections)


def save_forecasts(result: ForecastResult, path: str | Path) -> Path:
    """Write the long forecast table to ``.csv`` or ``.parquet`` atomically.

    Raises:
        ConfigError: another file suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {path}: use a .csv or .parquet file name")
    frame = result.to_frame()
    with atomic.atomic_path(path) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path
