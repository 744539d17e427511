"""Order-level fill throughput: mqc's ``simulate_orders`` (compiled kernel) vs vectorbt ``from_orders``.

Workload (seeded synthetic daily OHLCV): at every bar's close, per symbol, a buy limit at the close
-0.5% for a target weight of 1/N and an exit (a sell limit at the close +0.5% for weight 0, or a
market-on-close exit), filled against the next bar. ``order-bars/s`` = symbols x bars x orders per
bar / seconds.

vectorbt (open source) has no limit orders and one order per bar and column, so for the
side-by-side the strategy is one vectorbt can express: a buy limit (target 1/N) and a
market-on-close exit. The limit's touch test is resolved outside vectorbt in numpy (not timed:
vectorbt gets the answers) and each bar is split into two rows (entry at the limit / the open, exit
at the close); vectorbt only sizes the orders, charges fees and keeps the cash. Equity of the two
engines agree to rounding (printed). vectorbt's ``from_signals`` has no limit orders (only stop
exits), so it cannot express the strategy. Both engines run once on a small array first (numba
compile / cache load, printed), then ``--rounds`` interleaved rounds; medians of wall and process CPU
seconds are printed (the machine is shared: the load average is printed before and after).

    python bench/bench_orders.py             # 1,000 symbols x 2,500 bars, 5 rounds + 1 numpy-fallback run
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


def run_mqc(x: np.ndarray, orders: Orders, engine: str = "auto") -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds of this process, equity curve."""
    T, A = x.shape[:2]
    ts = np.arange(T).astype("datetime64[D]").astype("datetime64[ns]")
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate_orders(x, ts, orders, ["equity"] * A, market(), engine=engine)
    return time.perf_counter() - t0, time.process_time() - c0, np.cumprod(1 + res.net_returns)


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


def run_vbt(x: np.ndarray) -> tuple[float, float, np.ndarray]:
    import vectorbt as vbt

    price, size, close = vbt_inputs(x)
    kw = dict(size_type="targetpercent", fees=FEE, init_cash=1.0, cash_sharing=True, group_by=True, freq="1D")
    t0, c0 = time.perf_counter(), time.process_time()
    pf = vbt.Portfolio.from_orders(close, size, price=price, **kw)
    value = pf.value().to_numpy().ravel()
    return time.perf_counter() - t0, time.process_time() - c0, value[1::2]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        return f"{names[0]} ({len(names)} logical CPUs)"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def load() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--symbols", type=int, default=None)
    ap.add_argument("--bars", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    ap.add_argument("--numpy-rounds", type=int, default=1, help="rounds of the numpy fallback (slow; 0: skip)")
    args = ap.parse_args()
    A = args.symbols or (200 if args.quick else 1000)
    T = args.bars or (500 if args.quick else 2500)
    import numba  # noqa: F401  (the bench measures the compiled kernel; `pip install 'mqc[fast]'`)

    print(f"{cpu_model()}, python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}")
    print("load average before:", load())
    x = bars(T, A)
    two, moc = two_limits(x), limit_and_moc(x)
    small = bars(20, 3, 1)
    t0 = time.perf_counter()
    run_mqc(small, two_limits(small))  # compile, or load numba's on-disk cache
    print(f"mqc kernel first call (compile or cache load): {time.perf_counter() - t0:.2f} s")
    try:
        import vectorbt  # noqa: F401

        run_vbt(small)  # compile
        have_vbt = True
    except ImportError:
        print("vectorbt not installed: no side-by-side")
        have_vbt = False
    runs: dict[str, list[tuple[float, float]]] = {"two": [], "moc": [], "vbt": []}
    eq_m = eq_v = None
    for _ in range(args.rounds):  # interleaved: each round runs every contender once
        w, c, _eq = run_mqc(x, two)
        runs["two"].append((w, c))
        w, c, eq_m = run_mqc(x, moc)
        runs["moc"].append((w, c))
        if have_vbt:
            w, c, eq_v = run_vbt(x)
            runs["vbt"].append((w, c))
    n = A * T * 2

    def med(name: str, i: int) -> float:
        return float(np.median([r[i] for r in runs[name]]))

    print(
        f"{A} symbols x {T} bars x 2 orders, median of {args.rounds} interleaved rounds (wall / CPU of this process):"
    )
    for name, label in (("two", "mqc two limit orders"), ("moc", "mqc limit + market-on-close")):
        print(
            f"  {label}: {med(name, 0):.3f} s / {med(name, 1):.3f} s CPU -> "
            f"{n / med(name, 0) / 1e6:.2f} M order-bars/s wall, {n / med(name, 1) / 1e6:.2f} M per CPU-second"
        )
    if have_vbt:
        print(
            f"  vectorbt from_orders (limit touches resolved outside, not timed): {med('vbt', 0):.3f} s / "
            f"{med('vbt', 1):.3f} s CPU"
        )
        print(
            f"  mqc / vectorbt speed (limit + market-on-close): {med('vbt', 0) / med('moc', 0):.2f}x wall, "
            f"{med('vbt', 1) / med('moc', 1):.2f}x CPU; final equity mqc {eq_m[-2]:.6f}, vectorbt {eq_v[-1]:.6f}"
        )
    for _ in range(args.numpy_rounds):
        w, c, eq_np = run_mqc(x, two, engine="numpy")
        print(f"  numpy fallback (engine='numpy'), two limit orders: {w:.2f} s / {c:.2f} s CPU, {n / w / 1e6:.2f} M/s")
    print("load average after:", load())


if __name__ == "__main__":
    main()
