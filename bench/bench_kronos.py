"""Kronos benchmarks on randomly initialised full-size checkpoints (no downloads).

1. Sampling with vs without the KV cache: one window of ``--context`` bars, ``--steps``-bar
   forecast, ``--paths`` sample paths, same seed -> identical paths required.
2. Feature precompute cost per 1,000 bars x asset for Kronos-mini and Kronos-small
   (``compute_kronos_features`` with the default settings, measured on ``--origins`` bars).

Usage: python bench/bench_kronos.py [--threads 1] [--paths 2] [--origins 32] [--skip-features]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mqc.core.forecast.kronos.checkpoint import load_model, load_tokenizer
from mqc.core.forecast.kronos.config import KronosFeatureConfig
from mqc.core.forecast.kronos.features import compute_kronos_features
from mqc.core.forecast.kronos.presets import MAX_CONTEXT, save_random
from mqc.core.forecast.kronos.sampler import SamplingSettings, calendar_stamps, make_generator, sample_paths


def _bars(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    ohlcv = np.stack([close, close * 1.005, close * 0.995, close, rng.uniform(1e5, 2e5, n)], -1)
    return pd.date_range("2020-01-01", periods=n, freq="h").to_numpy(), ohlcv


def bench_cache(root: Path, context: int, steps: int, paths: int, max_context: int) -> dict:
    model, tok = load_model(root / "small" / "model"), load_tokenizer(root / "small" / "tokenizer")
    ts, x = _bars(context + steps)
    xs, ys = calendar_stamps(ts[:context])[None], calendar_stamps(ts[context:])[None]
    out, secs = {}, {}
    for cache in (True, False):
        s = SamplingSettings(sample_count=paths, max_context=max_context, use_cache=cache)
        t0 = time.perf_counter()
        out[cache] = sample_paths(model, tok, x[None, :context], xs, ys, s, make_generator(0))
        secs[cache] = time.perf_counter() - t0
    return {
        "context": context,
        "steps": steps,
        "paths": paths,
        "max_context": max_context,
        "cached_s": round(secs[True], 2),
        "uncached_s": round(secs[False], 2),
        "speedup": round(secs[False] / secs[True], 1),
        "identical": bool(np.array_equal(out[True], out[False])),
    }


def bench_features(root: Path, preset: str, origins: int) -> dict:
    cfg = KronosFeatureConfig(
        model_path=str(root / preset / "model"),
        tokenizer_path=str(root / preset / "tokenizer"),
        max_context=MAX_CONTEXT[preset],
        batch_size=origins,
    )
    # origins are sampled in fixed batches aligned to bar 0; leading NaN bars move the first usable
    # origin to a batch boundary so the measured batches are full (steady state, no half-empty batch)
    pad = (-(cfg.context - 1)) % cfg.batch_size
    ts, x = _bars(pad + cfg.context - 1 + origins, seed=1)
    x[:pad] = np.nan
    t0 = time.perf_counter()
    res = compute_kronos_features(ts, x[:, None, :], cfg, use_disk_cache=False)
    secs = time.perf_counter() - t0
    return {
        "preset": preset,
        "origins": res.computed_origins,
        "batches": -(-origins // cfg.batch_size),
        "context": cfg.context,
        "horizons": list(cfg.horizons),
        "sample_count": cfg.sample_count,
        "seconds": round(secs, 1),
        "s_per_1000_bars_x_asset": round(secs / res.computed_origins * 1000, 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paths", type=int, default=2)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--origins", type=int, default=32)
    ap.add_argument("--skip-features", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cpu = (
        subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True)
        .stdout.split(":")[-1]
        .strip()
    )
    report: dict = {
        "machine": {"cpu": cpu, "threads": a.threads, "torch": torch.__version__, "python": platform.python_version()}
    }
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for preset in ("small", "mini"):
            save_random(root / preset, preset, seed=0)
        # window fits: 512 context bars + 24 steps inside a 536-token window
        report["cache_fits"] = bench_cache(root, 512, a.steps, a.paths, 512 + a.steps)
        # published small setting: 488 bars + 24 steps fill exactly the 512-token window
        report["cache_488"] = bench_cache(root, 512 - a.steps, a.steps, a.paths, 512)
        print(json.dumps(report, indent=1), flush=True)
        if not a.skip_features:
            report["features"] = [bench_features(root, p, a.origins) for p in ("mini", "small")]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
