"""Gym benchmarks: batched env steps/s vs a bare numpy loop, SB3 PPO fps vs CartPole, feature cube speed.

    PYTHONPATH=src python bench/bench_gym.py [env|ppo|cube|all]

- env: ``BatchedPortfolioEnv`` (64 envs x 30 assets, infos off, as a throughput run) next to a bare
  numpy loop of the same arithmetic (``bare_loop``: decode, caps, costs, financing, net return, drift,
  equity, drawdown, reward, observations, restarts), interleaved rounds; env-steps/s from wall and from
  process CPU time (the box is shared), ratio of medians of each, in one line. The env runs its default
  engine (the compiled one-bar step and env pieces when numba is installed, after a warm-up); a second
  line gives the numpy fallback (``[env] engine = "numpy"``) from the same rounds. One core (OMP/MKL threads 1).
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


def bare_loop(data, n_envs: int, steps: int, actions: np.ndarray, episode_length: int, seed: int = 0) -> None:
    """What the env computes for the bench's config, written inline as plain numpy.

    The bench's config: ``long`` actions (softmax of logits clipped to +-5), a long-only market with
    per-bar gross caps, no forward-filled bar, no reward penalty. Per step: decode, cap, costs from the
    pre-trade book, financing, net return, drifted book, equity, peak, drawdown, running mean, log
    reward, the next observations (feature row + book + drawdown + running mean, float32), episode
    ends and random restarts. No validation, no generic market rules (shorts, held assets).
    """
    m = data.market
    A, F = data.n_assets, data.features.shape[1]
    rows, fees, rets, dt = data.obs_rows, data.fees, data.returns, data.dt
    caps = np.where(data.overnight, m.max_overnight_leverage, m.max_gross_leverage)
    lo, hi = data.first, data.n_bars
    rng = np.random.default_rng(seed)
    t = rng.integers(lo, hi - 1 - episode_length + 1, size=n_envs)
    end = t + episode_length
    book = np.zeros((n_envs, A))
    equity, peak, recent = np.ones(n_envs), np.ones(n_envs), np.zeros(n_envs)
    for k in range(steps):
        a = np.clip(actions[k % len(actions)].astype(np.float64), -5.0, 5.0)
        z = np.exp(a - a.max(axis=1, keepdims=True))
        w = z / z.sum(axis=1, keepdims=True)
        gross = w.sum(axis=1)
        w = w * np.minimum(caps[t] / np.maximum(gross, 1e-12), 1.0)[:, None]
        r = rets[t]
        costs = (np.abs(w - book) * fees).sum(axis=1)
        long_ = w.sum(axis=1)
        borrowed, idle = np.maximum(long_ - 1.0, 0.0), np.maximum(1.0 - long_, 0.0)
        financing = (borrowed * m.financing_rate - idle * m.cash_rate) * dt[t]
        net = (w * r).sum(axis=1) - costs - financing
        book = w * (1.0 + r) / (1.0 + net)[:, None]
        equity = equity * (1.0 + net)
        peak = np.maximum(peak, equity)
        drawdown = 1.0 - equity / peak
        recent = 0.9 * recent + 0.1 * net
        _reward = np.log1p(np.maximum(net, -1.0 + 1e-12))
        t = t + 1
        done = t >= end
        if done.any():
            idx = np.flatnonzero(done)
            t[idx] = rng.integers(lo, hi - 1 - episode_length + 1, size=len(idx))
            end[idx] = t[idx] + episode_length
            book[idx], equity[idx], peak[idx], recent[idx], drawdown[idx] = 0.0, 1.0, 1.0, 0.0, 0.0
        obs = rows.take(t, axis=0)
        obs[:, F : F + A] = book
        obs[:, F + A] = -drawdown
        obs[:, F + A + 1] = recent


def _timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of ``fn()``."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def env_bench(rounds: int = 7, steps: int = 2000) -> None:
    from mqc.core.gym.config import EnvConfig
    from mqc.core.gym.vec import BatchedPortfolioEnv
    from mqc.core.market import step_kernel

    data = _data()
    n, length = 64, 256
    rng = np.random.default_rng(0)
    actions = rng.uniform(-5, 5, size=(64, n, data.n_assets)).astype(np.float32)
    engines = ("auto", "numpy")
    envs = {}
    for engine in engines:
        env = BatchedPortfolioEnv(data, EnvConfig(episode_length=length, engine=engine), n, seed=0, infos=False)
        env.reset()
        for k in range(64):  # warm-up: numba loads (or compiles) its kernels on the first step, not timed
            env.step_async(actions[k])
            env.step_wait()
        envs[engine] = env

    def ours(env) -> None:
        for k in range(steps):
            env.step_async(actions[k % 64])
            env.step_wait()

    res: dict[str, list[tuple[float, float]]] = {"env": [], "numpy": [], "bare": []}
    for _ in range(rounds):  # interleaved, so all see the same load
        res["env"].append(_timed(lambda: ours(envs["auto"])))
        res["bare"].append(_timed(lambda: bare_loop(data, n, steps, actions, length)))
        res["numpy"].append(_timed(lambda: ours(envs["numpy"])))
    rate = {f"{a}_{i}": [n * steps / r[i] for r in res[a]] for a in res for i in (0, 1)}
    med = {k: float(np.median(v)) for k, v in rate.items()}
    kernel = "compiled step (numba)" if step_kernel.HAVE_NUMBA else "numpy step (numba not installed)"
    print(
        f"env: 64 envs x 30 assets (infos off), {kernel}: BatchedPortfolioEnv {med['env_0']:,.0f} env-steps/s "
        f"wall ({med['env_1']:,.0f} per CPU-second), bare numpy loop {med['bare_0']:,.0f} wall "
        f"({med['bare_1']:,.0f} per CPU-second); ratio of medians {med['env_0'] / med['bare_0']:.2f}x wall, "
        f"{med['env_1'] / med['bare_1']:.2f}x CPU (target >= 0.7x and >= 1,000,000 env-steps/s)"
    )
    print(
        f"     numpy fallback (env.engine numpy): {med['numpy_0']:,.0f} env-steps/s wall "
        f"({med['numpy_1']:,.0f} per CPU-second) = {med['numpy_1'] / med['bare_1']:.2f}x of the bare loop by CPU"
    )
    for a in res:
        print(f"     rounds {a} (wall): {[round(x) for x in rate[a + '_0']]}")
    print(f"     load average after: {os.getloadavg()}")


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
