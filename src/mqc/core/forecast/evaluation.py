"""Rolling-origin evaluation: every model forecasts from causal context only, at each symbol's origins.

Univariate models are scored on each symbol's own origins (``origins.origin_grid``): its latest bars
with enough context before and the longest horizon after, whatever the other symbols' histories
(so histories that do not overlap are evaluated side by side). A model that shares information
across the series of a call (Chronos-2 cross-learning) is scored on joint origins, timestamps every
symbol has, since its forecast for one symbol uses the others at the same time; so is every model
with ``joint_origins``. The result records which origins each model used.

The context of origin t is the bars up to and including t (nothing later is ever sliced in), and
the outcome at horizon h is the symbol's h-th bar after t. Models with a batched array core
forecast ``chunk`` origin rows x symbols per call, except models that share across series, which
get one call per origin. Window baselines receive ``window + 1`` bars even above ``context_length``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mqc.core.errors import ConfigError
from mqc.core.forecast.config import EvalConfig, ForecastConfig
from mqc.core.forecast.model import frame_array, series_key
from mqc.core.forecast.origins import OriginGrid, origin_grid, split_origins
from mqc.core.forecast.scoring import score
from mqc.core.progress import NULL, Progress

__all__ = ["EvalResult", "OriginGrid", "evaluate", "joint_labels", "model_configs", "origin_grid", "split_origins"]

JOINT_WHY = (
    "--joint-origins (or [forecast_eval] joint_origins) asks for origins every symbol has; drop it to score each symbol"
    " on its own"
)
PER_SYMBOL = "per-symbol"
JOINT = "joint"
CROSS_LEARNING = "joint (shares across series)"


def sharing_why(labels: Sequence[str]) -> str:
    """Why origins must be joint: the models that share information across the series of a call."""
    return (
        f"{', '.join(labels)} share(s) information across the symbols of a call (cross-learning), so needs origins"
        " every symbol has (or set [forecast] cross_learning = false)"
    )


def _span(grid: OriginGrid, symbol: str | None = None) -> dict:
    ts = grid.timestamps_of(symbol) if symbol else grid.timestamps
    return {
        "n": len(ts) if symbol else int(grid.valid.sum(axis=0).max(initial=0)),
        "first": ts[0].isoformat() if len(ts) else None,
        "last": ts[-1].isoformat() if len(ts) else None,
    }


@dataclass
class EvalResult:
    """Metrics per (model, horizon), per (model, symbol, horizon), plus the raw close forecasts."""

    symbols: tuple[str, ...]
    models: tuple[str, ...]
    horizons: tuple[int, ...]
    quantile_levels: tuple[float, ...]
    grid: OriginGrid  # the origins of the models not marked otherwise in ``origin_modes``
    rows: list[dict] = field(default_factory=list)
    per_symbol: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    configs: dict[str, dict] = field(default_factory=dict)
    grids: dict[str, OriginGrid] = field(default_factory=dict)  # model -> the origins it was scored on
    origin_modes: dict[str, str] = field(
        default_factory=dict
    )  # model -> per-symbol | joint | joint (shares across series)
    predictions: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # model -> close quantiles [O, S, Q, Hmax] (NaN: no origin)
    actual: dict[str, np.ndarray] = field(default_factory=dict)  # model -> [O, S, Hmax]
    last_close: dict[str, np.ndarray] = field(default_factory=dict)  # model -> [O, S]
    requested_origins: int | None = None  # what was asked for; the grid holds what the data allowed
    settings_files: dict[str, dict[str, str | None]] = field(
        default_factory=dict
    )  # model -> symbol -> hyperparams file

    @property
    def origins(self) -> pd.DatetimeIndex:
        """Every origin timestamp of ``grid`` (a joint grid's rows; with per-symbol origins, their union)."""
        return self.grid.timestamps

    def metric(self, model: str, name: str, symbol: str | None = None) -> float | None:
        """Mean of one metric over the scored horizons (for one symbol, or pooled)."""
        rows = [
            r
            for r in (self.per_symbol if symbol else self.rows)
            if r["model"] == model and (symbol is None or r["symbol"] == symbol)
        ]
        vals = [r[name] for r in rows if r.get(name) is not None]
        return float(np.mean(vals)) if vals else None

    def to_dict(self) -> dict:
        span = _span(self.grid)
        return {
            "symbols": list(self.symbols),
            "models": list(self.models),
            "horizons": list(self.horizons),
            "quantile_levels": list(self.quantile_levels),
            "n_origins": span["n"],
            "requested_origins": self.requested_origins,
            "first_origin": span["first"],
            "last_origin": span["last"],
            "origins": {
                "mode": JOINT if self.grid.joint else PER_SYMBOL,
                "per_symbol": {s: _span(self.grid, s) for s in self.symbols},
            },
            "origin_modes": self.origin_modes,
            "joint_origins_by_model": {m: _span(g) for m, g in self.grids.items() if g is not self.grid},
            "seconds": self.seconds,
            "configs": self.configs,
            "settings_files": self.settings_files,
            "results": self.rows,
            "per_symbol": self.per_symbol,
        }


def _per_symbol(
    spec: ForecastConfig | Mapping[str, ForecastConfig], symbols: Sequence[str]
) -> dict[str, ForecastConfig]:
    if isinstance(spec, ForecastConfig):
        return dict.fromkeys(symbols, spec)
    missing = [s for s in symbols if s not in spec]
    if missing:
        raise ConfigError(f"no settings for {', '.join(missing)}", hint="give a config for every evaluated symbol")
    return {s: spec[s] for s in symbols}


def _forecast_close(
    model,
    cfg: ForecastConfig,
    arrays: list[np.ndarray],
    frames,
    grid: OriginGrid,
    rows: np.ndarray,
    H: int,
    levels,
    shares: bool,
) -> np.ndarray:
    """Close quantiles ``[len(rows), S, Q, H]`` from the origin rows ``rows`` of ``grid`` (NaN where a symbol has no
    origin).

    A model whose series inform each other within a call (``shares``) gets one call per origin row
    (a joint grid: one timestamp): mixing origins would let a later origin's context (an earlier
    origin's future) reach the earlier forecast. Other array models forecast every (origin, symbol)
    of ``rows`` in one call, whatever the timestamps.
    """
    S = len(grid.symbols)
    out = np.full((len(rows), S, len(levels), H), np.nan)
    valid = grid.valid
    if hasattr(model, "predict_arrays"):
        # Window baselines need more than context_length bars (window + 1 closes).
        L = getattr(model, "context_bars", cfg.context_length)
        groups = [[o] for o in rows] if shares else [list(rows)]
        for group in groups:
            cells = [(k, j) for k, o in enumerate(group) for j in range(S) if valid[o, j]]
            if not cells:
                continue
            ctx = [arrays[j][max(0, grid.index[group[k], j] - L + 1) : grid.index[group[k], j] + 1] for k, j in cells]
            keys = [series_key(grid.symbols[j], grid.stamps[group[k], j]) for k, j in cells]
            q, _ = model.predict_arrays(ctx, H, levels, keys=keys)
            k0 = rows.tolist().index(group[0])
            ks, js = (np.array(x) for x in zip(*cells, strict=True))
            out[k0 + ks, js] = q[..., 3]
        return out
    L = cfg.context_length
    for k, o in enumerate(rows):  # models without an array core (e.g. external ones): per-row predict
        cols = [j for j in range(S) if valid[o, j]]
        ctx = {
            grid.symbols[j]: frames[grid.symbols[j]].iloc[max(0, grid.index[o, j] - L + 1) : grid.index[o, j] + 1]
            for j in cols
        }
        fc = model.predict(ctx, H, levels)
        for j in cols:
            out[k, j] = fc[grid.symbols[j]].quantiles[:, :, 3]
    return out


def _make(factory):
    from mqc.core.forecast import base

    def make(name: str, cfg: ForecastConfig):
        m = (factory or (lambda n, c: base.create(n, config=c)))(name, cfg)
        if hasattr(m, "want_samples"):
            m.want_samples = False  # only quantiles are scored
        return m

    return make


def _plans(per_symbol: Mapping[str, Mapping[str, ForecastConfig]], symbols: Sequence[str], make) -> dict[str, list]:
    """label -> [(config, forecaster, symbol columns, shares across those series)]: one forecaster per distinct
    config."""
    plans: dict[str, list] = {}
    for label, cfgs in per_symbol.items():
        groups: dict[ForecastConfig, list[int]] = {}
        for j, s in enumerate(symbols):
            groups.setdefault(cfgs[s], []).append(j)
        plans[label] = []
        for cfg, cols in groups.items():
            m = make(cfg.model, cfg)
            plans[label].append((cfg, m, cols, bool(getattr(m, "shares_across_series", False)) and len(cols) > 1))
    return plans


def joint_labels(
    models: Mapping[str, ForecastConfig | Mapping[str, ForecastConfig]], symbols: Sequence[str], *, factory=None
) -> list[str]:
    """The model labels that share information across the symbols of a call (they need joint origins).

    Raises:
        ConfigError: unknown model, missing settings; ArtifactNotFound: missing weights.
    """
    per_symbol = {label: _per_symbol(spec, list(symbols)) for label, spec in models.items()}
    plans = _plans(per_symbol, list(symbols), _make(factory))
    return [label for label, plan in plans.items() if any(p[3] for p in plan)]


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
        eval_config: origins, horizons, quantile levels, ``joint_origins``.
        grid: origins to use (default: ``origin_grid`` from ``eval_config``, per symbol unless
            ``joint_origins``). A model that shares across series is scored on the origins of
            ``grid`` common to every symbol when ``grid`` is not joint itself.
        progress: sink advanced once per origin row.
        factory: ``(name, config) -> forecaster`` (default: the registry).
        settings_files: label -> symbol -> hyperparams file behind the config (recorded in the result).

    Returns:
        EvalResult with pooled and per-symbol metrics, the origins each model used and the raw forecasts.

    Raises:
        DataError: too little history for the origins (or no common origin for a model that needs
        one); ConfigError: no symbols or models, unknown model, missing settings.
    """
    from mqc.core.config import to_dict
    from mqc.core.forecast.calendar import with_learned_season

    if not frames:
        raise ConfigError("no symbols to evaluate", hint="name at least one, e.g. mqc forecast eval AAPL MSFT")
    if not models:
        raise ConfigError("no models to evaluate", hint="--models naive,ewma-vol")
    make = _make(factory)
    levels = tuple(sorted(eval_config.quantile_levels))
    H = eval_config.max_horizon
    symbols = tuple(frames)
    per_symbol = {label: _per_symbol(spec, symbols) for label, spec in models.items()}
    min_ctx = max(c.min_context for cfgs in per_symbol.values() for c in cfgs.values())
    plans = _plans(per_symbol, symbols, make)
    sharing = [label for label, plan in plans.items() if any(p[3] for p in plan)]
    main = grid or origin_grid(
        frames, eval_config.origins, eval_config.step, min_ctx, H, joint=eval_config.joint_origins, why=JOINT_WHY
    )
    joint = main
    if sharing and not main.joint:
        why = sharing_why(sharing)
        if grid is None:
            joint = origin_grid(frames, eval_config.origins, eval_config.step, min_ctx, H, joint=True, why=why)
        else:
            joint = grid.common()
    grids = {label: joint if label in sharing else main for label in models}
    modes = {label: CROSS_LEARNING if label in sharing else (JOINT if main.joint else PER_SYMBOL) for label in models}
    # Settings a symbol's own history decides (an unset seasonal-naive period) are learned from the
    # bars up to its first origin only: no forecast may depend on a bar after its origin.
    for label, cfgs in per_symbol.items():
        g = grids[label]
        first = {s: int(g.index[g.valid[:, j], j][0]) + 1 for j, s in enumerate(symbols) if g.valid[:, j].any()}
        learned = {
            s: with_learned_season(c, frames[s].iloc[: first[s]], s) if s in first else c for s, c in cfgs.items()
        }
        if learned != cfgs:
            per_symbol[label] = learned
            plans[label] = _plans({label: learned}, symbols, make)[label]
    arrays = [frame_array(frames[s]) for s in symbols]
    outcomes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for g in grids.values():
        if id(g) not in outcomes:
            safe = np.where(g.valid, g.index, 0)
            act = np.stack(
                [arrays[j][safe[:, j][:, None] + np.arange(1, H + 1)[None, :], 3] for j in range(len(symbols))], axis=1
            )  # [O, S, H]
            lst = np.stack([arrays[j][safe[:, j], 3] for j in range(len(symbols))], axis=1)  # [O, S]
            outcomes[id(g)] = (np.where(g.valid[..., None], act, np.nan), np.where(g.valid, lst, np.nan))
    preds = {label: np.full((len(grids[label].index), len(symbols), len(levels), H), np.nan) for label in models}
    seconds = dict.fromkeys(models, 0.0)
    n_rows = max(len(g.index) for g in grids.values())
    progress.start(n_rows, f"forecast eval: {len(models)} model(s) x {len(symbols)} symbol(s) x {n_rows} origins")
    try:
        for start in range(0, n_rows, eval_config.chunk):
            for label, plan in plans.items():
                g = grids[label]
                rows = np.arange(start, min(len(g.index), start + eval_config.chunk))
                if not len(rows):
                    continue
                t0 = time.perf_counter()
                for cfg, m, cols, shares in plan:
                    sub = g if len(cols) == len(symbols) else g.columns(cols)
                    block = _forecast_close(m, cfg, [arrays[j] for j in cols], frames, sub, rows, H, levels, shares)
                    preds[label][rows[:, None], np.asarray(cols)[None, :]] = block
                seconds[label] += time.perf_counter() - t0
            progress.advance(min(eval_config.chunk, n_rows - start))
    finally:
        progress.finish()
    result = EvalResult(
        symbols,
        tuple(models),
        tuple(eval_config.horizons),
        levels,
        main,
        seconds=seconds,
        grids=grids,
        origin_modes=modes,
        requested_origins=main.requested,
    )
    for label, cfgs in per_symbol.items():
        g = grids[label]
        actual, last = outcomes[id(g)]
        dicts = {s: {k: v for k, v in to_dict(cfgs[s]).items() if k != "hyperparams_dir"} for s in symbols}
        distinct = {repr(d) for d in dicts.values()}
        # One shared config is stored as is; symbols with their own settings get one entry each.
        result.configs[label] = next(iter(dicts.values())) if len(distinct) == 1 else {"per_symbol": dicts}
        result.settings_files[label] = {s: (settings_files or {}).get(label, {}).get(s) for s in symbols}
        result.predictions[label], result.actual[label], result.last_close[label] = preds[label], actual, last
        cross = g.cross_rows
        for h in eval_config.horizons:
            p, a = preds[label][:, :, :, h - 1], actual[:, :, h - 1]
            result.rows.append({"model": label, "horizon": h, **score(p, a, last, levels, g.valid, cross)})
            for j, s in enumerate(symbols):
                keep = g.valid[:, j]
                result.per_symbol.append(
                    {
                        "model": label,
                        "symbol": s,
                        "horizon": h,
                        **score(p[keep, j : j + 1], a[keep, j : j + 1], last[keep, j : j + 1], levels),
                    }
                )
    return result


def model_configs(
    names: Sequence[str], base_config: ForecastConfig, quantile_levels: tuple[float, ...]
) -> dict[str, ForecastConfig]:
    """One config per model name, sharing ``base_config``'s settings and the eval quantile levels."""
    import dataclasses

    return {n: dataclasses.replace(base_config, model=n, quantile_levels=quantile_levels) for n in names}
