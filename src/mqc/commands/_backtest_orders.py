"""``mqc backtest --strategy``: the flag -> config mapping of order strategies, and their summary lines."""

from __future__ import annotations

from typing import Any

import typer

from mqc.commands._console import fmt_pct, out, state


def order_backtest(
    strategy: str,
    model: str | None,
    model_path: str | None,
    order_flags: dict[str, Any],
    data: Any,
    cfg: Any,
    sources: dict[str, str],
    split_cfg: Any,
    market: Any,
    out_dir: str | None,
    fit_windows: bool,
    progress: Any,
) -> Any:
    """Resolve ``[orders]`` and ``[forecast]`` (flags over profile) and run ``run_order_backtest``."""
    from mqc.core.backtest.config import OrderBacktestConfig
    from mqc.core.backtest.order_runner import run_order_backtest
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.forecast.service import check_model
    from mqc.core.profiles import resolve_with_profile

    profile = state().profile
    ocfg = resolve_with_profile(OrderBacktestConfig, profile, flags={**order_flags, "strategy": strategy}).value
    fres = resolve_with_profile(
        ForecastConfig, profile, flags=dict(model=model, model_id=model_path, timeframe=data.timeframe)
    )
    check_model(fres.value.model, fres.sources.get("model", "default"), allow_best=True)
    forecast: Any = fres.value
    if forecast.model == "best":
        from mqc.core.forecast.service import resolve_symbol

        if not data.symbols:
            raise typer.BadParameter("--model best needs the symbols named", param_hint="--symbols")
        flags = dict(model="best", model_id=model_path, timeframe=data.timeframe)
        forecast = {s.upper(): resolve_symbol(s.upper(), profile, flags)[0] for s in data.symbols}
    return run_order_backtest(
        strategy,
        forecast,
        data,
        cfg,
        ocfg,
        market,
        split_cfg=split_cfg,
        out_dir=out_dir,
        fit_windows=fit_windows,
        progress=progress,
    )


def render_orders(report: Any) -> None:
    """Fill statistics, the intrabar comparison and the fits, under the summary table."""
    o = report.orders
    f = o["fills"]
    rate = "-" if f["fill_rate"] is None else fmt_pct(f["fill_rate"])
    imp = f["limit_price_improvement_bps"]
    out.print(
        f"orders: {f['orders']} placed, {f['fills']} fills (fill rate {rate}); limit fills beat their limit by "
        f"{'-' if imp is None else f'{imp:.1f}'} bps on average; "
        f"intrabar rule decided {f['intrabar_decided_bars']} bar(s) "
        f"({f['intrabar_decided_share']:.1%} of symbol-bars)"
    )
    cmp_ = o["intrabar_comparison"]
    rules = [k for k in cmp_ if k != "note"]
    parts = [
        f"{r}{' (used)' if r == o['intrabar'] else ''} {fmt_pct(cmp_[r]['total_return'])}, "
        f"Sharpe {cmp_[r]['sharpe']:.2f}"
        for r in rules
    ]
    out.print("intrabar rule, same orders and bars: " + "; ".join(parts))
    fit = o["fit"]
    if fit["fits"]:
        first, last = fit["fits"][0], fit["fits"][-1]
        out.print(
            f"parameters: {fit['method']} fit on the {fit['fit_window']} bars before each re-fit "
            f"({len(fit['fits'])} fit(s), first on {first['fit_bars'][0][:10]} .. {first['fit_bars'][1][:10]}, "
            f"last on {last['fit_bars'][0][:10]} .. {last['fit_bars'][1][:10]}); see report.json orders.fit"
        )
    else:
        out.print(f"parameters: {fit['method']}: {fit['defaults'] or 'none'}")
