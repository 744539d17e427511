"""Trading loop with an order strategy (``mqc trade --strategy maxdiff --only naive``): live decision
latency per bar, and replay throughput on synthetic and on real hourly bars.

- live decision: ``OrderDecider.decide_orders`` bar after bar on a growing history (the last
  ``--decisions`` bars of ``--symbols`` x ``--bars`` synthetic hourly bars), as the live loop calls
  it: a stateful step (forecast the new origin, keep the fit until the next re-fit point). Once with
  the defaults (no parameter fit) and once with a walk-forward fit (``--fit-window``,
  ``--refit-every``). Interleaved with the old live path on a few bars (forecasts of the whole
  history and the fit at that bar: ``place_orders`` from t), the same-run baseline.
- replay: ``mqc trade --paper --replay`` (the real loop: ledger, paper broker with the order-level
  book; ``synchronous=OFF``) over ``--replay-bars`` synthetic hourly bars of ``--symbols``
  symbols, and over a year of real hourly bars (``--real-root``: 4 crypto pairs over 2018, 8,760
  bars; 4 US stocks over 2019, ~1,764 session hours).

Each figure line carries wall and process CPU time; ``load`` is the 1-minute load average before
and after.

    python bench/bench_trade_strategy.py                  # the issue's figures (~3-5 min on 2 busy cores)
    python bench/bench_trade_strategy.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path("/work/shared/data/ohlcv/hourly")
CRYPTO = ("BTCUSDT", "ETHUSDT", "BTC-USD", "ETH-USD")
STOCKS = ("AAPL", "SPY", "IBM", "BAC")


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def live_latency(panel, decider, n: int, baseline_every: int) -> dict[str, np.ndarray]:
    """Wall and CPU seconds of each of the last ``n`` bars' decisions (in order, one stateful decider),
    and of the old full-history path on every ``baseline_every``-th of them."""
    T = len(panel)
    ns = np.asarray(panel.timestamps).astype("datetime64[ns]").astype(np.int64)
    decider.anchor = int(ns[T - n])
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "base_wall": [], "base_cpu": []}
    for i, t in enumerate(range(T - n, T)):
        h = panel.slice(0, t + 1)
        w0, c0 = time.perf_counter(), time.process_time()
        new = decider.decide_orders(h)
        out["wall"].append(time.perf_counter() - w0)
        out["cpu"].append(time.process_time() - c0)
        if baseline_every and i % baseline_every == 0:
            w0, c0 = time.perf_counter(), time.process_time()
            old = decider._place(h, t).at(t)  # the old live path: whole history, fit at t
            out["base_wall"].append(time.perf_counter() - w0)
            out["base_cpu"].append(time.process_time() - c0)
            if not decider.order_cfg.fit_window:  # without a fit both are the backtest's row t
                assert np.array_equal(new.price, old.price, equal_nan=True) and np.array_equal(new.kind, old.kind)
    return {k: np.asarray(v) * 1e3 for k, v in out.items()}


def _pcts(ms: np.ndarray, A: int) -> str:
    return f"p50 {np.percentile(ms, 50) / A:.3f} ms, p99 {np.percentile(ms, 99) / A:.3f} ms"


def run_replay(tmp: Path, name: str, decider, data_cfg, start: str | None, end: str | None) -> tuple:
    from mqc.core.trade.config import TradeConfig
    from mqc.core.trade.runner import load_history, open_broker, open_session, replay

    panel = load_history(decider, data_cfg)
    cfg = TradeConfig()
    path = tmp / name / "ledger.db"
    broker = open_broker(cfg, path, decider.market, durable=False, decider=decider)
    session = open_session(cfg, decider, path, broker, durable=False)  # as mqc trade --replay: no fsync
    load0 = _load()
    w0, c0 = time.perf_counter(), time.process_time()
    res = replay(session, panel, start, end)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n_orders = session.ledger.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    return len(res.outcomes), wall, cpu, n_orders, f"{load0}->{_load()}"


def _replay_line(what: str, n: int, wall: float, cpu: float, orders: int, load: str) -> str:
    rate = n / wall
    return (
        f"replay {what}: {n} bars in {wall:.1f} s wall, {cpu:.1f} s CPU ({rate:.0f} bars/s wall, {n / cpu:.0f} CPU; "
        f"{orders / n:.0f} orders/bar) -> 8,760 h: {8760 / rate:.0f} s, 1,764 h: {1764 / rate:.0f} s "
        f"[target < 60 s] (load {load})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--bars", type=int, default=2000)
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument("--baseline-every", type=int, default=30, help="old full-history path on every n-th bar (0: off)")
    ap.add_argument("--fit-window", type=int, default=240)
    ap.add_argument("--refit-every", type=int, default=24)
    ap.add_argument("--replay-bars", type=int, default=8760)
    ap.add_argument("--real-root", default=str(REAL))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.bars, args.decisions, args.replay_bars = 4, 600, 60, 300
    tmp = Path(tempfile.mkdtemp(prefix="mqc-bench-trade-strategy-"))
    for var, sub in (("MQC_DATA_DIR", "data"), ("MQC_RUNS_DIR", "runs"), ("MQC_CONFIG_DIR", "cfg")):
        os.environ[var] = str(tmp / sub)
    os.environ["MQC_CACHE_DIR"] = str(tmp / "cache")
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.data.synth import SynthSpec, synth_ohlcv
    from mqc.core.market.config import MarketConfig
    from mqc.core.trade.order_decide import order_decider
    from mqc.core.trade.runner import load_history

    A = args.symbols
    n_bars = max(args.bars, args.replay_bars + 300)
    frames = synth_ohlcv(SynthSpec(n_assets=A, n_bars=n_bars, seed=1, timeframe="1h"))
    cat = Catalog()
    for sym, df in frames.items():
        cat.write(sym, df, source="bench", timeframe="1h")
    syms = tuple(frames)
    market = MarketConfig(allow_short=True)
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {_load()}")
    panel = load_history(order_decider("maxdiff", syms, "1h", market, only="naive"), DataConfig())
    live = panel.slice(0, args.bars)
    for flags, what in (
        ({}, "defaults, no parameter fit"),
        (
            {"fit_window": args.fit_window, "refit_every": args.refit_every},
            f"fit window {args.fit_window}, re-fit every {args.refit_every} bars",
        ),
    ):
        os.environ["MQC_CACHE_DIR"] = str(tmp / f"cache-{len(flags)}")  # the old path's forecast cache: cold
        d = order_decider("maxdiff", syms, "1h", market, only="naive", order_flags=flags)
        load0 = _load()
        ms = live_latency(live, d, args.decisions, args.baseline_every)
        print(
            f"live decision per symbol (maxdiff on naive, {A} symbols x {args.bars} 1h bars, {what}; "
            f"{args.decisions} bars): wall {_pcts(ms['wall'], A)}; CPU {_pcts(ms['cpu'], A)} "
            f"[target p99 <= 5 ms] (load {load0}->{_load()})"
        )
        if ms["base_wall"].size:
            print(
                f"  old live path (whole history, fit at the bar), {ms['base_wall'].size} bars interleaved: "
                f"median {np.median(ms['base_wall']) / A:.2f} ms wall, {np.median(ms['base_cpu']) / A:.2f} ms CPU "
                f"per symbol (stateful step median {np.median(ms['wall']) / A:.3f} ms wall)"
            )
    d = order_decider("maxdiff", syms, "1h", market, only="naive")
    start = str(panel.timestamps[len(panel) - args.replay_bars])[:19]
    n, wall, cpu, orders, load = run_replay(tmp, "synthetic", d, DataConfig(), start, None)
    print(_replay_line(f"(maxdiff on naive, {A} synthetic symbols, 1h, measured)", n, wall, cpu, orders, load))
    root = Path(args.real_root)
    if not root.is_dir():
        print(f"replay on real hourly bars: skipped ({root} not found)")
        return
    real = (
        (CRYPTO, "2018-01-01", "2018-12-31T23:00:00"),
        (STOCKS, "2019-01-01", "2019-12-31T23:00:00"),
    )
    if args.quick:
        real = ((CRYPTO, "2018-01-01", "2018-01-10"),)
    for symbols, a, b in real:
        d = order_decider("maxdiff", symbols, "1h", market, only="naive")
        n, wall, cpu, orders, load = run_replay(
            tmp, symbols[0], d, DataConfig(data_root=str(root), symbols=symbols, timeframe="1h"), a, b
        )
        what = f"(maxdiff on naive, real hourly {','.join(symbols)}, {a}:{b[:10]}, measured)"
        print(_replay_line(what, n, wall, cpu, orders, load))


if __name__ == "__main__":
    main()
