"""Next-bar forecasts at every bar of a panel, causal by construction, cached on disk.

At each bar t (the forecast origin) a registered forecaster sees the panel's bars ``<= t`` of each
symbol (its ``context_bars`` last ones) and forecasts bar t+1. What order strategies read are moves
from the origin's close, computed directly from the forecast of the next bar,

    high[t] = H_{t+1} / C_t - 1,   low[t] = L_{t+1} / C_t - 1,   close[t] = C_{t+1} / C_t - 1,

never re-based from another series. Models with a batched array core forecast many origins in one
call (``chunk`` origins x symbols), except those that share across series (Chronos-2 cross-learning),
which get one call per origin; other models get one ``predict`` per origin.

Forecasts are cached per (model, settings, symbols, data): ``<cache dir>/bar_forecasts/<model>/<key>.npz``,
so a second backtest with other strategy settings does not forecast again. Every bar of the panel
is forecast (a forecast at t uses bars <= t only, so later bars of the same file cannot leak in).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mqc.core import atomic, paths
from mqc.core.config import to_dict
from mqc.core.data.panel import Panel
from mqc.core.errors import ConfigError
from mqc.core.forecast import base
from mqc.core.forecast.config import ForecastConfig
from mqc.core.forecast.model import series_key
from mqc.core.progress import NULL, Progress

# Fields a forecaster produces unless it says otherwise (``forecast_fields`` on the model class).
ALL_FIELDS = ("open", "high", "low", "close")
CACHE_VERSION = 1


@dataclass
class BarForecasts:
    """Per bar t and symbol, the median forecast of bar t+1 as a move from close t (NaN: none yet)."""

    model: str
    high: np.ndarray  # [T, A]
    low: np.ndarray  # [T, A]
    close: np.ndarray  # [T, A]
    first: int  # first bar with a forecast for every symbol
    cache_path: Path | None = None
    from_cache: bool = False

    def field(self, name: str) -> np.ndarray:
        return {"high": self.high, "low": self.low, "close": self.close}[name]


def model_fields(model: object) -> tuple[str, ...]:
    """The OHLC fields a forecaster forecasts (``forecast_fields``; default all four)."""
    return tuple(getattr(model, "forecast_fields", ALL_FIELDS))


def check_fields(model_name: str, fields: tuple[str, ...], needs: tuple[str, ...], strategy: str) -> None:
    """Raise ConfigError when a forecaster lacks a field a strategy needs (e.g. next-bar high/low)."""
    missing = [f for f in needs if f not in fields]
    if missing:
        raise ConfigError(
            f"model {model_name!r} does not forecast the next bar's {' and '.join(missing)}, "
            f"which strategy {strategy!r} needs (it forecasts {', '.join(fields) or 'nothing'})",
            hint="pick a model with OHLC forecasts (mqc forecast models), "
            "or a strategy that uses the close only (--strategy simple)",
        )


def _read_cache(
    path: Path, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]] | None:
    """The cached (high, low, close, fields) at ``path``, or None when there is none of this shape or
    it cannot be read (a torn or damaged file: the caller recomputes and replaces it)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            h, lo, c = z["high"], z["low"], z["close"]
            fields = tuple(str(f) for f in z["fields"])
    except (OSError, ValueError, KeyError):
        return None
    return (h, lo, c, fields) if h.shape == shape else None


def _key(panel: Panel, cfg: ForecastConfig) -> str:
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("hyperparams_dir", "device", "threads")}
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "settings": settings}, sort_keys=True, default=str).encode())
    h.update(panel.fingerprint.encode())
    return h.hexdigest()[:24]


def _contexts(panel: Panel, L: int) -> np.ndarray:
    """``[T, A, L, 5]`` view: per bar and symbol the last ``L`` bars up to it, NaN left-padded."""
    vals = panel.values.astype(np.float64)
    pad = np.full((L - 1, *vals.shape[1:]), np.nan)
    full = np.concatenate([pad, vals], axis=0)
    win = np.lib.stride_tricks.sliding_window_view(full, L, axis=0)  # [T, A, 5, L]
    return win.transpose(0, 1, 3, 2)


def context_bars(model: object, cfg: ForecastConfig) -> int:
    """Bars of history one origin's forecast reads (its last ones): the model's window."""
    if hasattr(model, "predict_arrays"):
        return int(getattr(model, "context_bars", cfg.context_length))
    return cfg.context_length


