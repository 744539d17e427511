"""Forecast benchmarks: baseline throughput, Chronos-2 wrapper overhead, eval wall time on the daily basket.

Run: ``python bench/bench_forecast.py [--skip-full]``. Single thread (torch and BLAS), CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402

BASKET = "AAPL AMD AMZN BAC CSCO DIA DIS FB GLD GOOGL IBM INTC IWM JNJ JPM KO MSFT NFLX NVDA ORCL QQQ SPY TLT TSLA V WMT XLE XLF XLK XOM".split()
DAILY = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "daily"
LEVELS = (0.1, 0.5, 0.9)


def _best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_baselines(n_series=2000, length=300, horizon=64):
    from mqc.core.forecast import base
    from mqc.core.forecast.config import ForecastConfig

    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_series, length)), axis=1))
    x = np.stack([c, c * 1.01, c * 0.99, c, np.ones_like(c)], axis=-1)
    print(f"\n## baselines: {n_series} series x {length} bars -> {horizon}-step quantiles {LEVELS}, one core")
    print("| model | series/s (predict_arrays) |")
    print("|---|---:|")
    for name in ("naive", "seasonal-naive", "drift", "hist-vol", "ewma-vol", "bootstrap"):
        m = base.create(name, config=ForecastConfig(model=name))
        m.want_samples = False
        dt = _best(lambda m=m: m.predict_arrays(x, horizon, LEVELS))
        print(f"| {name} | {n_series / dt:,.0f} |")
    m = base.create("bootstrap", config=ForecastConfig(model="bootstrap"))
    dt = _best(lambda: m.predict_arrays(x[:500], horizon, LEVELS), 1)
    print(f"| bootstrap (with 200 sample paths kept) | {500 / dt:,.0f} |")
    g = base.create("garch", config=ForecastConfig(model="garch"))
    dt = _best(lambda: g.predict_arrays(x[:40], horizon, LEVELS), 1)
    print(f"| garch (one arch MLE fit per series) | {40 / dt:,.0f} |")


def bench_chronos(size: str, n_series: int, context: int, horizon: int):
    import torch

    from mqc.core.data.synth import SynthSpec, synth_ohlcv
    from mqc.core.forecast import base
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.forecast.randinit import save_random_chronos2

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        path = save_random_chronos2(Path(d) / size, size=size)  # type: ignore[arg-type]
        frames = synth_ohlcv(SynthSpec(n_assets=n_series, n_bars=context + 50, weekdays_only=True))
        m = base.create("chronos2", config=ForecastConfig(model="chronos2", model_id=str(path), context_length=context, batch_size=n_series))
        pipe = m.pipeline
        arrays = [np.stack([df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")], 1) for df in frames.values()]
        inputs = m.build_inputs(arrays, horizon)
        bare = lambda: pipe.predict_quantiles(inputs, prediction_length=horizon, quantile_levels=list(LEVELS), batch_size=4 * n_series, context_length=context)  # noqa: E731
        wrapped = lambda: m.predict(frames, horizon, LEVELS)  # noqa: E731
        bare()
        wrapped()
        t_bare, t_wrap = [], []
        for _ in range(5):  # interleaved, so machine noise hits both alike
            t_bare.append(_best(bare, 1))
            t_wrap.append(_best(wrapped, 1))
        b, w = min(t_bare), min(t_wrap)
        print(f"| {size} ({sum(p.numel() for p in pipe.model.parameters()) / 1e6:.1f}M params) | {n_series} x {context} -> {horizon} | {b * 1e3:.1f} | {w * 1e3:.1f} | {100 * (w - b) / b:+.1f}% |")


def bench_eval(origins=500):
    from mqc.core.data.reader import read_bars
    from mqc.core.forecast.config import EvalConfig, ForecastConfig
    from mqc.core.forecast.evaluation import evaluate, model_configs

    if not DAILY.is_dir():
        print("\n(daily basket not found; eval benchmark skipped)")
        return
    frames = {s: next(iter(read_bars(DAILY / f"{s}.csv").values())) for s in BASKET}
    ec = EvalConfig(origins=origins, horizons=(1, 7))
    models = ["naive", "seasonal-naive", "drift", "hist-vol", "ewma-vol", "bootstrap"]
    t = time.perf_counter()
    res = evaluate(frames, model_configs(models, ForecastConfig(), ec.quantile_levels), ec)
    wall = time.perf_counter() - t
    print(f"\n## forecast eval: {len(BASKET)} daily symbols x {origins} origins, horizons 1,7, {len(models)} baselines")
    print(f"wall time {wall:.2f} s (model time: " + ", ".join(f"{k} {v:.2f}s" for k, v in res.seconds.items()) + ")")
    print(f"origins {res.origins[0]:%Y-%m-%d} .. {res.origins[-1]:%Y-%m-%d}")
    print("| model | h | MAE | MASE | CRPS | WQL | cov50 | cov80 | cov90 | hit | RankIC |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    f = lambda v, p=True: "-" if v is None else (f"{100 * v:.3f}%" if p else f"{v:.3f}")  # noqa: E731
    for r in sorted(res.rows, key=lambda r: (r["horizon"], r["model"])):
        print(f"| {r['model']} | {r['horizon']} | {f(r['mae'])} | {f(r['mase'], False)} | {f(r['crps'])} | {f(r['wql'])} | {f(r['coverage_50'])} | {f(r['coverage_80'])} | {f(r['coverage_90'])} | {f(r['hit_rate'])} | {f(r['rank_ic'], False)} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-full", action="store_true", help="skip the full-size Chronos-2 overhead run")
    args = ap.parse_args()
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread")
    bench_baselines()
    print("\n## Chronos-2 wrapper overhead: ChronosForecaster.predict(frames) vs bare predict_quantiles(prebuilt inputs)")
    print("| model | batch | bare ms | wrapper ms | overhead |")
    print("|---|---|---:|---:|---:|")
    bench_chronos("tiny", 32, 512, 64)
    if not args.skip_full:
        bench_chronos("full", 8, 512, 64)
    bench_eval()


if __name__ == "__main__":
    main()
