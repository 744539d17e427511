"""Sweeps over evaluations that train nothing: ``mqc sweep backtest --strategy NAME``.

A trial of kind ``backtest`` is one ``run_order_backtest`` (the function ``mqc backtest --strategy``
runs, so there is no second evaluation path) of the trial's ``[orders]`` / ``[forecast]`` /
``[market]`` / ``[split]`` / ``[data]`` tables on the **val** split, its report written to the
trial's folder; its row's ``val`` are the report's metrics. Everything else is the sweep's: the grid
or the Optuna search, resume, both backends, selection on val only, and the chosen configuration's
test figures, computed once with the deflated Sharpe ratio counting every configuration tried.

Forecaster settings searched this way (``forecast.model``, ``forecast.context_length``, ...) are
chosen by what their forecasts trade on val. A trial of kind ``forecast`` (``mqc sweep forecast``)
chooses them by forecast error instead: each symbol scored alone by ``tuning.score_symbols``, the
per-setting step of ``mqc forecast tune`` (the same rolling origins, the validation ones only);
lower is better for the error metrics (CRPS, MASE, ...), and its test figures carry the number of
configurations tried but no deflated Sharpe ratio (they are not returns).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mqc.core.sweep import forecast_kind


@dataclass(frozen=True)
class EvalKind:
    """A sweep kind that evaluates a configuration instead of training one."""

    name: str
    tables: Callable[[], list[type]]  # the config classes a trial resolves
    own: str  # the kind's own table (its ``seed`` is the sweep file's ``seed``)
    metric: str  # default val metric to select on (higher is better)
    run: Callable[[Any, dict[str, Any], Any], dict[str, Any]]  # (spec, tables, panel) -> row fields
    test: Callable[..., Any]  # (tables, n_configs, out_dir, panel, bootstrap_samples) -> report
    # keys that are assumptions about the market or the simulator, not choices: an axis over them
    # would pick the most flattering one on val (a table name alone: every key of it but `allowed`)
    assumptions: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    why: str = (
        "is an assumption about fills or costs, not a setting to choose: searched on val, the most flattering value"
        " would win"
    )
    hint: str = "give {key} one value (a scalar), and compare assumptions with separate sweeps"
    # (base tables, space) -> what each trial gets as its panel (None: the aligned panel of [data])
    load: Callable[[dict[str, Any], Any], Any] | None = None
    # metric -> lower is better (raises for a metric the kind cannot select on); None: higher is better
    lower: Callable[[str], bool] | None = None
    default_metric: Callable[[dict[str, Any], Any], str] | None = None  # from the base tables (else ``metric``)
    shown: tuple[str, ...] = ()  # figures in the summary and test.json besides the metric (() = the sweep's)
    note: str = "computed once, on the test split, for the configuration chosen on val only"

    def check_axes(self, keys: list[str], where: str) -> None:
        """Refuse a grid axis or a range over an assumption.

        Raises:
            ConfigError: naming the key and the fix (a scalar).
        """
        for key in keys:
            table = key.split(".", 1)[0]
            if key in self.allowed or not (key in self.assumptions or table in self.assumptions):
                continue
            from mqc.core.errors import ConfigError

            raise ConfigError(f"{where}: {key} {self.why}", hint=self.hint.format(key=key))


def _backtest_tables() -> list[type]:
    from mqc.core.backtest.config import OrderBacktestConfig
    from mqc.core.data.config import DataConfig, SplitConfig
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.market.config import MarketConfig

    return [DataConfig, MarketConfig, SplitConfig, OrderBacktestConfig, ForecastConfig]


def _order_report(tables: dict[str, Any], split: str, out_dir: Path, panel: Any, **bt: Any) -> Any:
    from mqc.core.backtest.config import BacktestConfig
    from mqc.core.backtest.order_runner import run_order_backtest

    if tables["forecast"].model == "best":
        from mqc.core.errors import ConfigError

        raise ConfigError(
            "forecast.model = 'best' is a per-symbol choice already made",
            hint='sweep named models (forecast.model = ["naive", "drift"])',
        )
    cfg = BacktestConfig(split=split, plots=False, write_trades=False, **bt)
    return run_order_backtest(
        tables["orders"].strategy,
        tables["forecast"],
        tables["data"],
        cfg,
        tables["orders"],
        tables["market"],
        split_cfg=tables["split"],
        out_dir=str(out_dir),
        fit_windows=True,
        panel=panel,
    )


def _numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _backtest_trial(spec: Any, tables: dict[str, Any], panel: Any) -> dict[str, Any]:
    out = Path(spec.save_dir) / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rep = _order_report(tables, "val", out, panel, bootstrap_samples=0)
    return {"run_dir": str(rep.out_dir or out), "val": _numeric(rep.metrics)}


def _backtest_test(tables: dict[str, Any], n_configs: int, out_dir: Path, panel: Any, bootstrap_samples: int) -> Any:
    return _order_report(tables, "test", out_dir, panel, n_trials=n_configs, bootstrap_samples=bootstrap_samples)


EVALS: dict[str, EvalKind] = {
    "backtest": EvalKind(
        name="backtest",
        tables=_backtest_tables,
        own="orders",
        metric="sharpe",
        run=_backtest_trial,
        test=_backtest_test,
        assumptions=("market", "orders.intrabar", "orders.engine", "orders.participation"),
        allowed=("market.allow_short",),
    ),
    "forecast": EvalKind(
        name="forecast",
        tables=forecast_kind.tables,
        own="forecast",
        metric="crps",
        run=forecast_kind.trial,
        test=forecast_kind.on_test,
        # the yardstick, not settings: the model searched, its bars, the quantiles asked and the origins
        # and metric of the evaluation (searched on val, the easiest yardstick would win)
        assumptions=("forecast_eval", "forecast.model", "forecast.timeframe", "forecast.quantile_levels"),
        why=(
            "is part of the yardstick (the model searched, its bars, the origins and how they are scored), not a"
            " setting to choose: searched on val, the easiest yardstick would win"
        ),
        hint=(
            "give {key} one value (a scalar, or its flag: --model, --timeframe, --origins, --metric, ...); compare"
            " models with mqc forecast select, or with separate sweeps"
        ),
        load=forecast_kind.load,
        lower=forecast_kind.lower,
        default_metric=forecast_kind.default_metric,
        shown=forecast_kind.SHOWN,
        note=(
            "computed once, on the test origins, for the configuration chosen on val only; a forecast metric: no"
            " deflated Sharpe ratio, n_configs configurations tried"
        ),
    ),
}


def tester(
    kind: str,
    base: dict[str, dict[str, Any]],
    overrides: dict[str, Any],
    seed_key: str,
    panel: Any,
    bootstrap_samples: int = 2000,
) -> Callable[[dict[str, Any], int, Path], Any]:
    """``summary.test_once``'s backtest of one run of the chosen configuration: the kind's test report
    of the configuration's tables (its seed that run's), written to the given folder."""
    from mqc.core import config
    from mqc.core.sweep.space import apply_overrides

    ek = EVALS[kind]
    known = config.known_tables()

    def run(record: dict[str, Any], n_configs: int, out_dir: Path) -> Any:
        ov = {**overrides, seed_key: record["seed"]} if record.get("seed") is not None else overrides
        values = apply_overrides(base, ov)
        tables = {t: config.from_dict(known[t], v, f"test [{t}]") for t, v in values.items()}
        return ek.test(tables, n_configs, out_dir, panel, bootstrap_samples)

    return run


def no_prune(kind: str, pruner: str) -> None:
    """An evaluation reports once, at its end: nothing to prune on.

    Raises:
        ConfigError: a pruner other than none.
    """
    if pruner != "none":
        from mqc.core.errors import ConfigError

        raise ConfigError(
            f"--pruner {pruner}: a {kind} trial reports its val figures once, at its end (nothing to stop early)",
            hint="drop --pruner",
        )
