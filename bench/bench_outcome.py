"""Outcome on real daily bars: test-split Sharpe of ``train dm`` and ``train sharpe`` next to
equal-weight (1/N) and inverse-volatility baselines, over several seeds, with 10 bp costs.

Data: the daily stock/ETF basket in ../shared/data/ohlcv/daily without FB, TSLA and V (27 symbols,
common window 2007-01-03 .. 2017-11-10). Split 70/15/15 by time with an embargo; checkpoints are
picked on val; every figure below is on the test split, computed once per run.

    python bench/bench_outcome.py [--seeds 0,1,2] [--dm-steps 300] [--sharpe-steps 300] [--objectives hybrid]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mqc.core.data.config import DataConfig
from mqc.core.data.panel import load_panel
from mqc.core.market.config import MarketConfig
from mqc.core.train.api import train_dm, train_sharpe
from mqc.core.train.config import DMTrainConfig, SharpeTrainConfig

DAILY = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "daily"
BASKET = (
    "AAPL,AMD,AMZN,BAC,CSCO,DIA,DIS,GLD,GOOGL,IBM,INTC,IWM,JNJ,JPM,KO,MSFT,NFLX,NVDA,ORCL,QQQ,SPY,TLT,WMT,XLE,XLF,XLK,XOM"
).split(",")


def _row(name: str, m: dict) -> dict:
    return {
        "strategy": name,
        **{k: m[k] for k in ("sharpe", "total_return", "annual_return", "max_drawdown", "turnover")},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DAILY))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--dm-steps", type=int, default=300)
    ap.add_argument("--sharpe-steps", type=int, default=300)
    ap.add_argument("--lookback", type=int, default=64)
    ap.add_argument("--objectives", default="hybrid", help="dm objectives to compare (grpo,pathwise,hybrid)")
    ap.add_argument("--cost-bps", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    data_cfg = DataConfig(data_root=a.data, symbols=tuple(BASKET), end="2017-11-10")
    panel = load_panel(config=data_cfg)
    market = MarketConfig().with_cost(a.cost_bps, 0.0)
    save = tempfile.mkdtemp(prefix="mqc-bench-")
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "bars": len(panel),
                "assets": panel.n_assets,
                "first": str(panel.timestamps[0])[:10],
                "last": str(panel.timestamps[-1])[:10],
                "cost_bps": a.cost_bps,
            }
        ),
        flush=True,
    )
    rows: list[dict] = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        for obj in a.objectives.split(","):
            cfg = DMTrainConfig(
                lookback=a.lookback,
                steps=a.dm_steps,
                eval_interval=max(a.dm_steps // 6, 1),
                objective=obj,
                seed=seed,
                save_dir=save,
            )
            t = time.perf_counter()
            r = train_dm(data_cfg, market, cfg, panel=panel)
            rows.append(
                {
                    **_row(f"dm-{obj}", r.test_metrics),
                    "seed": seed,
                    "val_sharpe": r.val_metrics["sharpe"],
                    "seconds": time.perf_counter() - t,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        cfg_s = SharpeTrainConfig(
            steps=a.sharpe_steps, eval_interval=max(a.sharpe_steps // 6, 1), seed=seed, save_dir=save
        )
        t = time.perf_counter()
        r = train_sharpe(data_cfg, market, cfg_s, panel=panel)
        rows.append(
            {
                **_row("sharpe", r.test_metrics),
                "seed": seed,
                "val_sharpe": r.val_metrics["sharpe"],
                "seconds": time.perf_counter() - t,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    for name, m in r.test_baselines.items():
        rows.append({**_row(name, m), "seed": None, "val_sharpe": None, "seconds": 0.0})
    print(
        "\n| strategy | test Sharpe (mean ± sd over seeds) | per seed | test total return (mean) | max drawdown (mean)"
        " | turnover/bar | val Sharpe (mean) | s/run |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["strategy"] for r in rows):
        sel = [x for x in rows if x["strategy"] == name]
        sh = [x["sharpe"] for x in sel]
        sd = statistics.stdev(sh) if len(sh) > 1 else 0.0
        val = [x["val_sharpe"] for x in sel if x["val_sharpe"] is not None]
        print(
            f"| {name} | {statistics.mean(sh):.3f} ± {sd:.3f} | {', '.join(f'{v:.2f}' for v in sh)} |"
            f" {statistics.mean(x['total_return'] for x in sel):+.1%} |"
            f" {statistics.mean(x['max_drawdown'] for x in sel):.1%} |"
            f" {statistics.mean(x['turnover'] for x in sel):.4f} | {f'{statistics.mean(val):.3f}' if val else '-'} |"
            f" {statistics.mean(x['seconds'] for x in sel):.0f} |"
        )


if __name__ == "__main__":
    main()
