"""``mqc backtest --strategy NAME --model MODEL``: forecasts -> walk-forward fit -> orders -> fills -> report.

The same report as a weights backtest (benchmarks, rolling windows, significance, files), plus an
``orders`` section: fill statistics, the parameter fits (which bars each set was fitted on) and the
same replay under the other intrabar rule, so the value of the intrabar assumption is on the page.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mqc.core.backtest.config import BacktestConfig, OrderBacktestConfig
from mqc.core.backtest.engine import BacktestResult
from mqc.core.backtest.order_fit import walk_forward
from mqc.core.backtest.report import BacktestReport, evaluate, write_report
from mqc.core.backtest.segment import select_segment
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.data.panel import Panel, load_panel
from mqc.core.forecast.config import ForecastConfig
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import long_only_mask
from mqc.core.market.ledger import OrderResult, simulate_orders
from mqc.core.market.orders import KIND_NAMES, LIMIT, NONE, STOP
from mqc.core.metrics import compute_metrics
from mqc.core.policy.strategy import order_strategy
from mqc.core.progress import NULL, Progress


@dataclasses.dataclass
class _NoForecasts:
    """What a strategy that reads no forecast (buy-hold) gets."""

    first: int = 0

    def field(self, name: str) -> np.ndarray:  # pragma: no cover - never asked
        raise KeyError(name)


def order_result(res: OrderResult, panel: Panel, lo: int, hi: int) -> BacktestResult:
    """The ledger's series as the weight engine's ``BacktestResult`` (so every report piece applies)."""
    from mqc.core.market.simulator import overnight_mask

    ts = panel.timestamps[lo:hi]
    bpy = panel.bars_per_year
    metrics = compute_metrics(
        res.net_returns,
        bpy,
        turnover=res.turnover,
        gross_leverage=res.gross_leverage,
        final_bar_held=False,
    )
    return BacktestResult(
        timestamps=ts,
        symbols=panel.symbols,
        target_weights=res.weights,
        weights=res.weights,
        trades=res.trades,
        net_returns=res.net_returns,
        gross_returns=res.net_returns + res.costs + res.financing,
        costs=res.costs,
        financing=res.financing,
        turnover=res.turnover,
        gross_leverage=res.gross_leverage,
        long_exposure=res.long_exposure,
        short_exposure=res.short_exposure,
        overnight=overnight_mask(ts),
        bars_per_year=bpy,
        metrics=metrics,
    )


def fill_stats(res: OrderResult, symbols: tuple[str, ...]) -> dict[str, Any]:
    """Orders placed, fills and fill rate (per kind), slippage vs the limit, intrabar decisions."""
    placed = res.orders.kind[:-1]  # the last row's orders would fill after the segment
    filled = res.fill_kind
    by_kind = {}
    for code, name in KIND_NAMES.items():
        if code == NONE:
            continue
        n, f = int((placed == code).sum()), int((filled == code).sum())
        if n or f:
            by_kind[name] = {"orders": n, "fills": f, "fill_rate": f / n if n else None}
    n_orders, n_fills = int((placed != NONE).sum()), int((filled != NONE).sum())
    priced = (filled == LIMIT) | (filled == STOP)
    side = np.sign(res.fill_qty)
    # Price improvement vs the order's price, in bps (> 0: better than the limit, e.g. opened through it).
    improve = (res.fill_limit - res.fill_price) / res.fill_limit * side * 1e4
    lim = improve[filled == LIMIT]
    cells = res.decided.size
    return {
        "orders": n_orders,
        "fills": n_fills,
        "fill_rate": n_fills / n_orders if n_orders else None,
        "by_kind": by_kind,
        "limit_price_improvement_bps": float(lim.mean()) if lim.size else None,
        "stop_slippage_bps": float(-improve[filled == STOP].mean()) if (filled == STOP).any() else None,
        "priced_fills": int(priced.sum()),
        "intrabar_decided_bars": int(res.decided.any(1).sum()),
        "intrabar_decided_share": float(res.decided.sum() / cells) if cells else 0.0,
        "intrabar_gap_total": float(res.gap.sum()),
        "per_symbol_fills": {s: int((filled[:, j] != NONE).sum()) for j, s in enumerate(symbols)},
    }


def fill_rows(res: OrderResult, panel: Panel, lo: int, fees: np.ndarray) -> list[dict[str, Any]]:
    """One dict per fill, in bar then symbol then slot order (the ``"fill"`` lines of trades.jsonl)."""
    rows = []
    for t, a, k in np.argwhere(res.fill_kind != NONE):
        q, p = float(res.fill_qty[t, a, k]), float(res.fill_price[t, a, k])
        lim = res.fill_limit[t, a, k]
        rows.append(
            {
                "timestamp": str(panel.timestamps[lo + t])[:19],
                "symbol": panel.symbols[a],
                "kind": KIND_NAMES[int(res.fill_kind[t, a, k])],
                "side": "buy" if q > 0 else "sell",
                "quantity": q,
                "price": p,
                "order_price": None if np.isnan(lim) else float(lim),
                "notional": abs(q) * p,
                "cost": abs(q) * p * float(fees[a]),
                "intrabar_decided": bool(res.decided[t, a]),
            }
        )
    return rows


@dataclasses.dataclass
class _Merged:
    """Forecasts of symbol groups with their own models (``--model best``), as one object."""

    arrays: dict[str, np.ndarray]
    first: int
    cache_path: Any = None
    from_cache: bool = False

    def field(self, name: str) -> np.ndarray:
        return self.arrays[name]


def panel_forecasts(
    panel: Panel, configs: ForecastConfig | dict[str, ForecastConfig], needs: tuple[str, ...], strategy: str, progress
) -> Any:
    """Next-bar forecasts for every symbol: one model for all, or per symbol (symbols sharing settings share a call)."""
    from mqc.core.forecast.bar_forecasts import next_bar_forecasts

    if isinstance(configs, ForecastConfig):
        return next_bar_forecasts(panel, configs, progress=progress, needs=needs, strategy=strategy)
    groups: dict[ForecastConfig, list[str]] = {}
    for s in panel.symbols:
        groups.setdefault(configs[s], []).append(s)
    T, A = len(panel), panel.n_assets
    arrays = {k: np.full((T, A), np.nan) for k in ("high", "low", "close")}
    first, cached = 0, True
    for cfg, syms in groups.items():
        fc = next_bar_forecasts(panel.select(syms), cfg, progress=progress, needs=needs, strategy=strategy)
        cols = [panel.symbols.index(s) for s in syms]
        for k in arrays:
            arrays[k][:, cols] = fc.field(k)
        first, cached = max(first, fc.first), cached and fc.from_cache
    return _Merged(arrays, first, None, cached)


def place_orders(
    spec: Any,
    forecast_cfg: ForecastConfig | dict[str, ForecastConfig],
    panel: Panel,
    market: MarketConfig,
    ocfg: OrderBacktestConfig,
    lo: int,
    hi: int,
    progress: Progress = NULL,
) -> tuple[Any, Any, Any]:
    """The orders ``[:hi]`` a strategy places (rows ``>= lo``), with its walk-forward fit and forecasts.

    The one path from bars to orders: ``mqc backtest --strategy`` and ``mqc trade --strategy`` call it."""
    if spec.needs:
        fc = panel_forecasts(panel, forecast_cfg, spec.needs, spec.name, progress)
    else:
        fc = _NoForecasts()
    fit = walk_forward(
        spec, panel.values, panel.timestamps, fc, panel.symbols, panel.asset_classes, market, ocfg, lo, hi
    )
    long_only = long_only_mask(panel.asset_classes, market)
    orders = spec.place(
        panel.close[:hi], _Rows(fc, hi), {k: v[:hi] for k, v in fit.params.items()}, long_only, start=lo
    )
    return orders, fit, fc


def run_order_backtest(
    strategy: str,
    forecast_cfg: ForecastConfig | dict[str, ForecastConfig],
    data_cfg: DataConfig,
    backtest_cfg: BacktestConfig | None = None,
    order_cfg: OrderBacktestConfig | None = None,
    market: MarketConfig | None = None,
    *,
    split_cfg: SplitConfig | None = None,
    out_dir: str | None = None,
    fit_windows: bool | None = None,
    write: bool = True,
    progress: Progress = NULL,
    panel: Panel | None = None,
) -> BacktestReport:
    """Backtest an order strategy on forecasts of ``forecast_cfg.model`` (see the module docstring).

    Raises:
        ConfigError: unknown strategy/model, a model without the forecasts the strategy needs.
        DataError: no bars, an empty segment, too little history for the fit window, bad orders.
    """
    from mqc.core.market.simulator import fee_rates

    cfg = backtest_cfg or BacktestConfig()
    ocfg = order_cfg or OrderBacktestConfig(strategy=strategy)
    spec = order_strategy(strategy)
    mkt = (market or MarketConfig()).with_cost(cfg.cost_bps, cfg.slippage_bps)
    panel = panel if panel is not None else load_panel(config=data_cfg)
    per_symbol = forecast_cfg if isinstance(forecast_cfg, dict) else None
    min_context = max(c.min_context for c in per_symbol.values()) if per_symbol else forecast_cfg.min_context
    lo, hi, seg = select_segment(panel, cfg, split_cfg or SplitConfig(), min_context)
    orders, fit, fc = place_orders(spec, forecast_cfg, panel, mkt, ocfg, lo, hi, progress)
    seg_orders = type(orders)(*(getattr(orders, f.name)[lo:hi] for f in dataclasses.fields(orders)))
    bars, ts, filled = panel.values[lo:hi], panel.timestamps[lo:hi], panel.filled[lo:hi]
    kw = dict(participation=ocfg.participation, no_trade=filled, engine=ocfg.engine)
    res = simulate_orders(bars, ts, seg_orders, panel.asset_classes, mkt, intrabar=ocfg.intrabar, **kw)
    other_rule = "optimistic" if ocfg.intrabar == "conservative" else "conservative"
    other = simulate_orders(bars, ts, seg_orders, panel.asset_classes, mkt, intrabar=other_rule, **kw)
    result = order_result(res, panel, lo, hi)
    other_m = compute_metrics(other.net_returns, panel.bars_per_year, final_bar_held=False)
    if per_symbol:
        model_name = "best (" + ", ".join(f"{s}: {c.model}" for s, c in per_symbol.items()) + ")"
    else:
        model_name = forecast_cfg.model
    source = {
        "type": "orders",
        "name": f"{spec.name} on {model_name}" if spec.needs else spec.name,
        "strategy": spec.name,
        "model": model_name if spec.needs else None,
        "models": {s: c.model for s, c in per_symbol.items()} if per_symbol and spec.needs else None,
        "forecast_cache": str(getattr(fc, "cache_path", None) or "") or None,
        "forecasts_from_cache": bool(getattr(fc, "from_cache", False)),
        "symbols": list(panel.symbols),
    }
    if panel.report.warnings:
        seg.setdefault("warnings", []).extend(f"data: {w}" for w in panel.report.warnings)
    zero = (bars[..., 4] == 0).mean(0)
    for s, share in zip(panel.symbols, zero, strict=True):
        if share > 0.2:
            seg.setdefault("warnings", []).append(
                f"{s}: {share:.0%} of the evaluated bars have zero volume, and nothing fills on a zero-volume bar"
            )
    report = evaluate(
        panel,
        None,
        mkt,
        cfg,
        lo=lo,
        hi=hi,
        source=source,
        segment=seg,
        fit_windows=fit_windows,
        progress=progress,
        result=result,
    )
    stats = fill_stats(res, panel.symbols)
    report.orders = {
        "strategy": spec.name,
        "model": source["model"],
        "intrabar": ocfg.intrabar,
        "participation": ocfg.participation,
        "fills": stats,
        "intrabar_comparison": {
            ocfg.intrabar: {"total_return": result.metrics["total_return"], "sharpe": result.metrics["sharpe"]},
            other_rule: {"total_return": other_m["total_return"], "sharpe": other_m["sharpe"]},
            "note": "the same orders on the same bars under both rules; "
            "the difference is the value of the intrabar assumption",
        },
        "fit": {
            "method": ocfg.fit_method if ocfg.fit_window and spec.params else "none (default parameters)",
            "fit_window": ocfg.fit_window,
            "refit_every": ocfg.refit_every,
            "defaults": spec.defaults,
            "fits": fit.fits,
        },
    }
    report.fills = fill_rows(res, panel, lo, fee_rates(panel.asset_classes, mkt))
    if write:
        write_report(report, out_dir)
    return report


@dataclasses.dataclass
class _Rows:
    """Forecast rows ``[:hi]``: a strategy never reads a forecast made after the segment."""

    fc: Any
    hi: int

    def field(self, name: str) -> np.ndarray:
        return self.fc.field(name)[: self.hi]
