"""``mqc forecast select --by pnl``: per symbol, the forecaster whose forecasts trade best.

Each candidate (model + its resolved per-symbol settings) drives the chosen order strategy on the
symbol's own bars; the choice is the best total return after costs on the **val** split (the
strategy's parameters walk-forward fitted on bars before the ones traded, when a fit window is
set). The test split's figures are recorded beside it, never used to choose. The record is
``best/<SYMBOL>.<tf>.json`` (``forecast.hyperparams``), with every candidate's figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mqc.core.backtest.config import BacktestConfig, OrderBacktestConfig
from mqc.core.backtest.order_runner import run_order_backtest
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.data.panel import load_panel
from mqc.core.errors import DataError
from mqc.core.forecast import hyperparams
from mqc.core.forecast.config import ForecastConfig
from mqc.core.forecast.service import ModelSettings
from mqc.core.forecast.tuning import SelectResult
from mqc.core.market.config import MarketConfig
from mqc.core.progress import NULL, Progress

FIGURES = ("total_return", "sharpe", "max_drawdown", "turnover")


def _figures(rep: Any) -> dict[str, Any]:
    m = rep.metrics
    f = rep.orders["fills"]
    seg = rep.segment
    return {
        **{k: m[k] for k in FIGURES},
        "fills": f["fills"],
        "fill_rate": f["fill_rate"],
        "intrabar_decided_share": f["intrabar_decided_share"],
        "bars": [seg["first"], seg["last"]],
    }


def select_by_pnl(
    symbols: Sequence[str],
    models: Sequence[str],
    settings: ModelSettings,
    base_config: ForecastConfig,
    *,
    strategy: str = "maxdiff",
    order_cfg: OrderBacktestConfig | None = None,
    market: MarketConfig | None = None,
    split_cfg: SplitConfig | None = None,
    data_root: str | None = None,
    progress: Progress = NULL,
) -> SelectResult:
    """Choose each symbol's model by the val-split trading result of ``strategy``; write the records.

    Raises:
        ConfigError: unknown strategy or model, a model without the forecasts the strategy needs.
        DataError: a symbol with too little history (for the forecasts or the fit window).
    """
    ocfg = order_cfg or OrderBacktestConfig(strategy=strategy)
    quick = BacktestConfig(bootstrap_samples=0, plots=False, write_trades=False)
    picks: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for s in symbols:
        panel = load_panel(config=DataConfig(symbols=(s,), timeframe=base_config.timeframe, data_root=data_root))
        val, test = {}, {}
        for m in models:
            cfg = settings.configs[m][s]
            for split, into in (("val", val), ("test", test)):
                rep = run_order_backtest(
                    strategy,
                    cfg,
                    DataConfig(),
                    dataclasses.replace(quick, split=split),
                    ocfg,
                    market,
                    split_cfg=split_cfg,
                    panel=panel,
                    write=False,
                    fit_windows=True,
                    progress=progress,
                )
                into[m] = _figures(rep)
        best = max(models, key=lambda m: (val[m]["total_return"], -models.index(m)))
        if not val:
            raise DataError(f"{s}: no candidate could be scored")
        picks[s] = (best, val, test)
    choices: dict[str, dict[str, Any]] = {}
    for s, (best, val, test) in picks.items():
        cfg = settings.configs[best][s]
        hp = hyperparams.Hyperparams(
            symbol=s,
            model=best,
            config=hyperparams.stored_config(dataclasses.replace(cfg, quantile_levels=base_config.quantile_levels)),
            validation={"by": "pnl", "strategy": strategy, "metric": "total_return", "scores": val},
            test={"by": "pnl", "strategy": strategy, "score": test[best]["total_return"], "scores": test},
            windows={"val": val[best]["bars"], "test": test[best]["bars"]},
            metadata={
                "candidates": list(models),
                "intrabar": ocfg.intrabar,
                "fit_window": ocfg.fit_window,
                "refit_every": ocfg.refit_every,
                "settings_file": settings.files[best].get(s),
                "settings_files": {m: settings.files[m].get(s) for m in models},
            },
        )
        path = hyperparams.save(hp, hyperparams.BEST, base_config.hyperparams_dir)
        choices[s] = {
            "model": best,
            "validation": {m: v["total_return"] for m, v in val.items()},
            "test": {m: v["total_return"] for m, v in test.items()},
            "figures": {"validation": val, "test": test},
            "path": str(path),
            "settings_file": settings.files[best].get(s),
        }
    return SelectResult(f"pnl ({strategy}, total return on val)", choices)
