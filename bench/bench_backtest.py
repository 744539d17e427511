"""Backtest engine throughput: mqc vs vectorbt (target weights) and vs backtesting.py (one asset).

Workload: SMA(10) / SMA(50) crossover signals on seeded synthetic closes; target weights are equal
weight (95% invested) across the assets whose fast SMA is above the slow one (cash otherwise), rebalanced to
target at every bar, fees 5 bps. Both engines get the same weights matrix and produce the equity
curve; the timed section is "weights -> equity + total return" (signals are computed once, outside
the timer, for both). vectorbt runs once on a small array first so numba compilation is not timed.

    python bench/bench_backtest.py                  # everything (a few minutes on 2 cores)
    python bench/bench_backtest.py --quick          # smaller shapes, for a smoke run
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def synthetic_close(n_bars: int, n_assets: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0002, 0.01, size=(n_bars, n_assets))
    return 100.0 * np.exp(np.cumsum(r, axis=0))


def sma_weights(close: np.ndarray, fast: int = 10, slow: int = 50) -> np.ndarray:
    c = np.cumsum(close, axis=0)

    def sma(w: int) -> np.ndarray:
        out = c.copy()
        out[w:] -= c[:-w]
        return out / w

    up = (sma(fast) > sma(slow)).astype(np.float64)
    up[:slow] = 0.0
    n = up.sum(axis=1, keepdims=True)
    # 95% invested so the fees always fit in cash: vectorbt then fills every order in full and both
    # engines compute the same portfolio (their total returns agree to rounding error)
    return 0.95 * np.divide(up, n, out=np.zeros_like(up), where=n > 0)


def make_panel(close: np.ndarray):
    from mqc.core.data.panel import Panel

    T, A = close.shape
    ts = np.datetime64("2000-01-01T00:00", "ns") + np.arange(T) * np.timedelta64(3600, "s")
    values = np.repeat(close[:, :, None], 5, axis=2)
    values[:, :, 4] = 1e6
    return Panel(ts, tuple(f"S{i}" for i in range(A)), values, np.zeros((T, A), bool), "1h", ("equity",) * A)


def run_mqc(panel, weights, fee_bps: float) -> tuple[float, float]:
    from mqc.core.backtest.engine import run_backtest
    from mqc.core.market.config import MarketConfig

    cfg = MarketConfig(equity_fee_bps=fee_bps, slippage_bps=0.0, financing_rate=0.0, max_overnight_leverage=1.0)
    t0 = time.perf_counter()
    res = run_backtest(panel, weights, cfg)
    return time.perf_counter() - t0, float(res.metrics["total_return"])


def run_vbt(close: np.ndarray, weights: np.ndarray, fee_bps: float) -> tuple[float, float]:
    import pandas as pd
    import vectorbt as vbt

    idx = pd.date_range("2000-01-01", periods=len(close), freq="h")
    c, w = pd.DataFrame(close, index=idx), pd.DataFrame(weights, index=idx)
    t0 = time.perf_counter()
    pf = vbt.Portfolio.from_orders(
        c,
        size=w,
        size_type="targetpercent",
        fees=fee_bps / 1e4,
        init_cash=1.0,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq="1h",
    )
    total = float(pf.total_return())
    return time.perf_counter() - t0, total


def run_backtesting_py(close: np.ndarray, fee_bps: float) -> tuple[float, float]:
    import warnings

    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(x, n):
        return pd.Series(x).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 50)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    idx = pd.date_range("2000-01-01", periods=len(close), freq="h")
    df = pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close, "Volume": 1e6}, index=idx)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SmaCross, cash=1e9, commission=fee_bps / 1e4, trade_on_close=True, finalize_trades=True)
        stats = bt.run()
    return time.perf_counter() - t0, float(stats["Return [%]"]) / 100


def best_of(fn, repeats: int):
    runs = [fn() for _ in range(repeats)]
    return min(r[0] for r in runs), runs[0][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    fee = 5.0
    shapes = [(2_000, 200), (20_000, 20)] if args.quick else [(10_000, 1_000), (100_000, 100)]
    single = 10_000 if args.quick else 100_000
    try:
        import vectorbt

        vbt_version = vectorbt.__version__
        run_vbt(synthetic_close(200, 3), sma_weights(synthetic_close(200, 3)), fee)  # numba warm-up
    except ImportError:
        vbt_version = None
    import backtesting
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, numpy"
        f" {np.__version__}, torch {torch.__version__}, vectorbt {vbt_version}, backtesting {backtesting.__version__}"
    )
    print("| workload | mqc s | vectorbt s | speed-up | mqc total return | vectorbt total return |")
    print("|---|---|---|---|---|---|")
    for T, A in shapes:
        close = synthetic_close(T, A)
        w = sma_weights(close)
        panel = make_panel(close)
        t_mqc, ret_mqc = best_of(lambda: run_mqc(panel, w, fee), args.repeats)  # noqa: B023
        if vbt_version:
            t_vbt, ret_vbt = best_of(lambda: run_vbt(close, w, fee), args.repeats)  # noqa: B023
            print(
                f"| {T:,} bars x {A:,} assets | {t_mqc:.3f} | {t_vbt:.3f} | {t_vbt / t_mqc:.1f}x | {ret_mqc:.6f} |"
                f" {ret_vbt:.6f} |"
            )
        else:
            print(f"| {T:,} bars x {A:,} assets | {t_mqc:.3f} | not installed | - | {ret_mqc:.6f} | - |")
    close = synthetic_close(single, 1, seed=1)
    w = sma_weights(close)
    panel = make_panel(close)
    t_mqc, ret_mqc = best_of(lambda: run_mqc(panel, w, fee), args.repeats)
    t_bt, ret_bt = best_of(lambda: run_backtesting_py(close[:, 0], fee), 1)
    print()
    print(
        "| workload | mqc bars/s | backtesting.py bars/s | speed-up | mqc total return | backtesting.py total return |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| 1 asset x {single:,} bars | {single / t_mqc:,.0f} | {single / t_bt:,.0f} | {t_bt / t_mqc:.0f}x |"
        f" {ret_mqc:.4f} | {ret_bt:.4f} |"
    )


if __name__ == "__main__":
    main()
