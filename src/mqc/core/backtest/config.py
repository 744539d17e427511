"""Backtest config (light module: dataclasses only, no numpy/pandas/torch at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.dates import check_range, check_timestamp
from mqc.core.errors import ConfigError


@config_table("backtest")
@dataclass(frozen=True)
class BacktestConfig:
    """What to replay and how to report it."""

    split: Literal["test", "val", "all"] = field(
        default="test", metadata={"help": "segment to evaluate: test, val or all (time split of the loaded bars)"}
    )
    window_length: int = field(
        default=256, metadata={"help": "bars per rolling window (overlapping slices of one replay, not re-fits)"}
    )
    stride: int = field(default=64, metadata={"help": "bars between the starts of consecutive windows"})
    start: str | None = field(
        default=None, metadata={"help": "first timestamp evaluated (inclusive, UTC), within the split"}
    )
    end: str | None = field(
        default=None, metadata={"help": "last timestamp evaluated (inclusive, UTC), within the split"}
    )
    cost_bps: float | None = field(
        default=None,
        metadata={
            "help": "stress test: commission on every non-cash asset, bps (default: the checkpoint's)",
            "max": 10_000.0,
        },
    )
    slippage_bps: float | None = field(
        default=None,
        metadata={
            "help": "stress test: slippage on every non-cash asset, bps (default: the checkpoint's)",
            "max": 10_000.0,
        },
    )
    write_trades: bool = field(default=True, metadata={"help": "write trades.jsonl (one line per bar)"})
    plots: bool = field(default=True, metadata={"help": "write equity.png and weights.png"})
    rebalance_every: int = field(
        default=0,
        metadata={"help": "bars between benchmark rebalances (0: daily for intraday bars, every bar otherwise)"},
    )
    inv_vol_window: int = field(
        default=60, metadata={"help": "trailing window (bars) of the inverse-volatility benchmark"}
    )
    bootstrap_samples: int = field(
        default=2000, metadata={"help": "stationary-bootstrap resamples for the Sharpe-vs-1/N significance"}
    )
    block_length: float = field(default=0.0, metadata={"help": "mean bootstrap block length in bars (0: T^(1/3))"})
    n_trials: int = field(default=1, metadata={"help": "strategies tried before this one (deflated Sharpe ratio)"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap"})

    def __post_init__(self) -> None:
        if self.window_length < 2:
            raise ConfigError(
                f"backtest.window_length must be >= 2 bars, got {self.window_length}",
                hint="pass a valid --window-length (or fix [backtest] window_length in the profile)",
            )
        if self.stride < 1:
            raise ConfigError(
                f"backtest.stride must be >= 1 bar, got {self.stride}",
                hint="pass a valid --stride (or fix [backtest] stride in the profile)",
            )
        for name in ("cost_bps", "slippage_bps"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ConfigError(
                    f"backtest.{name} must be >= 0, got {v}", hint=f"pass --{name.replace('_', '-')} 0 or more"
                )
        if self.rebalance_every < 0:
            raise ConfigError(
                f"backtest.rebalance_every must be >= 0, got {self.rebalance_every}",
                hint="pass a valid --rebalance-every (or fix [backtest] rebalance_every in the profile)",
            )
        if self.inv_vol_window < 2:
            raise ConfigError(
                f"backtest.inv_vol_window must be >= 2 bars, got {self.inv_vol_window}",
                hint="pass a valid --inv-vol-window (or fix [backtest] inv_vol_window in the profile)",
            )
        if self.bootstrap_samples < 0:
            raise ConfigError(
                f"backtest.bootstrap_samples must be >= 0, got {self.bootstrap_samples}",
                hint="pass a valid --bootstrap-samples (or fix [backtest] bootstrap_samples in the profile)",
            )
        if self.block_length < 0:
            raise ConfigError(
                f"backtest.block_length must be >= 0, got {self.block_length}",
                hint="pass a valid --block-length (or fix [backtest] block_length in the profile)",
            )
        if self.n_trials < 1:
            raise ConfigError(
                f"backtest.n_trials must be >= 1, got {self.n_trials}",
                hint="pass a valid --n-trials (or fix [backtest] n_trials in the profile)",
            )
        check_timestamp(self.start, "backtest.start")
        check_timestamp(self.end, "backtest.end")
        check_range(self.start, self.end, "backtest")


@config_table("orders")
@dataclass(frozen=True)
class OrderBacktestConfig:
    """Order strategies (``mqc backtest --strategy``): fills, intrabar rule, walk-forward fit."""

    strategy: str = field(
        default="maxdiff",
        metadata={"help": "order strategy (maxdiff, maxdiff-always-on, simple, highlow, takeprofit, buy-hold)"},
    )
    intrabar: Literal["conservative", "optimistic"] = field(
        default="conservative",
        metadata={
            "help": "when an entry and its exit could both fill in one bar: "
            "the worse (conservative) or better (optimistic) order of events"
        },
    )
    participation: float | None = field(
        default=None, metadata={"help": "max fraction of a bar's volume traded per symbol (unset: no cap)"}
    )
    refit_every: int = field(
        default=0,
        metadata={
            "help": "bars between walk-forward re-fits of the strategy's parameters (0: one fit before the segment)"
        },
    )
    fit_window: int = field(
        default=0,
        metadata={"help": "trailing bars each fit uses, all before the bars it trades (0: no fit, default parameters)"},
    )
    fit_method: Literal["grid", "de"] = field(
        default="grid", metadata={"help": "parameter search: grid, or de (scipy differential evolution)"}
    )
    grid_points: int = field(default=5, metadata={"help": "grid points per parameter (odd: includes the middle)"})
    engine: Literal["auto", "numba", "numpy"] = field(
        default="auto",
        metadata={
            "help": "order simulation: auto (the compiled kernel when numba is installed), numba or numpy (the "
            "loop the paper broker of mqc trade runs; equal to the kernel to 1e-12, cash summed in another order)"
        },
    )
    de_maxiter: int = field(default=15, metadata={"help": "differential evolution generations per fit"})
    seed: int = field(default=0, metadata={"help": "seed of differential evolution"})

    def __post_init__(self) -> None:
        if self.participation is not None and not 0.0 < self.participation <= 1.0:
            raise ConfigError(
                f"orders.participation must be in (0, 1], got {self.participation}", hint="e.g. --participation 0.1"
            )
        for name in ("refit_every", "fit_window"):
            if getattr(self, name) < 0:
                raise ConfigError(f"orders.{name} must be >= 0, got {getattr(self, name)}")
        if self.refit_every and not self.fit_window:
            raise ConfigError(
                "orders.refit_every needs a fit window",
                hint="pass --fit-window N (e.g. --refit-every 20 --fit-window 250)",
            )
        if self.fit_window == 1:
            raise ConfigError("orders.fit_window must be 0 (no fit) or >= 2 bars")
        if self.grid_points < 1 or self.de_maxiter < 1:
            raise ConfigError("orders.grid_points and orders.de_maxiter must be >= 1")
