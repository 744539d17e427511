"""Outcome on real daily bars: test-split Sharpe of ``train ppo`` (several seeds) next to the behaviour
policies ``topk`` and ``kelly``, 1/N and inverse volatility, with 10 bp costs.

Data and split as ``bench_outcome.py`` (the 27-symbol daily basket in ../shared/data/ohlcv/daily,
common window 2007-01-03 .. 2017-11-10, 70/15/15 by time with an embargo). PPO's best.pt is picked on
val; every figure is on the test split, through the backtest engine. ``train dm`` figures on the same
basket are in docs/benchmarks-train.md (bench_outcome.py).

    python bench/bench_gym_outcome.py [--seeds 0,1,2] [--timesteps 20000] [--forecaster bootstrap]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_outcome import BASKET, DAILY  # noqa: E402

from mqc.core.data.config import DataConfig, SplitConfig  # noqa: E402
from mqc.core.data.panel import load_panel  # noqa: E402
from mqc.core.data.split import split_for  # noqa: E402
from mqc.core.gym.config import CubeConfig, EnvConfig, PPOTrainConfig  # noqa: E402
from mqc.core.gym.cube import build_cube, slice_cube  # noqa: E402
from mqc.core.gym.policies import BehaviourPolicy, PolicySettings  # noqa: E402
from mqc.core.market.config import MarketConfig  # noqa: E402
from mqc.core.train.api import train  # noqa: E402
from mqc.core.train.data import baselines, evaluate_segment  # noqa: E402


class _Seg:
    def __init__(self, panel, split):
        self.panel, self.split = panel, split


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--timesteps", type=int, default=20000)
    ap.add_argument("--forecaster", default="bootstrap")
    a = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    panel = load_panel(config=DataConfig(data_root=str(DAILY), symbols=tuple(BASKET), end="2017-11-10"))
    market = MarketConfig().with_cost(10.0)
    cube_cfg = CubeConfig(forecaster=a.forecaster)
    t0 = time.perf_counter()
    cube = build_cube(panel, cube_cfg)
    print(f"cube: {cube.values.shape} in {time.perf_counter() - t0:.1f} s (cached: {cube.cached})")
    split = split_for(len(panel), SplitConfig(), 1, cube.warmup)
    seg = _Seg(panel, split)
    lo, hi = split.test
    rows = {}
    for kind, settings in (("topk", PolicySettings(k=5)), ("kelly", PolicySettings())):
        pol = BehaviourPolicy(kind, panel.symbols, panel.timeframe, market, cube_cfg, settings)
        import numpy as np

        w = np.zeros((len(panel), panel.n_assets))
        w[:hi] = pol.target_weights(panel.slice(0, hi), slice_cube(cube, 0, hi))
        rows[kind] = evaluate_segment(seg, w, "test", market)["sharpe"]
    for name, m in baselines(seg, "test", market).items():
        rows[name] = m["sharpe"]
    ppo = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in a.seeds.split(",")]:
            t0 = time.perf_counter()
            res = train(
                "ppo",
                DataConfig(data_root=str(DAILY), symbols=tuple(BASKET), end="2017-11-10"),
                market,
                PPOTrainConfig(num_timesteps=a.timesteps, seed=seed, save_dir=tmp),
                extra={"env": EnvConfig(), "cube": cube_cfg},
                panel=panel,
            )
            ppo.append(res.test_metrics["sharpe"])
            print(
                f"ppo seed {seed}: test sharpe {ppo[-1]:.2f} (val {res.val_metrics.get('sharpe', 0):.2f}, "
                f"best step {res.best_step}) in {time.perf_counter() - t0:.0f} s"
            )
    rows["ppo"] = f"{statistics.mean(ppo):.2f} +- {statistics.pstdev(ppo):.2f} ({', '.join(f'{x:.2f}' for x in ppo)})"
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
