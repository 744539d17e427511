"""Rolling-origin evaluation: every model forecasts from the same origins with causal context only.

Origins are timestamps every symbol has, each with ``min_context`` bars before it and the longest
horizon after it on the symbol's own calendar. The context of origin t is the bars up to and
including t (nothing later is ever sliced in), and the outcome at horizon h is the symbol's h-th
bar after t. Models with a batched array core forecast ``chunk`` origins x symbols per call, except
models that share information across the series of a call (Chronos-2 cross-learning), which get
one call per origin. Window baselines receive ``window + 1`` bars even above ``context_length``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mqc.core.errors import ConfigError, DataError
from mqc.core.forecast.calendar import utc_ns
from mqc.core.forecast.config import EvalConfig, ForecastConfig
from mqc.core.forecast.model import frame_array, series_key
from mqc.core.forecast.scoring import score
from mqc.core.progress import NULL, Progress


@dataclass
class OriginGrid:
    timestamps: pd.DatetimeIndex  # [O] origin timestamps (UTC)
    index: np.ndarray  # int [O, S]: row of each origin in each symbol's frame
    symbols: tuple[str, ...]
    requested: int | None = None  # origins asked for (``origins`` of EvalConfig); None = not recorded

    def subset(self, sel: slice | np.ndarray) -> OriginGrid:
        return OriginGrid(self.timestamps[sel], self.index[sel], self.symbols, self.requested)

    def columns(self, cols: Sequence[int]) -> OriginGrid:
        """The same origins for a subset of the symbols (by position)."""
        cols = list(cols)
        return OriginGrid(self.timestamps, self.index[:, cols], tuple(self.symbols[j] for j in cols), self.requested)

    @property
    def origin_ns(self) -> np.ndarray:
        """Origin timestamps as int64 UTC nanoseconds (the origin part of ``series_key``)."""
        return utc_ns(self.timestamps)


@dataclass
class EvalResult:
    """Metrics per (model, horizon), per (model, symbol, horizon), plus the raw close forecasts."""

    symbols: tuple[str, ...]
    models: tuple[str, ...]
    horizons: tuple[int, ...]
    quantile_levels: tuple[float, ...]
    origins: pd.DatetimeIndex
    rows: list[dict] = field(default_factory=list)
    per_symbol: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    configs: dict[str, dict] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # model -> close quantiles [O, S, Q, Hmax]
    actual: np.ndarray | None = None  # [O, S, Hmax]
    last_close: np.ndarray | None = None  # [O, S]
    requested_origins: int | None = None  # what was asked for; len(origins) is what the data allowed
    settings_files: dict[str, dict[str, str | None]] = field(default_factory=dict)  # model -> symbol -> hyperparams file

    def metric(self, model: str, name: str, symbol: str | None = None) -> float | None:
        """Mean of one metric over the scored horizons (for one symbol, or pooled)."""
        rows = [r for r in (self.per_symbol if symbol else self.rows) if r["model"] == model and (symbol is None or r["symbol"] == symbol)]
        vals = [r[name] for r in rows if r.get(name) is not None]
        return float(np.mean(vals)) if vals else None

    def to_dict(self) -> dict:
        return {
            "symbols": list(self.symbols),
            "models": list(self.models),
            "horizons": list(self.horizons),
            "quantile_levels": list(self.quantile_levels),
            "n_origins": len(self.origins),
            "requested_origins": self.requested_origins,
            "first_origin": self.origins[0].isoformat() if len(self.origins) else None,
            "last_origin": self.origins[-1].isoformat() if len(self.origins) else None,
            "seconds": self.seconds,
            "configs": self.configs,
            "settings_files": self.settings_files,
            "results": self.rows,
            "per_symbol": self.per_symbol,
        }


def origin_grid(frames: Mapping[str, pd.DataFrame], n_origins: int, step: int, min_context: int, max_horizon: int) -> OriginGrid:
    """The latest ``n_origins`` common timestamps (every ``step``-th) usable by every symbol.

    Raises:
        DataError: no timestamp has enough context before it and ``max_horizon`` bars after it.
    """
    symbols = tuple(frames)
    ok: pd.DatetimeIndex | None = None
    for s in symbols:
        ts = pd.DatetimeIndex(frames[s]["timestamp"])
        usable = ts[min_context - 1 : len(ts) - max_horizon]
        ok = usable if ok is None else ok.intersection(usable)
    if ok is None or len(ok) == 0:
        raise DataError(
            f"no common origin for {', '.join(symbols)} with {min_context} context bars and {max_horizon} bars after it",
            hint="evaluate symbols whose histories overlap, lower --min-context or the horizon",
        )
    chosen = ok.sort_values()[::-1][::step][:n_origins][::-1]
    index = np.empty((len(chosen), len(symbols)), dtype=np.int64)
    for j, s in enumerate(symbols):
        ts = pd.DatetimeIndex(frames[s]["timestamp"])
        index[:, j] = ts.get_indexer(chosen)
    return OriginGrid(chosen, index, symbols, n_origins)


def _per_symbol(spec: ForecastConfig | Mapping[str, ForecastConfig], symbols: Sequence[str]) -> dict[str, ForecastConfig]:
    if isinstance(spec, ForecastConfig):
        return dict.fromkeys(symbols, spec)
    missing = [s for s in symbols if s not in spec]
    if missing:
        raise ConfigError(f"no settings for {', '.join(missing)}", hint="give a config for every evaluated symbol")
    return {s: spec[s] for s in symbols}


def _forecast_close(model, cfg: ForecastConfig, arrays: list[np.ndarray], frames, grid: OriginGrid, rows: np.ndarray, H: int, levels) -> np.ndarray:
    """Close quantiles ``[len(rows), S, Q, H]`` from the origins ``rows`` of the grid.

    A model whose series inform each other within a call (``shares_across_series``) gets one call
    per origin: mixing origins would let a later origin's context (an earlier origin's future)
    reach the earlier forecast. Other array models forecast all ``rows`` x symbols in one call.
    """
    S = len(grid.symbols)
    if hasattr(model, "predict_arrays"):
        # Window baselines need more than context_length bars (window + 1 closes).
        L = getattr(model, "context_bars", cfg.context_length)
        groups = [[o] for o in rows] if getattr(model, "shares_across_series", False) else [list(rows)]
        ons = grid.origin_ns
        parts = []
        for group in groups:
            ctx = [arrays[j][max(0, i - L + 1) : i + 1] for o in group for j, i in enumerate(grid.index[o])]
            keys = [series_key(s, ons[o]) for o in group for s in grid.symbols]
            q, _ = model.predict_arrays(ctx, H, levels, keys=keys)
            parts.append(q[..., 3].reshape(len(group), S, len(levels), H))
        return np.concatenate(parts)
    L = cfg.context_length
    out = np.empty((len(rows), S, len(levels), H))
    for k, o in enumerate(rows):  # models without an array core (e.g. external ones): per-origin predict
        ctx = {s: frames[s].iloc[max(0, grid.index[o, j] - L + 1) : grid.index[o, j] + 1] for j, s in enumerate(grid.symbols)}
        fc = model.predict(ctx, H, levels)
        for j, s in enumerate(grid.symbols):
            out[k, j] = fc[s].quantiles[:, :, 3]
    return out


def evaluate(
    frames: Mapping[str, pd.DataFrame],
    models: Mapping[str, ForecastConfig | Mapping[str, ForecastConfig]],
    eval_config: EvalConfig,
    *,
    grid: OriginGrid | None = None,
    progress: Progress = NULL,
    factory=None,
    settings_files: Mapping[str, Mapping[str, str | None]] | None = None,
) -> EvalResult:
    """Score each model (label -> config) on rolling origins of ``frames``.

    Args:
        frames: canonical per-symbol frames (full history).
        models: label -> ForecastConfig, or label -> {symbol: ForecastConfig} when symbols have their
            own (tuned) settings; symbols sharing a config share one forecaster and batched call.
        eval_config: origins, horizons, quantile levels.
        grid: origins to use (default: ``origin_grid`` from ``eval_config``).
        progress: sink advanced once per origin.
        factory: ``(name, config) -> forecaster`` (default: the registry).
        settings_files: label -> symbol -> hyperparams file behind the config (recorded in the result).

    Returns:
        EvalResult with pooled and per-symbol metrics and the raw forecasts.

    Raises:
        DataError: too little history for the origins; ConfigError: unknown model, missing settings.
    """
    from mqc.core.config import to_dict
    from mqc.core.forecast import base
    from mqc.core.forecast.calendar import with_learned_season

    make = factory or (lambda name, cfg: base.create(name, config=cfg))
    levels = tuple(sorted(eval_config.quantile_levels))
    H = eval_config.max_horizon
    per_symbol = {label: _per_symbol(spec, list(frames)) for label, spec in models.items()}
    min_ctx = max(c.min_context for cfgs in per_symbol.values() for c in cfgs.values())
    grid = grid or origin_grid(frames, eval_config.origins, eval_config.step, min_ctx, H)
    symbols = grid.symbols
    # Settings a symbol's own history decides (an unset seasonal-naive period) are learned from the
    # bars up to the first origin only: no forecast may depend on a bar after its origin.
    first = {s: grid.index[0, j] + 1 for j, s in enumerate(symbols)}
    per_symbol = {
        label: {s: with_learned_season(c, frames[s].iloc[: first[s]], s) if s in first else c for s, c in cfgs.items()}
        for label, cfgs in per_symbol.items()
    }
    arrays = [frame_array(frames[s]) for s in symbols]
    n_orig, S = grid.index.shape
    actual = np.stack([arrays[j][grid.index[:, j][:, None] + np.arange(1, H + 1)[None, :], 3] for j in range(S)], axis=1)  # [O, S, H]
    last = np.stack([arrays[j][grid.index[:, j], 3] for j in range(S)], axis=1)  # [O, S]
    # label -> [(config, forecaster, symbol columns, sub-grid, sub-arrays)]: one forecaster per distinct config
    plans: dict[str, list] = {}
    for label, cfgs in per_symbol.items():
        groups: dict[ForecastConfig, list[int]] = {}
        for j, s in enumerate(symbols):
            groups.setdefault(cfgs[s], []).append(j)
        plans[label] = []
        for cfg, cols in groups.items():
            m = make(cfg.model, cfg)
            if hasattr(m, "want_samples"):
                m.want_samples = False  # only quantiles are scored
            sub = grid if len(cols) == S else grid.columns(cols)
            plans[label].append((cfg, m, cols, sub, [arrays[j] for j in cols]))
    preds = {label: np.empty((n_orig, S, len(levels), H)) for label in models}
    seconds = dict.fromkeys(models, 0.0)
    progress.start(n_orig, f"forecast eval: {len(models)} model(s) x {S} symbol(s) x {n_orig} origins")
    try:
        for start in range(0, n_orig, eval_config.chunk):
            rows = np.arange(start, min(n_orig, start + eval_config.chunk))
            for label, plan in plans.items():
                t0 = time.perf_counter()
                for cfg, m, cols, sub, sub_arrays in plan:
                    block = _forecast_close(m, cfg, sub_arrays, frames, sub, rows, H, levels)
                    preds[label][rows[:, None], np.asarray(cols)[None, :]] = block
                seconds[label] += time.perf_counter() - t0
            progress.advance(len(rows))
    finally:
        progress.finish()
    result = EvalResult(
        symbols, tuple(models), tuple(eval_config.horizons), levels, grid.timestamps, seconds=seconds, actual=actual, last_close=last,
        requested_origins=grid.requested,
    )
    for label, cfgs in per_symbol.items():
        dicts = {s: {k: v for k, v in to_dict(cfgs[s]).items() if k != "hyperparams_dir"} for s in symbols}
        distinct = {repr(d) for d in dicts.values()}
        # One shared config is stored as is; symbols with their own settings get one entry each.
        result.configs[label] = next(iter(dicts.values())) if len(distinct) == 1 else {"per_symbol": dicts}
        result.settings_files[label] = {s: (settings_files or {}).get(label, {}).get(s) for s in symbols}
        result.predictions[label] = preds[label]
        for h in eval_config.horizons:
            p, a = preds[label][:, :, :, h - 1], actual[:, :, h - 1]
            result.rows.append({"model": label, "horizon": h, **score(p, a, last, levels)})
            for j, s in enumerate(symbols):
                result.per_symbol.append({"model": label, "symbol": s, "horizon": h, **score(p[:, j : j + 1], a[:, j : j + 1], last[:, j : j + 1], levels)})
    return result


def split_origins(grid: OriginGrid, test_frac: float, max_horizon: int, step: int) -> tuple[OriginGrid, OriginGrid]:
    """Validation origins first, test origins last, with an embargo so no validation outcome is a test bar.

    Raises:
        DataError: too few origins to leave both segments non-empty.
    """
    n_orig = len(grid.timestamps)
    embargo = -(-max_horizon // step)
    n_test = max(1, int(round(n_orig * test_frac)))
    n_val = n_orig - n_test - embargo
    if n_val < 1:
        raise DataError(f"{n_orig} origins are too few for a validation and a test segment (embargo {embargo})", hint="raise --origins")
    return grid.subset(slice(0, n_val)), grid.subset(slice(n_orig - n_test, n_orig))


def model_configs(names: Sequence[str], base_config: ForecastConfig, quantile_levels: tuple[float, ...]) -> dict[str, ForecastConfig]:
    """One config per model name, sharing ``base_config``'s settings and the eval quantile levels."""
    import dataclasses

    return {n: dataclasses.replace(base_config, model=n, quantile_levels=quantile_levels) for n in names}
