"""Gym benchmarks: batched env steps/s vs a bare numpy loop, SB3 PPO fps vs CartPole, feature cube speed.

    PYTHONPATH=src python bench/bench_gym.py [env|ppo|cube|all]

- env: ``BatchedPortfolioEnv`` (64 envs x 30 assets, infos off, as a throughput run) next to a bare
  numpy loop of the same arithmetic (softmax decode, long-only cap, costs from the pre-trade book,
  net return, drift, equity), interleaved rounds, ratio of medians. One core (OMP/MKL threads 1).
- ppo: SB3 PPO fps (timesteps / s of ``learn``) on the portfolio env (8 envs, batched) and on
  CartPole-v1 (8 envs, DummyVecEnv), same PPO settings.
- cube: bars x assets per second of the feature cube for ``bootstrap`` (256 samples) and ``ewma-vol``.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _panel(n_assets: int, n_bars: int):
    from mqc.core.data.panel import align_frames
    from mqc.core.data.synth import SynthSpec, synth_ohlcv

    return align_frames(synth_ohlcv(SynthSpec(n_assets=n_assets, n_bars=n_bars, seed=0)))


def _data(n_assets: int = 30, n_bars: int = 2000):
    from mqc.core.gym.book import env_data
    from mqc.core.gym.config import CubeConfig
    from mqc.core.gym.cube import build_cube
    from mqc.core.market.config import MarketConfig

    panel = _panel(n_assets, n_bars)
    return env_data(panel, build_cube(panel, CubeConfig(forecaster="ewma-vol")), MarketConfig())


def bare_loop(data, n_envs: int, steps: int, actions: np.ndarray, starts: np.ndarray) -> float:
    """The env's arithmetic written inline: decode, cap, costs, net, drift, equity; reset at the end."""
    A = data.n_assets
    t = starts.copy()
    book = np.zeros((n_envs, A))
    equity = np.ones(n_envs)
    fees, rets = data.fees, data.returns
    lo, hi = data.first, data.n_bars - 1
    t0 = time.perf_counter()
    for k in range(steps):
        a = actions[k % len(actions)]
        z = np.exp(a - a.max(axis=1, keepdims=True))
        w = z / z.sum(axis=1, keepdims=True)
        gross = np.abs(w).sum(axis=1)
        w = w * np.minimum(1.0 / np.maximum(gross, 1e-12), 1.0)[:, None]
        r = rets[t]
        cost = (np.abs(w - book) * fees).sum(axis=1)
        net = (w * r).sum(axis=1) - cost
        book = w * (1.0 + r) / (1.0 + net)[:, None]
        equity = equity * (1.0 + net)
        _obs = data.features[t]
        t = t + 1
        done = t >= hi
        if done.any():
            t[done] = lo
            book[done] = 0.0
    return n_envs * steps / (time.perf_counter() - t0)


def env_bench(rounds: int = 7, steps: int = 2000) -> None:
    from mqc.core.gym.config import EnvConfig
    from mqc.core.gym.vec import BatchedPortfolioEnv

    data = _data()
    n = 64
    rng = np.random.default_rng(0)
    actions = rng.uniform(-5, 5, size=(64, n, data.n_assets)).astype(np.float32)
    env = BatchedPortfolioEnv(data, EnvConfig(episode_length=256), n, seed=0, infos=False)
    env.reset()
    starts = env.core.t.copy()
    ours, bare = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for k in range(steps):
            env.step_async(actions[k % 64])
            env.step_wait()
        ours.append(n * steps / (time.perf_counter() - t0))
        bare.append(bare_loop(data, n, steps, actions, starts))
    mo, mb = float(np.median(ours)), float(np.median(bare))
    print(
        f"env: 64 envs x 30 assets: BatchedPortfolioEnv {mo:,.0f} env-steps/s, "
        f"bare numpy loop {mb:,.0f}/s, ratio {mo / mb:.2f}x"
    )
    print(f"     rounds ours {[round(x) for x in ours]}, bare {[round(x) for x in bare]}")


def ppo_bench(timesteps: int = 16384) -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from mqc.core.gym.config import EnvConfig
    from mqc.core.gym.normalize import ObsNormalizer
    from mqc.core.gym.vec import BatchedPortfolioEnv, NormalizedVecEnv

    torch.set_num_threads(1)
    settings = dict(n_steps=128, batch_size=256, n_epochs=4, policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")
    data = _data(n_assets=3, n_bars=2000)
    port = NormalizedVecEnv(BatchedPortfolioEnv(data, EnvConfig(), 8, seed=0), ObsNormalizer(data.obs_size))
    cart = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(8)])
    out = {}
    for name, venv in (("portfolio", port), ("cartpole", cart), ("portfolio again", port)):
        model = PPO("MlpPolicy", venv, **settings)
        t0 = time.perf_counter()
        model.learn(timesteps)
        out[name] = timesteps / (time.perf_counter() - t0)
    best_port = max(out["portfolio"], out["portfolio again"])
    print(
        f"ppo: fps portfolio {out['portfolio']:,.0f} / {out['portfolio again']:,.0f}, cartpole {out['cartpole']:,.0f}; "
        f"ratio {best_port / out['cartpole']:.2f}x (obs {data.obs_size} vs 4, action 3 vs discrete 2)"
    )


def cube_bench() -> None:
    from mqc.core.gym.config import CubeConfig
    from mqc.core.gym.cube import build_cube

    panel = _panel(10, 2000)
    for name, cfg in (
        ("bootstrap", CubeConfig(forecaster="bootstrap", num_samples=256)),
        ("ewma-vol", CubeConfig(forecaster="ewma-vol")),
    ):
        t0 = time.perf_counter()
        build_cube(panel, cfg, cache=False)
        dt = time.perf_counter() - t0
        print(
            f"cube: {name}: {len(panel)} bars x {panel.n_assets} assets in {dt:.2f} s = "
            f"{len(panel) * panel.n_assets / dt:,.0f} bar-assets/s"
        )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    print(f"load average: {os.getloadavg()}")
    if which in ("env", "all"):
        env_bench()
    if which in ("ppo", "all"):
        ppo_bench()
    if which in ("cube", "all"):
        cube_bench()
