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

BASKET = (
    "AAPL AMD AMZN BAC CSCO DIA DIS FB GLD GOOGL IBM INTC IWM JNJ JPM KO MSFT NFLX NVDA ORCL QQQ SPY TLT TSLA V WMT XLE"
    " XLF XLK XOM".split()
)
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
    for mean in ("zero", "constant"):
        g = base.create("garch", config=ForecastConfig(model="garch", garch_mean=mean))
        dt = _best(lambda g=g: g.predict_arrays(x, horizon, LEVELS), 2)
        print(
            f"| garch, {mean} mean (vectorised MLE of all {n_series} series + closed-form variance) |"
            f" {n_series / dt:,.0f} |"
        )
    arch = __import__("arch")
    r = np.diff(np.log(c[:20, -251:]), axis=1) * 100

    def per_series_arch():
        for ri in r:
            arch.arch_model(ri, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fit(
                disp="off", show_warning=False
            ).forecast(horizon=horizon, reindex=False)

    dt = _best(per_series_arch, 1)
    print(f"| (reference: one `arch` fit + forecast per series, 20 series) | {20 / dt:,.0f} |")


def bench_chronos(size: str, n_series: int, context: int, horizon: int, repeats: int = 15):
    import torch

    from mqc.core.data.synth import SynthSpec, synth_ohlcv
    from mqc.core.forecast import base
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.forecast.randinit import save_random_chronos2

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        path = save_random_chronos2(Path(d) / size, size=size)  # type: ignore[arg-type]
        frames = synth_ohlcv(SynthSpec(n_assets=n_series, n_bars=context + 50, weekdays_only=True))
        m = base.create(
            "chronos2",
            config=ForecastConfig(model="chronos2", model_id=str(path), context_length=context, batch_size=n_series),
        )
        pipe = m.pipeline
        arrays = [
            np.stack([df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")], 1)
            for df in frames.values()
        ]
        inputs = m.build_inputs(arrays, horizon)
        # the exact call the wrapper makes (same inputs, batch size, context length, cross_learning)
        bare = lambda: pipe.predict_quantiles(  # noqa: E731
            inputs,
            prediction_length=horizon,
            quantile_levels=list(LEVELS),
            batch_size=4 * n_series,
            context_length=min(context, pipe.model_context_length),
            cross_learning=False,
        )
        wrapped = lambda: m.predict(frames, horizon, LEVELS)  # noqa: E731
        t_bare, t_wrap = _interleaved(bare, wrapped, repeats)
        b, w = float(np.median(t_bare)), float(np.median(t_wrap))
        ratio = float(np.median(np.asarray(t_wrap) / np.asarray(t_bare)))
        params = sum(p.numel() for p in pipe.model.parameters()) / 1e6
        print(
            f"| {size} ({params:.1f}M params) | {n_series} x {context} -> {horizon} | {b * 1e3:.1f} | {w * 1e3:.1f} |"
            f" {100 * (w - b) / b:+.1f}% | {100 * (ratio - 1):+.1f}% |"
        )


def _interleaved(a, b, repeats: int) -> tuple[list[float], list[float]]:
    """Time ``a`` and ``b`` alternately (ABBA order, after two warm-up calls each) so drift and
    background load hit both alike; returns the per-repeat times."""
    for _ in range(2):
        a()
        b()
    ta, tb = [], []
    for i in range(repeats):
        order = ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta))
        for fn, acc in order:
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return ta, tb


def bench_eval(origins=500):
    from mqc.core.data.reader import read_bars
    from mqc.core.forecast.config import EvalConfig, ForecastConfig
    from mqc.core.forecast.evaluation import evaluate, model_configs

    if not DAILY.is_dir():
        print("\n(daily basket not found; eval benchmark skipped)")
        return
    frames = {s: next(iter(read_bars(DAILY / f"{s}.csv").values())) for s in BASKET}
    ec = EvalConfig(
        origins=origins, horizons=(1, 7), joint_origins=True
    )  # one common date range: the docs table, RankIC
    models = ["naive", "seasonal-naive", "drift", "hist-vol", "ewma-vol", "bootstrap", "garch"]
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
        print(
            f"| {r['model']} | {r['horizon']} | {f(r['mae'])} | {f(r['mase'], False)} | {f(r['crps'])} | {f(r['wql'])}"
            f" | {f(r['coverage_50'])} | {f(r['coverage_80'])} | {f(r['coverage_90'])} | {f(r['hit_rate'])} |"
            f" {f(r['rank_ic'], False)} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-full", action="store_true", help="skip the full-size Chronos-2 overhead run")
    args = ap.parse_args()
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1"
        " thread"
    )
    bench_baselines()
    print(
        "\n## Chronos-2 wrapper overhead: ChronosForecaster.predict(frames) vs bare predict_quantiles(prebuilt inputs)"
    )
    print("| model | batch | bare ms (median) | wrapper ms (median) | overhead of medians | median of paired ratios |")
    print("|---|---|---:|---:|---:|---:|")
    bench_chronos("tiny", 32, 512, 64, repeats=21)
    if not args.skip_full:
        bench_chronos("full", 8, 512, 64, repeats=7)
    bench_eval()


if __name__ == "__main__":
    main()
