"""Trading loop: decision latency per bar for a checkpoint policy, and replay throughput.

Workload: seeded synthetic daily bars (``--symbols`` assets, ``--bars`` bars) in a throwaway catalog,
a small dm policy trained on them (hidden 16, lookback 32), then

- decision latency: ``CheckpointDecider.decide`` on the bars up to t, for the last ``--decisions``
  bars (a live bar: trailing window of warm-up + lookback bars), torch on one thread;
- full-history decision: the same bar decided from the whole history (what a naive loop does);
- replay: ``mqc trade --replay`` over the last ``--replay-bars`` bars (ledger with fsync per event
  transaction, paper broker), bars per second.

    python bench/bench_trade.py                # 10 symbols x 2,000 bars
    python bench/bench_trade.py --quick
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
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument("--replay-bars", type=int, default=250)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.bars, args.decisions, args.replay_bars = 4, 600, 100, 60
    tmp = Path(tempfile.mkdtemp(prefix="mqc-bench-trade-"))
    for var, sub in (
        ("MQC_DATA_DIR", "data"),
        ("MQC_RUNS_DIR", "runs"),
        ("MQC_CONFIG_DIR", "cfg"),
        ("MQC_CACHE_DIR", "cache"),
    ):
        os.environ[var] = str(tmp / sub)
    import torch

    torch.set_num_threads(1)
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.data.synth import SynthSpec, synth_ohlcv
    from mqc.core.market.config import MarketConfig
    from mqc.core.trade.config import TradeConfig
    from mqc.core.trade.decide import checkpoint_decider
    from mqc.core.trade.runner import load_history, open_broker, open_session, replay
    from mqc.core.train.api import train_dm
    from mqc.core.train.config import DMTrainConfig

    cat = Catalog()
    frames = synth_ohlcv(SynthSpec(n_assets=args.symbols, n_bars=args.bars, seed=1, timeframe="1d"))
    for sym, df in frames.items():
        cat.write(sym, df, source="bench", timeframe="1d")
    syms = tuple(frames)
    cfg = DMTrainConfig(
        lookback=32, horizon=8, batch_windows=4, rollout_groups=2, hidden_size=16, steps=4, eval_interval=4
    )
    run = train_dm(DataConfig(symbols=syms, timeframe="1d"), MarketConfig(), cfg).run_dir
    d = checkpoint_decider(run)
    panel = load_history(d, DataConfig())
    T = len(panel)
    lat, cpu = [], []
    load0 = os.getloadavg()[0]
    for t in range(T - args.decisions, T):
        h = panel.slice(0, t + 1)
        t0, c0 = time.perf_counter(), time.process_time()
        d.decide(h)
        lat.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    lat_ms, cpu_ms = np.asarray(lat) * 1e3, np.asarray(cpu) * 1e3
    load1 = os.getloadavg()[0]
    full = []
    for t in range(T - 20, T):
        t0 = time.perf_counter()
        d.strategy.target_weights(panel.slice(0, t + 1))
        full.append(time.perf_counter() - t0)
    ts = panel.timestamps
    tcfg = TradeConfig()
    walls, cpus = {}, {}
    for durable in (False, True):
        path = tmp / f"replay-{durable}" / "ledger.db"
        broker = open_broker(tcfg, path, d.market, durable=durable)
        session = open_session(tcfg, d, path, broker, durable=durable)
        t0, c0 = time.perf_counter(), time.process_time()
        res = replay(session, panel, str(ts[T - args.replay_bars])[:10], None, batch=True)
        walls[durable], cpus[durable] = time.perf_counter() - t0, time.process_time() - c0
    wall = walls[False]
    per_bar = np.asarray(session.stats["decide_s"]) * 1e3
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads 1")
    print(f"{args.symbols} symbols x {T} daily bars; policy window {d.window} bars")
    A = args.symbols
    print(
        f"live decision per symbol (dm checkpoint, {A} symbols, {args.decisions} bars): "
        f"wall p50 {np.percentile(lat_ms, 50) / A:.3f} ms, p99 {np.percentile(lat_ms, 99) / A:.3f} ms; "
        f"CPU p50 {np.percentile(cpu_ms, 50) / A:.3f} ms, p99 {np.percentile(cpu_ms, 99) / A:.3f} ms "
        f"[target p99 <= 1 ms] (load {load0:.1f}->{load1:.1f})"
    )
    print(f"full-history decision per bar: median {np.median(full) * 1e3:.1f} ms")
    n = len(res.outcomes)
    print(
        f"replay with synchronous=FULL (a live ledger): {n} bars in {walls[True]:.2f} s wall, {cpus[True]:.2f} s CPU "
        f"({n / walls[True]:.0f} bars/s)"
    )
    rate = n / wall
    print(
        f"replay (mqc trade --replay, synchronous=OFF): {n} bars in {wall:.2f} s wall, {cpus[False]:.2f} s CPU "
        f"({rate:.0f} bars/s; decision p50 {np.percentile(per_bar, 50):.3f} ms from precomputed rows) "
        f"-> 8,760 h: {8760 / rate:.0f} s, 1,764 h: {1764 / rate:.0f} s (load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
