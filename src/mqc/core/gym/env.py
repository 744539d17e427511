"""Gymnasium environments over the batched book (``book.Book`` with one episode).

``PortfolioEnv``: the multi-asset portfolio (action modes ``long``, ``leverage``, ``long_short``;
an optional cash slot when ``market.include_cash``). ``SingleAssetEnv``: one asset, the action is
the position in [-1, 1] times the bar's leverage cap (negative positions are clipped by the
market's shorting rules). Both pass ``gymnasium.utils.env_checker.check_env``.

``reset(seed=..., options={"start_index": k})`` starts at decision bar k, ``{"random_start": True}``
(the default on the train split) at a random bar that leaves a full ``episode_length``;
``info`` holds the step's accounting (net return, turnover, costs, financing, gross exposure,
drawdown, each penalty).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mqc.core.errors import require
from mqc.core.gym.book import Book, EnvData, action_bound
from mqc.core.gym.config import EnvConfig

gym = require("gymnasium", "rl")
spaces = gym.spaces


class PortfolioEnv(gym.Env):
    """One portfolio episode over the segment ``[lo, hi)`` of ``data`` (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: EnvData,
        cfg: EnvConfig | None = None,
        *,
        lo: int = 0,
        hi: int | None = None,
        random_start: bool = True,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg or EnvConfig()
        self.data = data
        self.core = Book(data, self.cfg, 1, lo, data.n_bars if hi is None else hi, mode=mode)
        self.random_start = random_start
        b = action_bound(self.core.mode)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(data.obs_size,), dtype=np.float32)
        self.action_space = spaces.Box(-b, b, shape=(self.core.n_actions,), dtype=np.float32)

    @property
    def episode_length(self) -> int:
        return self.cfg.episode_length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = options or {}
        if "start_index" in options:
            start = int(options["start_index"])
        elif options.get("random_start", self.random_start):
            start = int(self.np_random.integers(self.core.lo, self.core.last_start + 1))
        else:
            start = self.core.lo
        self.core.reset(np.array([0]), np.array([start]))
        return self.core.observe()[0], {"bar": start}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        res = self.core.step(np.asarray(action, dtype=np.float64).reshape(1, -1))
        info = {k: float(v[0]) for k, v in res.accounting.items()}
        info["bar"] = int(res.accounting["bar"][0])
        return self.core.observe()[0], float(res.reward[0]), bool(res.terminated[0]), bool(res.truncated[0]), info


class SingleAssetEnv(PortfolioEnv):
    """One asset: the action is its position in [-1, 1] times the bar's leverage cap."""

    def __init__(self, data: EnvData, cfg: EnvConfig | None = None, **kwargs: Any) -> None:
        if data.n_assets != 1:
            from mqc.core.errors import ConfigError

            raise ConfigError(f"SingleAssetEnv takes one asset, the data holds {data.n_assets}")
        super().__init__(data, cfg, mode="position", **kwargs)
