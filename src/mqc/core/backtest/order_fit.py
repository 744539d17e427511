"""Walk-forward fit of an order strategy's parameters: only on bars before the ones they trade.

Re-fit points ``r = lo, lo + refit_every, ...`` (one point ``lo`` when ``refit_every`` is 0). The
fit at r replays the strategy on the ``fit_window`` bars ``[r - fit_window, r)``: its orders are
placed at bars ``r - fit_window .. r - 2`` and fill at the latest in bar ``r - 1`` (an order placed at
``r - 1`` would fill at r: it is dropped). The parameters chosen there decide the orders placed at
bars ``[r, next r)``. Each symbol gets its own parameters; a candidate's score is the symbol's
profit over the window (fills at the configured intrabar rule, after costs) per unit of capital.

Candidates are replayed side by side as extra columns of one simulation (a column = one symbol
under one candidate), so a grid of 25 points over 5 symbols is one replay of 125 columns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.backtest.config import OrderBacktestConfig
from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import long_only_mask
from mqc.core.market.ledger import simulate_orders


@dataclass
class _Cols:
    """Forecasts tiled across candidate columns (what ``OrderStrategySpec.place`` reads)."""

    arrays: dict[str, np.ndarray]

    def field(self, name: str) -> np.ndarray:
        return self.arrays[name]


@dataclass
class FitResult:
    params: dict[str, np.ndarray]  # name -> [T, A] value used for the orders placed at each bar
    fits: list[dict[str, Any]] = field(default_factory=list)


def _score(spec, ohlcv, ts, fc, classes, market, cfg, a0, a1, cands: np.ndarray, cols: list[int]) -> np.ndarray:
    """Profit per unit of capital of each (candidate, symbol) over bars ``[a0, a1)``: ``[C, len(cols)]``."""
    n_c, n_s = len(cands), len(cols)
    x = np.tile(ohlcv[a0:a1][:, cols], (1, n_c, 1))
    close = x[..., 3]
    tiled = _Cols({k: np.tile(fc.field(k)[a0:a1][:, cols], (1, n_c)) for k in spec.needs})
    params = {name: np.repeat(cands[:, i], n_s)[None, :] for i, name in enumerate(spec.params)}
    cls = [classes[j] for j in cols] * n_c
    orders = spec.place(close, tiled, params, long_only_mask(cls, market))  # row 0 = the window's first bar
    orders.kind[-1] = 0  # placed at the window's last bar: would fill after it
    res = simulate_orders(x, ts[a0:a1], orders, cls, market, intrabar=cfg.intrabar, participation=cfg.participation)
    fees = np.array([market.one_way_bps(c) / 1e4 for c in cls])
    q, p = res.fill_qty, np.nan_to_num(res.fill_price)
    flow = -(q * p).sum(2) - (np.abs(q) * p).sum(2) * fees[None, :]
    units = np.cumsum(q.sum(2), axis=0)
    pnl = flow.sum(0) + units[-1] * close[-1]
    return (pnl * (n_c * n_s)).reshape(n_c, n_s)  # each column traded 1/(C*S) of the equity


def _grid(spec, points: int) -> np.ndarray:
    """Grid candidates, nearest the defaults first: a tie (e.g. no fill at any candidate) keeps the defaults."""
    axes = [np.linspace(lo, hi, points) if points > 1 else np.array([(lo + hi) / 2]) for lo, hi in spec.params.values()]
    cands = np.array(list(itertools.product(*axes)), dtype=np.float64)
    default = np.array([spec.defaults[k] for k in spec.params])
    return cands[np.argsort(np.abs(cands - default).sum(1), kind="stable")]


def walk_forward(
    spec,
    ohlcv: np.ndarray,
    timestamps: np.ndarray,
    forecasts,
    symbols: tuple[str, ...],
    classes: tuple[str, ...],
    market: MarketConfig,
    cfg: OrderBacktestConfig,
    lo: int,
    hi: int,
) -> FitResult:
    """Fit ``spec``'s parameters walk-forward (see the module docstring) for the segment ``[lo, hi)``.

    Raises:
        DataError: fewer than ``fit_window`` bars with forecasts before the segment.
    """
    T, A = ohlcv.shape[:2]
    params = {k: np.full((T, A), spec.defaults[k], dtype=np.float64) for k in spec.params}
    if not cfg.fit_window or not spec.params:
        return FitResult(params)
    first_ok = max(int(getattr(forecasts, "first", 0)), 0)
    if lo - cfg.fit_window < first_ok:
        have = max(lo - first_ok, 0)
        raise DataError(
            f"{', '.join(symbols)}: {have} bar(s) with forecasts before the segment starts at "
            f"{str(timestamps[lo])[:10]}, the fit window needs {cfg.fit_window}",
            hint=f"pass --fit-window {have} or less (0: no fit, the default parameters), "
            "another --split or a later --start, or load more history",
        )
    step = cfg.refit_every or (hi - lo)
    fits = []
    ts = np.asarray(timestamps)
    for r in range(lo, hi, step):
        a0, stop = r - cfg.fit_window, min(r + step, hi)
        chosen: dict[str, dict[str, float]] = {}
        scores: dict[str, float] = {}
        if cfg.fit_method == "grid":
            cands = _grid(spec, cfg.grid_points)
            sc = _score(spec, ohlcv, ts, forecasts, classes, market, cfg, a0, r, cands, list(range(A)))
            best = sc.argmax(0)
            for j, s in enumerate(symbols):
                chosen[s] = {k: float(cands[best[j], i]) for i, k in enumerate(spec.params)}
                scores[s] = float(sc[best[j], j])
        else:
            from scipy.optimize import differential_evolution

            for j, s in enumerate(symbols):

                def neg(x: np.ndarray, j: int = j, a0: int = a0, r: int = r) -> np.ndarray:
                    c = x.T if x.ndim == 2 else x[None, :]
                    return -_score(spec, ohlcv, ts, forecasts, classes, market, cfg, a0, r, c, [j])[:, 0]

                opt = differential_evolution(
                    neg,
                    list(spec.params.values()),
                    maxiter=cfg.de_maxiter,
                    popsize=8,
                    seed=cfg.seed,
                    polish=False,
                    vectorized=True,
                    updating="deferred",
                )
                chosen[s] = {k: float(v) for k, v in zip(spec.params, opt.x, strict=True)}
                scores[s] = float(-opt.fun)
        for j, s in enumerate(symbols):
            for k, v in chosen[s].items():
                params[k][r:stop, j] = v
        fits.append(
            {
                "fit_bars": [str(ts[a0])[:19], str(ts[r - 1])[:19]],
                "fit_range": [a0, r],
                "applies_to": [str(ts[r])[:19], str(ts[stop - 1])[:19]],
                "method": cfg.fit_method,
                "params": chosen,
                "fit_profit": scores,
            }
        )
    return FitResult(params, fits)
