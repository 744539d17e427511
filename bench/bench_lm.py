"""Candle-LM performance: stage-1 training throughput next to a bare fp32 matmul peak, and
generation with the KV cache vs without (same samples).

Training: the CPU default model (4 layers, 4 heads, 256 dims, seq 256, vocab 513), batch 16,
Muon + AdamW as ``mqc stage1`` runs it, on random tokens (the data does not change the FLOPs).
Achieved GFLOP/s = ``GPT.flops_per_token()`` (6 x matmul parameters + attention) x tokens/s. The
peak is a square fp32 matmul (``--peak-n``) timed in the same process on the same threads.

Generation: 8 contexts x 4 samples, 128-token prompt, 32 new tokens, top-k off; the samples must be
identical with and without the cache (asserted).

    python bench/bench_lm.py --threads 1        # CPU default
    python bench/bench_lm.py --threads 2 --quick
    python bench/bench_lm.py --device cuda --depth 8 --batch 64   # a GPU profile (bf16 autocast)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time

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
    args = ap.parse_args()
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
