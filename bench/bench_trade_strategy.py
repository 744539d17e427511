"""Trading loop with an order strategy (``mqc trade --strategy maxdiff --only naive``): live decision
latency per bar, and replay throughput.

Workload: seeded synthetic bars (``--symbols`` assets, ``--bars`` bars, ``--timeframe``) in a
throwaway catalog, then

- live decision: ``OrderDecider.decide_orders`` on the bars up to t for the last ``--decisions``
  bars (forecasts of the whole history and a fit on the ``fit_window`` bars before t, as a live bar);
- replay: ``mqc trade --replay`` over the last ``--replay-bars`` bars (orders placed once, as the
  backtest does; ledger with ``synchronous=NORMAL``; paper broker with the order-level book).

    python bench/bench_trade_strategy.py                  # 10 symbols x 2,000 hourly bars
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--bars", type=int, default=2000)
    ap.add_argument("--timeframe", default="1h")
    ap.add_argument("--decisions", type=int, default=30)
    ap.add_argument("--replay-bars", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.bars, args.decisions, args.replay_bars = 4, 600, 10, 200
    tmp = Path(tempfile.mkdtemp(prefix="mqc-bench-trade-strategy-"))
    for var, sub in (("MQC_DATA_DIR", "data"), ("MQC_RUNS_DIR", "runs"), ("MQC_CONFIG_DIR", "cfg")):
        os.environ[var] = str(tmp / sub)
    os.environ["MQC_CACHE_DIR"] = str(tmp / "cache")
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.data.synth import SynthSpec, synth_ohlcv
    from mqc.core.market.config import MarketConfig
    from mqc.core.trade.config import TradeConfig
    from mqc.core.trade.order_decide import order_decider
    from mqc.core.trade.runner import load_history, open_broker, open_session, replay

    cat = Catalog()
    frames = synth_ohlcv(SynthSpec(n_assets=args.symbols, n_bars=args.bars, seed=1, timeframe=args.timeframe))
    for sym, df in frames.items():
        cat.write(sym, df, source="bench", timeframe=args.timeframe)
    syms = tuple(frames)
    market = MarketConfig(allow_short=True)
    d = order_decider("maxdiff", syms, args.timeframe, market, only="naive")
    panel = load_history(d, DataConfig())
    T = len(panel)
    lat = []
    for t in range(T - args.decisions, T):
        h = panel.slice(0, t + 1)
        t0 = time.perf_counter()
        d.decide_orders(h)
        lat.append(time.perf_counter() - t0)
    lat_ms = np.asarray(lat) * 1e3
    tcfg = TradeConfig()
    path = tmp / "replay" / "ledger.db"
    session = open_session(tcfg, d, path, open_broker(tcfg, path, market, durable=False, decider=d), durable=False)
    t0 = time.perf_counter()
    res = replay(session, panel, str(panel.timestamps[T - args.replay_bars])[:19], None)
    wall = time.perf_counter() - t0
    n = len(res.outcomes)
    print(f"cpu: {platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{args.symbols} symbols x {T} {args.timeframe} bars; maxdiff on naive forecasts")
    print(
        f"live decision per bar: p50 {np.percentile(lat_ms, 50):.1f} ms, p99 {np.percentile(lat_ms, 99):.1f} ms "
        f"-> per symbol p50 {np.percentile(lat_ms, 50) / args.symbols:.2f} ms, "
        f"p99 {np.percentile(lat_ms, 99) / args.symbols:.2f} ms"
    )
    print(f"replay (mqc trade --replay, synchronous=NORMAL): {n} bars in {wall:.2f} s ({n / wall:.0f} bars/s)")


if __name__ == "__main__":
    main()
