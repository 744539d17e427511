"""Sweep overhead per trial (scheduling + bookkeeping, training excluded) and throughput, local and Ray.

Workload: 8 small ``train dm`` trials (lookback 16/20/24/28 x seed 0/1, 40 steps, hidden 16) on a
seeded synthetic panel of 3 assets x 600 daily bars written to a temporary data root.

    back to back   the 8 trials one after the other in one process (``run_trial``, panel loaded once):
                   the floor (no process start-up counted)
    by hand        8 ``mqc train dm`` commands one after the other (each starts Python and torch)
    sweep local/ray   ``run_sweep`` with --max-concurrent 1 and 2 (no test report)

overhead per trial = (sweep wall time - sum of the trials' own seconds) / 8, at --max-concurrent 1;
it includes starting the worker processes (or the Ray instance), loading the panel, the study, the
rows and the summary.

    python bench/bench_sweep.py            # local and, when ray is installed, ray
    python bench/bench_sweep.py --no-ray
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

GRID = """
train.steps = 40
train.eval_interval = 20
train.log_interval = 20
train.batch_windows = 4
train.rollout_groups = 4
train.horizon = 8
train.hidden_size = 16
train.lookback = [16, 20, 24, 28]
seed = [0, 1]
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    from mqc.core import config
    from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
    from mqc.core.data.panel import load_panel
    from mqc.core.data.synth import SynthSpec, write_synth_csv
    from mqc.core.market.config import MarketConfig
    from mqc.core.sweep.runner import SweepRequest, plan, read_trials, run_sweep
    from mqc.core.sweep.space import config_key
    from mqc.core.sweep.trial import TrialSpec, run_trial
    from mqc.core.train.config import DMTrainConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    root = tmp / "bars"
    write_synth_csv(SynthSpec(n_assets=3, n_bars=600, seed=1), root)
    grid = tmp / "sweep.toml"
    grid.write_text(GRID)
    base = {
        "data": config.to_dict(DataConfig(data_root=str(root))),
        "market": config.to_dict(MarketConfig()),
        "features": config.to_dict(FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)),
        "split": config.to_dict(SplitConfig()),
        "train": config.to_dict(DMTrainConfig()),
    }
    print(f"CPU: {platform.processor() or platform.machine()}, load before: {open('/proc/loadavg').read().split()[:3]}")

    # back to back, in this process
    req = SweepRequest(kind="dm", grid_file=grid, sweep_dir=tmp / "seq", base=base, test=False)
    p = plan(req)
    panel = load_panel(config=DataConfig(data_root=str(root)))
    t0 = time.perf_counter()
    n = 0
    for cfg in p.space.grid():
        for s in p.space.seeds:
            ov = {**cfg, p.space.seed_key: s}
            ck = config_key(cfg)
            run_trial(
                TrialSpec("dm", f"{ck}-s{s}", ck, n, ov, base, str(tmp / "seq" / f"{ck}-s{s}"), train_table="train"),
                panel,
            )
            n += 1
    seq = time.perf_counter() - t0
    print(f"back to back: {n} trials in {seq:.1f} s ({seq / n:.2f} s per trial)")

    # by hand: one `mqc train dm` process per trial, one after the other
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "MQC_FEATURES_VOL_WINDOWS": "5",
        "MQC_FEATURES_MOMENTUM_WINDOWS": "5,10",
        "MQC_FEATURES_VOLUME_WINDOW": "5",
        "MQC_TRAIN_LOG_INTERVAL": "20",
        "MQC_RUNS_DIR": str(tmp / "hand"),
    }
    t0 = time.perf_counter()
    for cfg in p.space.grid():
        for s in p.space.seeds:
            flags = ["--steps", "40", "--eval-interval", "20", "--batch-windows", "4", "--rollout-groups", "4"]
            flags += ["--horizon", "8", "--hidden-size", "16", "--lookback", str(cfg["train.lookback"])]
            cmd = [sys.executable, "-m", "mqc", "-q", "train", "dm", "--data-root", str(root), *flags, "--seed", str(s)]
            subprocess.run(cmd, env=env, check=True, capture_output=True)
    hand = time.perf_counter() - t0
    print(f"by hand (8 x `mqc train dm`): {hand:.1f} s")

    backends = ["local"] + ([] if args.no_ray else ["ray"])
    for backend in backends:
        if backend == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray: not installed, skipped")
                continue
        for mc in (1, 2):
            sd = tmp / f"{backend}-{mc}"
            t0 = time.perf_counter()
            run_sweep(
                SweepRequest(
                    kind="dm", grid_file=grid, sweep_dir=sd, base=base, test=False, backend=backend, max_concurrent=mc
                )
            )
            wall = time.perf_counter() - t0
            rows = list(read_trials(sd).values())
            inside = sum(r["seconds"] for r in rows)
            extra = f"; overhead per trial {(wall - inside) / len(rows):.2f} s" if mc == 1 else ""
            print(
                f"sweep {backend} --max-concurrent {mc}: {len(rows)} trials in {wall:.1f} s "
                f"(trials' own time {inside:.1f} s{extra}); "
                f"throughput vs back to back {seq / wall:.2f}x, vs by hand {hand / wall:.2f}x"
            )
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
