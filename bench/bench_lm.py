"""Candle-LM performance: stage-1 training throughput next to a bare fp32 matmul peak, and
generation with the KV cache vs without (same samples).

Training: the CPU default model (4 layers, 4 heads, 256 dims, seq 256, vocab 513), batch 16,
Muon + AdamW as ``mqc stage1`` runs it, on random tokens (the data does not change the FLOPs).
Achieved GFLOP/s = ``GPT.flops_per_token()`` (6 x matmul parameters + attention) x tokens/s. The
peak is a square fp32 matmul (``--peak-n``) timed in the same process on the same threads.

Generation: 8 contexts x 4 samples, 128-token prompt, 32 new tokens, top-k off; the samples must be
identical with and without the cache (asserted).

Pipeline (``--pipeline``): ``mqc data sample`` into a temporary data directory, then ``mqc stage1``,
``stage2 --symbols GOOG``, ``stage3 --horizon 32`` and ``stage4`` at their defaults, each a process of
its own; one line per stage with wall and CPU seconds (``getrusage`` of the child) and the load
average, then the total against the issue's 10-minute target.

    python bench/bench_lm.py --threads 1        # CPU default
    python bench/bench_lm.py --threads 2 --quick
    python bench/bench_lm.py --device cuda --depth 8 --batch 64   # a GPU profile (bf16 autocast)
    python bench/bench_lm.py --pipeline         # the whole pipeline on the sample data, defaults
    python bench/bench_lm.py --stage4-step      # one stage-4 step: old path vs new, interleaved
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def matmul_peak(n: int, device: str, dtype: torch.dtype, repeat: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b
    sync(device)
    return 2 * n**3 * repeat / (time.perf_counter() - t) / 1e9


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_throughput(cfg, batch: int, steps: int, device: str) -> dict[str, float]:
    from mqc.core.lm.gpt import GPT

    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    hidden = set(model.hidden_matrices())
    named = list(model.named_parameters())
    opts = [
        torch.optim.AdamW([p for n, p in named if n not in hidden], lr=3e-3),
        torch.optim.Muon([p for n, p in named if n in hidden], lr=0.02),
    ]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.sequence_len + 1), device=device)

    def step() -> None:
        with amp:
            logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for o in opts:
            o.step()
            o.zero_grad(set_to_none=True)

    step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    sec = (time.perf_counter() - t) / steps
    tok = batch * cfg.sequence_len / sec
    return {"sec_per_step": sec, "tokens_per_s": tok, "gflops": tok * model.flops_per_token() / 1e9}


def generation(cfg, device: str) -> dict[str, float]:
    from mqc.core.lm.engine import generate
    from mqc.core.lm.gpt import GPT

    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    for p in model.parameters():  # a trained-looking model: the zero-init head would sample uniformly
        torch.nn.init.normal_(p, std=0.05)
    prompt = torch.randint(0, cfg.vocab_size - 1, (8, 128), device=device).repeat_interleave(4, dim=0)
    out = {}
    for cache in (True, False):
        g = torch.Generator(device=device).manual_seed(1)
        generate(model, prompt[:2], 4, generator=g, use_cache=cache)  # warm-up
        g = torch.Generator(device=device).manual_seed(1)
        sync(device)
        t = time.perf_counter()
        out[cache] = generate(model, prompt, 32, generator=g, use_cache=cache)
        sync(device)
        out[f"sec_{'cache' if cache else 'no_cache'}"] = time.perf_counter() - t
    assert torch.equal(out[True], out[False]), "the cache changed the samples"
    return {
        "sec_cache": out["sec_cache"],
        "sec_no_cache": out["sec_no_cache"],
        "speedup": out["sec_no_cache"] / out["sec_cache"],
    }


def stage4_step(rounds: int) -> dict[str, float]:
    """One stage-4 step's model work (sample 8 contexts x 4 horizons of 32 after 128 tokens, reference
    pass, policy pass, backward), the old way (prompt repeated per sample, full passes over context +
    horizon) and the new (context once per group), interleaved; medians of CPU and wall seconds. The
    draws must be identical and the losses equal to float rounding (asserted)."""
    import copy

    from mqc.core.lm.engine import generate
    from mqc.core.lm.gpt import GPT, GPTConfig
    from mqc.core.lm.rl import episode_loss, grpo_loss

    torch.manual_seed(0)
    model = GPT(GPTConfig())
    for p in model.parameters():  # a trained-looking model: the zero-init head would sample uniformly
        torch.nn.init.normal_(p, std=0.05)
    ref = copy.deepcopy(model).eval()
    ctx = torch.randint(0, 512, (8, 128))
    adv = torch.randn(32)

    def old() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(1)
        drawn = generate(model, ctx.repeat_interleave(4, dim=0), 32, allowed=512)
        seq = torch.cat([ctx.repeat_interleave(4, dim=0), drawn], dim=1)
        with torch.no_grad():
            ref_logits = ref(seq[:, :-1])
        loss = grpo_loss(model(seq[:, :-1]), ref_logits, seq, 32, adv, 0.05, 512)[0]
        loss.backward()
        return drawn, loss.detach()

    def new() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(1)
        drawn = generate(model, ctx, 32, group=4, allowed=512)
        loss = episode_loss(model, ref, ctx, drawn, adv, 0.05, 512)[0]
        loss.backward()
        return drawn, loss.detach()

    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    outs = {}
    for r in range(rounds + 1):
        for name, fn in (("old", old), ("new", new)) if r % 2 else (("new", new), ("old", old)):
            model.zero_grad(set_to_none=True)
            c, t = time.process_time(), time.perf_counter()
            outs[name] = fn()
            if r:  # round 0 warms up
                times[name].append((time.process_time() - c, time.perf_counter() - t))
    assert torch.equal(outs["old"][0], outs["new"][0]), "the grouped sampler changed the draws"
    torch.testing.assert_close(outs["old"][1], outs["new"][1], atol=1e-5, rtol=1e-5)

    def med(name: str, i: int) -> float:
        return float(sorted(x[i] for x in times[name])[len(times[name]) // 2])

    return {
        "old_cpu_s": med("old", 0),
        "new_cpu_s": med("new", 0),
        "old_wall_s": med("old", 1),
        "new_wall_s": med("new", 1),
        "speedup_cpu": med("old", 0) / med("new", 0),
    }


PIPELINE = (
    ("data sample", ["data", "sample"]),
    ("stage1", ["stage1"]),
    ("stage2", ["stage2", "--symbols", "GOOG"]),
    ("stage3", ["stage3", "--horizon", "32"]),
    ("stage4", ["stage4"]),
)
TARGET_S = 600.0


def pipeline(threads: int | None, keep: str | None) -> None:
    """Run the four stages at their defaults on the sample data; print per-stage and total times."""
    root = Path(keep or tempfile.mkdtemp(prefix="mqc-lm-pipeline-"))
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    env.update({f"MQC_{d}_DIR": str(root / d.lower()) for d in ("DATA", "CONFIG", "CACHE")})
    env.pop("MQC_RUNS_DIR", None)  # runs under the temporary data directory
    extra = ["--threads", str(threads)] if threads else []
    print(f"lm pipeline: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, data dir {root}")
    total_wall = total_cpu = 0.0
    for name, argv in PIPELINE:
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "mqc", *argv, *([*extra, "--quiet"] if name.startswith("stage") else [])]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if res.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        if name.startswith("stage"):
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"lm pipeline {name}: wall {wall:.1f} s, cpu {cpu:.1f} s, load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)
    verdict = "met" if total_wall < TARGET_S else "not met"
    print(
        f"lm pipeline total (stage1..4, tokenizer included): wall {total_wall:.1f} s, cpu {total_cpu:.1f} s "
        f"(target < {TARGET_S:.0f} s wall on 2 cores: {verdict})"
    )


def main() -> None:
    from mqc.core.lm.gpt import GPTConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--depth", type=int, default=0, help="0: the CPU default (4 layers, 256 dims)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--peak-n", type=int, default=1024)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pipeline", action="store_true", help="time stage1..4 at their defaults on the sample data")
    ap.add_argument("--stage4-step", action="store_true", help="stage-4 step, old vs new path, interleaved")
    ap.add_argument("--rounds", type=int, default=5, help="--stage4-step: interleaved rounds")
    ap.add_argument("--keep", default=None, help="--pipeline: data directory to use and keep (default: a temp dir)")
    args = ap.parse_args()
    if args.pipeline:
        pipeline(args.threads if args.threads != 1 else None, args.keep)
        return
    if args.stage4_step:
        torch.set_num_threads(args.threads)
        r = stage4_step(args.rounds)
        print(
            f"lm stage-4 step ({args.threads} thread(s), load {os.getloadavg()[0]:.2f}): "
            f"old {r['old_cpu_s']:.3f} s cpu / {r['old_wall_s']:.3f} s wall, "
            f"new {r['new_cpu_s']:.3f} s cpu / {r['new_wall_s']:.3f} s wall: "
            f"{r['speedup_cpu']:.2f}x (cpu, medians of {args.rounds} interleaved rounds; same draws, same loss)"
        )
        return
    torch.set_num_threads(args.threads)
    cfg = GPTConfig.from_depth(args.depth, 256, 513) if args.depth else GPTConfig()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    steps = 2 if args.quick else args.steps
    peak = matmul_peak(args.peak_n, args.device, dtype, 3 if args.quick else 10)
    train = train_throughput(cfg, args.batch, steps, args.device)
    gen = generation(cfg, args.device)
    res = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "threads": args.threads,
        "device": args.device,
        "model": cfg.to_dict(),
        "batch": args.batch,
        "matmul_peak_gflops": peak,
        "train": train,
        "train_fraction_of_peak": train["gflops"] / peak,
        "generation": gen,
    }
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
