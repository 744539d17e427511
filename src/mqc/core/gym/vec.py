"""``BatchedPortfolioEnv``: N portfolio episodes stepped at once (numpy), an SB3 ``VecEnv``.

SB3 rejects Gymnasium's vector envs (and their autoreset convention differs), so this subclasses
SB3's own ``VecEnv``: a finished episode is reset inside ``step_wait``, its last observation is in
``info["terminal_observation"]``, and ``info["episode"]`` carries its return and length (what
``VecMonitor`` would add). One ``book.Book`` holds every episode, so a step is one call of the
market's ``fills.step`` on ``[N, A]`` arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mqc.core.errors import require
from mqc.core.gym.book import Book, EnvData, action_bound
from mqc.core.gym.config import EnvConfig

require("stable_baselines3", "rl")
gym = require("gymnasium", "rl")
from stable_baselines3.common.vec_env.base_vec_env import VecEnv  # noqa: E402


class BatchedPortfolioEnv(VecEnv):
    """``n_envs`` episodes over the segment ``[lo, hi)`` with random starts (see module docstring)."""

    render_mode = None

    def __init__(
        self,
        data: EnvData,
        cfg: EnvConfig | None = None,
        n_envs: int = 8,
        *,
        lo: int = 0,
        hi: int | None = None,
        seed: int | None = None,
        infos: bool = True,
        mode: str | None = None,
    ) -> None:
        self.cfg = cfg or EnvConfig()
        self.core = Book(data, self.cfg, n_envs, lo, data.n_bars if hi is None else hi, mode=mode)
        self.rng = np.random.default_rng(seed)
        self.with_infos = infos
        self._actions: np.ndarray | None = None
        self.ep_return = np.zeros(n_envs)
        b = action_bound(self.core.mode)
        obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(data.obs_size,), dtype=np.float32)
        act_space = gym.spaces.Box(-b, b, shape=(self.core.n_actions,), dtype=np.float32)
        super().__init__(n_envs, obs_space, act_space)

    def _starts(self, k: int) -> np.ndarray:
        return self.rng.integers(self.core.lo, self.core.last_start + 1, size=k)

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self.rng = np.random.default_rng(self._seeds[0])
        self._reset_seeds()
        idx = np.arange(self.num_envs)
        self.core.reset(idx, self._starts(self.num_envs))
        self.ep_return[:] = 0.0
        return self.core.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        res = self.core.step(self._actions)
        self.ep_return += res.reward
        done = res.truncated if res.terminated is self.core.never else res.terminated | res.truncated
        obs = self.core.observe()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if self.with_infos:
            acc = res.accounting
            for i in range(self.num_envs):
                infos[i] = {k: v[i] for k, v in acc.items()}
        if done.any():
            idx = np.flatnonzero(done)
            for i in idx:
                infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(res.truncated[i])
                infos[i]["episode"] = {"r": float(self.ep_return[i]), "l": int(self.core.steps[i])}
            self.core.reset(idx, self._starts(len(idx)))
            self.ep_return[idx] = 0.0
            obs[idx] = self.core.observe()[idx]
        return obs, res.reward.astype(np.float32), done, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)


from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper  # noqa: E402


class NormalizedVecEnv(VecEnvWrapper):
    """Observations through an ``ObsNormalizer`` (updated while ``normalizer.frozen`` is False)."""

    def __init__(self, venv: VecEnv, normalizer: Any) -> None:
        super().__init__(venv)
        self.normalizer = normalizer

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self.normalizer.update(obs)
        return self.normalizer(obs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.normalizer.update(obs)
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self.normalizer(info["terminal_observation"][None])[0]
        return self.normalizer(obs), rewards, dones, infos