def forecast_rows(
    model, cfg: ForecastConfig, panel: Panel, origins: np.ndarray, *, chunk: int = 256, progress: Progress = NULL
) -> np.ndarray:
    """The median next-bar OHLC forecast ``[len(origins), A, 4]`` at each origin (a row of ``panel``)
    from its last ``context_bars`` bars (NaN left-padded before the panel's first bar).

    ``cfg`` has ``prediction_length`` 1 and the 0.5 level (``next_bar_forecasts`` sets them). The one
    forecasting step of a whole panel and of a live bar (``order_decide``): a live bar forecasts its
    own origin on the trailing ``context_bars`` bars, and gets what the whole panel's call gets there."""
    levels = cfg.quantile_levels
    med = levels.index(0.5)
    A = panel.n_assets
    out = np.full((len(origins), A, 4), np.nan)
    if hasattr(model, "predict_arrays"):
        L = context_bars(model, cfg)
        ctx = _contexts(panel, L)
        ns = panel.timestamps.astype("datetime64[ns]").astype(np.int64)
        shares = bool(getattr(model, "shares_across_series", False)) and A > 1
        step = 1 if shares else max(1, chunk // max(A, 1))
        for i in range(0, len(origins), step):
            rows = origins[i : i + step]
            x = ctx[rows].reshape(len(rows) * A, L, 5)
            keys = [series_key(s, int(ns[t])) for t in rows for s in panel.symbols]
            q, _ = model.predict_arrays(x, 1, levels, keys=keys)
            out[i : i + len(rows)] = q[:, med, 0, :].reshape(len(rows), A, 4)
            progress.advance(len(rows))
        return out
    import pandas as pd

    frames = {
        s: pd.DataFrame(
            {
                "timestamp": pd.to_datetime(panel.timestamps, utc=True),
                **{f: panel.values[:, j, k] for k, f in enumerate(("open", "high", "low", "close", "volume"))},
            }
        )
        for j, s in enumerate(panel.symbols)
    }
    L = cfg.context_length
    for i, t in enumerate(origins):
        ctx_frames = {s: f.iloc[max(0, t - L + 1) : t + 1] for s, f in frames.items()}
        fc = model.predict(ctx_frames, 1, levels)
        for j, s in enumerate(panel.symbols):
            out[i, j] = fc[s].quantiles[med, 0, :]
        progress.advance(1)
    return out


def to_moves(out: np.ndarray, close: np.ndarray, fields: tuple[str, ...]) -> np.ndarray:
    """OHLC forecasts ``[..., A, 4]`` as moves from the origin's close (``[..., A]``); NaN where the
    model forecasts no such field."""
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = out / close[..., None] - 1.0
    for k, f in enumerate(ALL_FIELDS):
        if f not in fields:
            moves[..., k] = np.nan
    return moves


def next_bar_forecasts(
    panel: Panel,
    cfg: ForecastConfig,
    *,
    chunk: int = 256,
    cache: bool = True,
    progress: Progress = NULL,
    factory=None,
    needs: tuple[str, ...] = (),
    strategy: str = "",
) -> BarForecasts:
    """Forecast bar t+1 from bars <= t at every bar t with ``cfg.min_context`` bars of history.

    Args:
        panel: aligned bars.
        cfg: the forecaster and its settings (``prediction_length`` is forced to 1, the median is used).
        chunk: origins per batched call.
        cache: read/write the on-disk cache.
        progress: advanced once per chunk of origins.
        factory: ``(name, config) -> forecaster`` (default: the registry).
        needs, strategy: the fields the strategy reads (checked against the model's before any forecast).
    Returns:
        BarForecasts.
    Raises:
        ConfigError: unknown model, or one that lacks a needed field; ArtifactNotFound: missing weights.
    """
    import dataclasses

    levels = tuple(sorted(set(cfg.quantile_levels) | {0.5}))
    cfg = dataclasses.replace(cfg, prediction_length=1, quantile_levels=levels)
    key = _key(panel, cfg)
    path = paths.cache_dir() / "bar_forecasts" / cfg.model / f"{key}.npz"
    T, A = len(panel), panel.n_assets
    first = max(cfg.min_context - 1, 0)
    cached = _read_cache(path, (T, A)) if cache else None
    if cached is not None:
        h, lo, c, cached_fields = cached
        check_fields(cfg.model, cached_fields, needs, strategy)
        return BarForecasts(cfg.model, h, lo, c, first, path, True)
    model = (factory or (lambda n, c: base.create(n, config=c)))(cfg.model, cfg)
    fields = model_fields(model)
    check_fields(cfg.model, fields, needs, strategy)
    if hasattr(model, "want_samples"):
        model.want_samples = False
    out = np.full((T, A, 4), np.nan)
    origins = np.arange(first, T)
    progress.start(len(origins), f"forecasting {cfg.model}: {A} symbol(s) x {len(origins)} bars")
    out[origins] = forecast_rows(model, cfg, panel, origins, chunk=chunk, progress=progress)
    progress.finish()
    moves = to_moves(out, panel.close, fields)
    h, lo, c = moves[:, :, 1], moves[:, :, 2], moves[:, :, 3]
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, high=h, low=lo, close=c, fields=np.array(fields))
    return BarForecasts(cfg.model, h, lo, c, first, path if cache else None, False)
