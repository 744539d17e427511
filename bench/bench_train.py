"""Training throughput of ``train dm`` against a bare ``nn.GRU`` forward+backward of equal shape.

Both run in the same process, interleaved, on the same synthetic panel shape. Throughput is counted
in policy-steps/s = windows x lookback x rollout groups per second (per optimiser step the policy
encodes ``batch_windows * horizon`` windows of ``lookback`` bars; the bare GRU runs a sequence batch
of exactly that shape: ``nn.GRU(hidden, hidden)`` on ``[batch_windows * horizon, lookback, hidden]``,
forward + backward + an AdamW step, the policy's recurrent core with nothing around it). The policy
itself runs ``FastGRU`` (nn.GRU's equations and weights with a hand-written backward, see
``mqc.core.policy.gru``), so two more baselines keep the figure honest: the same bare step on
``FastGRU`` (``ratio_vs_fast_gru``: the cost of everything around the recurrence) and a bare
``nn.GRU`` fed the raw ``A*F`` features, as a policy without the shared input projection would be.

``FastGRU``'s backward flushes subnormal floats to zero (on Intel cores arithmetic on them is
several times slower, and the recurrence's gradient decays into them over a long lookback); the bare
``nn.GRU`` is timed both with torch's defaults (``ratio``) and with subnormals flushed for its whole
step (``ratio_vs_flushed_gru``), the stricter baseline. Each round times every candidate once; the
``*_median`` / ``*_range`` ratios are over the per-round ratios, the others use the best times.

    python bench/bench_train.py [--assets 27] [--lookback 64,192] [--objective hybrid] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import torch

from mqc.core.data.config import FeatureConfig
from mqc.core.data.panel import align_frames
from mqc.core.data.synth import SynthSpec, synth_ohlcv
from mqc.core.market.config import MarketConfig
from mqc.core.policy.gru import FastGRU, flush_denormals
from mqc.core.train.config import DMTrainConfig
from mqc.core.train.dm import DMTrainer


def _time_interleaved(fns: list, repeats: int) -> list[list[float]]:
    """Seconds per call of each function in each of ``repeats`` rounds, run round-robin so that load
    from other processes on a shared machine hits every candidate alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return times


def _paired(num: list[float], den: list[float]) -> tuple[float, list[float]]:
    """Median and (min, max) of the per-round ratios ``num / den``."""
    r = [a / b for a, b in zip(num, den, strict=True)]
    return statistics.median(r), [min(r), max(r)]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _flushed(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with flush_denormals():
            fn()

    return run


def _bare_step(gru: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One bare forward + backward (loss on the last state, as the policy reads it) + AdamW step."""
    opt = torch.optim.AdamW(gru.parameters(), lr=1e-3)

    def run() -> None:
        opt.zero_grad()
        out, _ = gru(x)
        out[:, -1].sum().backward()
        opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    return run


def bench(assets: int, lookback: int, objective: str, repeats: int, threads: int, device: str) -> dict:
    torch.set_num_threads(threads)
    panel = align_frames(synth_ohlcv(SynthSpec(n_assets=assets, n_bars=1500, seed=0)))
    cfg = DMTrainConfig(
        lookback=lookback, objective=objective, threads=threads, device=device, save_dir=tempfile.mkdtemp()
    )
    trainer = DMTrainer(panel, MarketConfig(), cfg, feature_cfg=FeatureConfig())
    n_seq, width = cfg.batch_windows * cfg.horizon, assets * trainer.data.inputs.n_features
    dev = trainer.device
    x = torch.randn(n_seq, lookback, cfg.hidden_size, device=dev)
    x_wide = torch.randn(n_seq, lookback, width, device=dev)
    bare = _bare_step(torch.nn.GRU(cfg.hidden_size, cfg.hidden_size, batch_first=True).to(dev), x)
    bare_flushed = _flushed(_bare_step(torch.nn.GRU(cfg.hidden_size, cfg.hidden_size, batch_first=True).to(dev), x))
    bare_fast = _bare_step(FastGRU(cfg.hidden_size, cfg.hidden_size).to(dev), x)
    bare_wide = _bare_step(torch.nn.GRU(width, cfg.hidden_size, batch_first=True).to(dev), x_wide)

    def step() -> None:
        trainer.train_step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    times = _time_interleaved([bare, step, bare_flushed, bare_fast, bare_wide], repeats)
    t_bare, t_step, t_flushed, t_fast, t_wide = (min(t) for t in times)
    ratio_med, ratio_range = _paired(times[0], times[1])
    flushed_med, flushed_range = _paired(times[2], times[1])
    policy_steps = cfg.batch_windows * lookback * cfg.rollout_groups
    return {
        "assets": assets,
        "features": trainer.data.inputs.n_features,
        "lookback": lookback,
        "objective": objective,
        "batch_windows": cfg.batch_windows,
        "horizon": cfg.horizon,
        "rollout_groups": cfg.rollout_groups,
        "hidden": cfg.hidden_size,
        "step_s": t_step,
        "bare_gru_s": t_bare,
        "policy_steps_per_s": policy_steps / t_step,
        "bare_gru_policy_steps_per_s": policy_steps / t_bare,
        "ratio": t_bare / t_step,
        "ratio_median": ratio_med,
        "ratio_range": ratio_range,
        "step_median_s": statistics.median(times[1]),
        "bare_gru_median_s": statistics.median(times[0]),
        "bare_gru_flushed_s": t_flushed,
        "ratio_vs_flushed_gru": t_flushed / t_step,
        "ratio_vs_flushed_gru_median": flushed_med,
        "ratio_vs_flushed_gru_range": flushed_range,
        "bare_fast_gru_s": t_fast,
        "ratio_vs_fast_gru": t_fast / t_step,
        "bare_gru_raw_input_s": t_wide,
        "ratio_vs_raw_input_gru": t_wide / t_step,
    }


def _rounded(v: object) -> object:
    if isinstance(v, float):
        return round(v, 4)
    return [_rounded(u) for u in v] if isinstance(v, list) else v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=27)
    ap.add_argument("--lookback", default="64,192")
    ap.add_argument("--objective", default="grpo,pathwise,hybrid")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    print(
        json.dumps(
            {
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "cpu": cpu_model(),
                "cpus": os.cpu_count(),
                "threads": a.threads,
                "loadavg": [round(v, 2) for v in os.getloadavg()],
            }
        )
    )
    for lb in [int(v) for v in a.lookback.split(",")]:
        for obj in a.objective.split(","):
            r = bench(a.assets, lb, obj, a.repeats, a.threads, a.device)
            r["loadavg_after"] = list(os.getloadavg())
            print(json.dumps({k: _rounded(v) for k, v in r.items()}))


if __name__ == "__main__":
    main()
