"""A live bar of an order strategy as a stateful step: what the backtest decides at that bar, without
re-running the history.

``mqc backtest --strategy S --start A`` places the orders of bar t from (1) each symbol's next-bar
forecast at t, (2) the parameters of the walk-forward fit at the latest re-fit point ``r <= t``
(``r = A, A + refit_every, ...``; ``A`` alone when ``refit_every`` is 0), fitted on the forecasts and
bars ``[r - fit_window, r)``, and (3) ``spec.place`` on row t. Forecasts are causal (the one at t
reads the model's ``context_bars`` bars up to t), so a live bar

- forecasts its own origin only (``bar_forecasts.forecast_rows`` on the trailing ``context_bars``
  bars) and keeps the forecasts of earlier bars that a coming fit reads;
- fits only at a re-fit point of the backtest's schedule from the anchor ``A`` (the first bar the
  ledger decided) and keeps the parameters until the next one;
- places row t alone (a row-wise strategy; ``buy-hold`` places the rows from ``A``).

The kept bars are compared with the history each bar: a revised bar (a backfill, a re-download)
drops what was computed from it and recomputes. The result equals the backtest's decision at that
bar exactly for per-row models (every baseline); a neural model's batched call may differ in float
rounding from the backtest's (batches of other origins).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.forecast.config import ForecastConfig
from mqc.core.market.fills import long_only_mask
from mqc.core.market.orders import Orders


@dataclass
class _Fields:
    """Forecast rows as the object ``spec.place`` / ``walk_forward`` read (``field``, ``first``)."""

    arrays: dict[str, np.ndarray]
    first: int = 0

    def field(self, name: str) -> np.ndarray:
        return self.arrays[name]


@dataclass
class _Group:
    """Symbols sharing one forecaster: the model is built once."""

    cfg: ForecastConfig
    cols: list[int]
    model: Any = None
    fields: tuple[str, ...] = ()


@dataclass
class OrderStep:
    """The live state of one ``OrderDecider`` (see the module docstring)."""

    spec: Any
    forecast: Any  # ForecastConfig or {symbol: ForecastConfig}
    order_cfg: Any
    market: Any
    symbols: tuple[str, ...]
    groups: list[_Group] = field(default_factory=list)
    kept_ts: np.ndarray | None = None  # int64 [n]: bars the kept results were computed from
    kept_vals: np.ndarray | None = None  # [n, A, 5]
    fc_from: int = 0  # the first kept forecast row, as a position in ``kept_ts``
    fc: dict[str, np.ndarray] = field(default_factory=dict)  # field -> [n - fc_from, A]
    fit_key: int | None = None  # timestamp (ns) of the re-fit point of ``params``
    params: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [A]
    fit_record: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        from mqc.core.forecast.bar_forecasts import check_fields
        from mqc.core.forecast.base import create

        if not self.spec.needs:
            return
        per = self.forecast if isinstance(self.forecast, dict) else dict.fromkeys(self.symbols, self.forecast)
        by_cfg: dict[ForecastConfig, list[int]] = {}
        for j, s in enumerate(self.symbols):
            by_cfg.setdefault(per[s], []).append(j)
        for cfg, cols in by_cfg.items():
            levels = tuple(sorted(set(cfg.quantile_levels) | {0.5}))
            cfg = dataclasses.replace(cfg, prediction_length=1, quantile_levels=levels)
            model = create(cfg.model, config=cfg)
            if hasattr(model, "want_samples"):
                model.want_samples = False
            from mqc.core.forecast.bar_forecasts import model_fields

            fields = model_fields(model)
            check_fields(cfg.model, fields, self.spec.needs, self.spec.name)
            self.groups.append(_Group(cfg, cols, model, fields))

    # -- forecasts ---------------------------------------------------------------------------------
    @property
    def first(self) -> int:
        """The first bar with a forecast for every symbol (``next_bar_forecasts``' ``first``)."""
        return max([max(g.cfg.min_context - 1, 0) for g in self.groups], default=0)

    def _context(self) -> int:
        from mqc.core.forecast.bar_forecasts import context_bars

        return max([context_bars(g.model, g.cfg) for g in self.groups], default=1)

    def _forecast(self, history: Any, origins: np.ndarray) -> dict[str, np.ndarray]:
        """Forecast rows ``[len(origins), A]`` per field at ``origins`` (positions in ``history``)."""
        from mqc.core.forecast.bar_forecasts import context_bars, forecast_rows, to_moves

        A = len(self.symbols)
        out = {k: np.full((len(origins), A), np.nan) for k in ("high", "low", "close")}
        ok = origins >= self.first
        if not ok.any():
            return out
        for g in self.groups:
            org = origins[origins >= max(g.cfg.min_context - 1, 0)]
            if not org.size:
                continue
            s0 = max(0, int(org[0]) - context_bars(g.model, g.cfg) + 1)
            win = history.slice(s0, int(org[-1]) + 1)
            if len(g.cols) != A:
                win = win.select([self.symbols[j] for j in g.cols])
            rows = forecast_rows(g.model, g.cfg, win, org - s0)
            moves = to_moves(rows, win.close[org - s0], g.fields)
            at = np.searchsorted(origins, org)
            for k, name in ((1, "high"), (2, "low"), (3, "close")):
                out[name][np.ix_(at, g.cols)] = moves[:, :, k]
        return out

    def _check(self, history: Any, ns: np.ndarray) -> int | None:
        """The history position of the first kept forecast row (None: none kept). Kept results whose
        bars were revised (or that the history no longer holds) are dropped, and the fit with them."""
        if self.kept_ts is None:
            return None
        p0 = int(np.searchsorted(ns, self.kept_ts[0]))
        n = len(self.kept_ts)
        same = (
            p0 + n <= len(ns)
            and np.array_equal(ns[p0 : p0 + n], self.kept_ts)
            and np.array_equal(history.values[p0 : p0 + n], self.kept_vals, equal_nan=True)
        )
        if not same:
            self.kept_ts, self.fc, self.fit_key = None, {}, None
            return None
        return p0 + self.fc_from

    def _sync(self, history: Any, ns: np.ndarray, need_from: int, f0: int | None) -> None:
        """Forecasts for rows ``[need_from, t]`` (``self.fc``): the kept ones (rows from ``f0``), the
        others computed."""
        t = len(ns) - 1
        rows = np.arange(need_from, t + 1)
        kept = np.zeros(len(rows), dtype=bool)
        if f0 is not None:
            n_kept = len(next(iter(self.fc.values())))
            kept = (rows >= f0) & (rows < f0 + n_kept)
        missing = rows[~kept]
        new = self._forecast(history, missing) if missing.size else {}
        fc = {}
        for name in ("high", "low", "close"):
            col = np.full((len(rows), len(self.symbols)), np.nan)
            if kept.any():
                col[kept] = self.fc[name][rows[kept] - f0]
            if missing.size:
                col[~kept] = new[name]
            fc[name] = col
        keep_from = max(0, need_from - self._context() + 1)
        self.kept_ts = ns[keep_from:].copy()
        self.kept_vals = np.array(history.values[keep_from:])
        self.fc_from = need_from - keep_from
        self.fc = fc

    # -- the step ------------------------------------------------------------------------------------
    def decide(self, history: Any, anchor: int) -> tuple[Orders, dict[str, Any] | None]:
        """The orders ``[A, K]`` placed at the close of the last bar of ``history``, and the fit they use.

        Args:
            history: Panel of the decider's symbols, bars <= t.
            anchor: position in ``history`` of the first bar of the schedule (the backtest's ``--start``).
        Raises:
            DataError: fewer than ``fit_window`` bars with forecasts before the re-fit point.
        """
        from mqc.core.backtest.order_fit import walk_forward

        spec, cfg = self.spec, self.order_cfg
        ns = np.asarray(history.timestamps).astype("datetime64[ns]").astype(np.int64)
        t = len(ns) - 1
        anchor = min(max(anchor, 0), t)
        fit = bool(cfg.fit_window and spec.params)
        r = anchor + ((t - anchor) // cfg.refit_every) * cfg.refit_every if cfg.refit_every else anchor
        lo_row = r - cfg.fit_window if fit else t
        long_only = long_only_mask(history.asset_classes, self.market)
        if fit and lo_row < self.first:  # the backtest's own error (too little history for the fit)
            walk_forward(spec, history.values, history.timestamps, _Fields({}, self.first), self.symbols,
                         history.asset_classes, self.market, cfg, r, r + 1)  # fmt: skip
        f0 = self._check(history, ns) if spec.needs else None
        refit = fit and self.fit_key != int(ns[r])
        # forecast rows kept: this bar's, a pending fit's and the next re-fit's (each forecast made once)
        need_from = t
        if refit:
            need_from = lo_row
        if fit and cfg.refit_every:
            need_from = min(need_from, r + cfg.refit_every - cfg.fit_window)
        if spec.needs:
            self._sync(history, ns, need_from, f0)
        if refit:
            w0, off = lo_row, lo_row - need_from
            win = _Fields({k: v[off : off + cfg.fit_window + 1] for k, v in self.fc.items()})
            res = walk_forward(spec, history.values[w0 : r + 1], history.timestamps[w0 : r + 1], win, self.symbols,
                               history.asset_classes, self.market, cfg, r - w0, r - w0 + 1)  # fmt: skip
            self.params = {k: v[r - w0].copy() for k, v in res.params.items()}
            rec = dict(res.fits[-1])
            rec["fit_range"], rec["applies_to"] = [lo_row, r], [rec["applies_to"][0], None]
            self.fit_key, self.fit_record = int(ns[r]), rec
        params = {k: v[None, :] for k, v in self.params.items()} if fit else None
        if spec.needs:
            row = _Fields({k: v[-1:] for k, v in self.fc.items()})
            return spec.place(history.close[t : t + 1], row, params, long_only).at(0).copy(), self.fit_record
        # no forecasts (buy-hold): its rows depend on the rows before (its first bar), placed from the anchor
        placed = spec.place(history.close[anchor : t + 1], _Fields({}), None, long_only)
        return placed.at(t - anchor).copy(), None
