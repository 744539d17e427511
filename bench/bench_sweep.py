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
    python bench/bench_sweep.py --rounds 3 --by-hand   # the figures of docs/benchmarks.md (last line: RESULT)
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

GRID = """
dm.steps = 40
dm.eval_interval = 20
dm.log_interval = 20
dm.batch_windows = 4
dm.rollout_groups = 4
dm.horizon = 8
dm.hidden_size = 16
dm.lookback = [16, 20, 24, 28]
seed = [0, 1]
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    ap.add_argument("--by-hand", action="store_true", help="also time 8 `mqc train dm` commands")
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
        "dm": config.to_dict(DMTrainConfig()),
    }
    print(f"CPU: {platform.processor() or platform.machine()}, load before: {open('/proc/loadavg').read().split()[:3]}")

    import os
    import resource
    import statistics
    import subprocess
    import sys

    def clock() -> tuple[float, float]:
        ru_s, ru_c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), ru_s.ru_utime + ru_s.ru_stime + ru_c.ru_utime + ru_c.ru_stime

    def back_to_back(out: Path) -> float:
        """The 8 trials one after the other in this process (``run_trial``, panel loaded once): the floor."""
        n = 0
        for cfg in p.space.grid():
            for s in p.space.seeds:
                ov = {**cfg, p.space.seed_key: s}
                ck = config_key(cfg)
                spec = TrialSpec("dm", f"{ck}-s{s}", ck, n, ov, base, str(out / f"{ck}-s{s}"), train_table="dm")
                run_trial(spec, panel)
                n += 1
        return n

    req = SweepRequest(kind="dm", grid_file=grid, sweep_dir=tmp / "plan", base=base, test=False)
    p = plan(req)
    panel = load_panel(config=DataConfig(data_root=str(root)))
    backends = ["local"]
    if not args.no_ray:
        try:
            import ray  # noqa: F401

            backends.append("ray")
        except ImportError:
            print("ray: not installed, skipped")
    figures: dict[str, list[tuple[float, float, float]]] = {}  # name -> [(wall, cpu, trials' own seconds)]
    for rnd in range(args.rounds):  # interleaved rounds: the load changes under all of them alike
        t0, c0 = clock()
        back_to_back(tmp / f"seq-{rnd}")
        t1, c1 = clock()
        figures.setdefault("back to back", []).append((t1 - t0, c1 - c0, t1 - t0))
        for backend in backends:
            for mc in (1, 2):
                sd = tmp / f"{backend}-{mc}-{rnd}"
                t0, c0 = clock()
                run_sweep(
                    SweepRequest(
                        kind="dm",
                        grid_file=grid,
                        sweep_dir=sd,
                        base=base,
                        test=False,
                        backend=backend,
                        max_concurrent=mc,
                    )
                )
                t1, c1 = clock()
                rows = list(read_trials(sd).values())
                assert len(rows) == 8 and all(r["status"] == "ok" for r in rows), rows
                figures.setdefault(f"{backend} mc{mc}", []).append((t1 - t0, c1 - c0, sum(r["seconds"] for r in rows)))
        print(f"round {rnd + 1}/{args.rounds} done, load {open('/proc/loadavg').read().split()[:3]}", flush=True)

    def med(name: str, i: int) -> float:
        return statistics.median(f[i] for f in figures[name])

    seq = med("back to back", 0)
    print(f"back to back: 8 trials in {seq:.1f} s wall, {med('back to back', 1):.1f} s CPU (median of {args.rounds})")
    for name in figures:
        if name == "back to back":
            continue
        wall, cpu, inside = med(name, 0), med(name, 1), med(name, 2)
        print(
            f"sweep {name}: {wall:.1f} s wall, driver CPU {cpu:.1f} s, trials' own {inside:.1f} s; "
            f"overhead per trial {(wall - inside) / 8:.2f} s (mc1: the scheduling + bookkeeping figure); "
            f"throughput {seq / wall:.2f}x back to back"
        )
    if args.by_hand:
        env = {
            **os.environ,
            "MQC_FEATURES_VOL_WINDOWS": "5",
            "MQC_FEATURES_MOMENTUM_WINDOWS": "5,10",
            "MQC_FEATURES_VOLUME_WINDOW": "5",
            "MQC_DM_LOG_INTERVAL": "20",
            "MQC_RUNS_DIR": str(tmp / "hand"),
        }
        t0 = time.perf_counter()
        for cfg in p.space.grid():
            for s in p.space.seeds:
                flags = ["--steps", "40", "--eval-interval", "20", "--batch-windows", "4", "--rollout-groups", "4"]
                flags += ["--horizon", "8", "--hidden-size", "16", "--lookback", str(cfg["dm.lookback"])]
                cmd = [sys.executable, "-m", "mqc", "-q", "train", "dm", "--data-root", str(root), *flags]
                subprocess.run([*cmd, "--seed", str(s)], env=env, check=True, capture_output=True)
        hand = time.perf_counter() - t0
        print(f"by hand (8 x `mqc train dm`, one after the other): {hand:.1f} s")
    line = [f"overhead per trial: local {(med('local mc1', 0) - med('local mc1', 2)) / 8:.2f} s (target < 1 s)"]
    if "ray mc1" in figures:
        line.append(f"ray {(med('ray mc1', 0) - med('ray mc1', 2)) / 8:.2f} s (target < 3 s)")
    line.append(
        "throughput of 8 trials at --max-concurrent 2 vs back to back: "
        + ", ".join(f"{b} {seq / med(f'{b} mc2', 0):.2f}x" for b in backends)
        + " (target >= 0.80x)"
    )
    if args.by_hand:
        line.append("vs by hand: " + ", ".join(f"{b} {hand / med(f'{b} mc2', 0):.2f}x" for b in backends))
    print("RESULT " + "; ".join(line))
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
