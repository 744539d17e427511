"""Order-level fill throughput: mqc's ``simulate_orders`` vs vectorbt ``from_orders``.

Workload (seeded synthetic daily OHLCV): at every bar's close, per symbol, a buy limit at the close
-0.5% for a target weight of 1/N and an exit (a sell limit at the close +0.5% for weight 0, or a
market-on-close exit), filled against the next bar. ``order-bars/s`` = symbols x bars x orders per
bar / seconds.

vectorbt (open source) has no limit orders and one order per bar and column, so for the
side-by-side the strategy is one vectorbt can express: a buy limit (target 1/N) and a
market-on-close exit. The limit's touch test is resolved outside vectorbt in numpy (not timed:
vectorbt gets the answers) and each bar is split into two rows (entry at the limit / the open, exit
at the close); vectorbt only sizes the orders, charges fees and keeps the cash. Equity of the two
engines agree to rounding (printed). vectorbt runs once on a small array first (numba compile).

    python bench/bench_orders.py             # 1,000 symbols x 2,500 bars (minutes on a shared 2-core box)
    python bench/bench_orders.py --quick     # 200 x 500
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mqc.core.market.config import MarketConfig  # noqa: E402
from mqc.core.market.ledger import simulate_orders  # noqa: E402
from mqc.core.market.orders import BUY, EITHER, LIMIT, MOC, SELL, WEIGHT, Orders  # noqa: E402

FEE = 5e-4  # one way, commission + slippage


def bars(T: int, A: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, A)), 0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(rng.normal(0, 0.003, (T, A)))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.005, (T, A))))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.005, (T, A))))
    return np.stack([o, h, lo, c, np.full((T, A), 1e9)], -1)


def two_limits(x: np.ndarray) -> Orders:
    T, A = x.shape[:2]
    c = x[..., 3]
    od = Orders.empty(T, A, 2)
    od.set((slice(None), slice(None), 0), kind=LIMIT, side=BUY, price=c * 0.995, size=1.0 / A, sizing=WEIGHT)
    od.set((slice(None), slice(None), 1), kind=LIMIT, side=SELL, price=c * 1.005, size=0.0, sizing=WEIGHT)
    return od


def limit_and_moc(x: np.ndarray) -> Orders:
    T, A = x.shape[:2]
    od = Orders.empty(T, A, 2)
    od.set((slice(None), slice(None), 0), kind=LIMIT, side=BUY, price=x[..., 3] * 0.995, size=1.0 / A, sizing=WEIGHT)
    od.set((slice(None), slice(None), 1), kind=MOC, side=EITHER, size=0.0, sizing=WEIGHT)
    return od


def market() -> MarketConfig:
    return MarketConfig(equity_fee_bps=FEE * 1e4, slippage_bps=0.0, financing_rate=0.0)


def run_mqc(x: np.ndarray, orders: Orders) -> tuple[float, np.ndarray]:
    T, A = x.shape[:2]
    ts = np.arange(T).astype("datetime64[D]").astype("datetime64[ns]")
    t0 = time.perf_counter()
    res = simulate_orders(x, ts, orders, ["equity"] * A, market())
    return time.perf_counter() - t0, np.cumprod(1 + res.net_returns)


def vbt_inputs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two rows per bar: the entry (filled at min(open, limit) where touched), then the exit at the close."""
    T, A = x.shape[:2]
    limit = np.full((T, A), np.nan)
    limit[1:] = x[:-1, :, 3] * 0.995
    touched = x[..., 2] <= limit
    fill = np.minimum(x[..., 0], limit)
    price = np.empty((2 * T, A))
    size = np.full((2 * T, A), np.nan)
    price[0::2] = np.where(touched, fill, x[..., 0])
    price[1::2] = x[..., 3]
    size[0::2] = np.where(touched, 1.0 / A, np.nan)
    size[1::2] = 0.0
    return price, size, price  # close = the row's price (valuation)


def run_vbt(x: np.ndarray) -> tuple[float, np.ndarray]:
    import vectorbt as vbt

    price, size, close = vbt_inputs(x)
    kw = dict(size_type="targetpercent", fees=FEE, init_cash=1.0, cash_sharing=True, group_by=True, freq="1D")
    t0 = time.perf_counter()
    pf = vbt.Portfolio.from_orders(close, size, price=price, **kw)
    value = pf.value().to_numpy().ravel()
    return time.perf_counter() - t0, value[1::2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--symbols", type=int, default=None)
    ap.add_argument("--bars", type=int, default=None)
    args = ap.parse_args()
    A = args.symbols or (200 if args.quick else 1000)
    T = args.bars or (500 if args.quick else 2500)
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}, numpy {np.__version__}")
    with open("/proc/loadavg") as fh:
        print("load average:", fh.read().split()[:3])
    x = bars(T, A)
    secs, _ = run_mqc(x, two_limits(x))
    print(
        f"mqc two limit orders: {A} symbols x {T} bars x 2: {secs:.2f} s, {A * T * 2 / secs / 1e6:.2f} M order-bars/s"
    )
    secs_m, eq_m = run_mqc(x, limit_and_moc(x))
    print(f"mqc limit + market-on-close: {secs_m:.2f} s, {A * T * 2 / secs_m / 1e6:.2f} M order-bars/s")
    try:
        import vectorbt  # noqa: F401
    except ImportError:
        print("vectorbt not installed: no side-by-side")
        return
    run_vbt(bars(20, 3, 1))  # compile
    secs_v, eq_v = run_vbt(x)
    print(
        f"vectorbt from_orders (limit touches resolved outside, not timed): {secs_v:.2f} s, "
        f"{A * T * 2 / secs_v / 1e6:.2f} M order-bars/s"
    )
    print(f"mqc / vectorbt speed: {secs_v / secs_m:.2f}x; final equity mqc {eq_m[-2]:.6f}, vectorbt {eq_v[-1]:.6f}")


if __name__ == "__main__":
    main()
