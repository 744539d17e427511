"""Replaying an env policy over a panel: the target weights ``mqc backtest`` scores, and the ``ppo``
checkpoint kind as a ``Strategy``.

``replay_targets`` runs one episode of the book from the cube's first defined bar to the panel's
last bar with deterministic actions and records each bar's decoded targets; the backtest engine then
fills them (the same ``fills`` rules the env stepped through). The policy's own view of its book is
the continuous replay from that first bar. Training's val/test evaluation calls the same function on
the same bars (``panel.slice(0, hi)``), so a backtest of a checkpoint reproduces the run's report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import config
from mqc.core.errors import CheckpointError, DataError
from mqc.core.gym.book import Book, EnvData, action_bound, env_data, unbounded
from mqc.core.gym.config import CubeConfig, EnvConfig
from mqc.core.gym.cube import MOMENTUM_WINDOWS, build_cube
from mqc.core.gym.normalize import Identity, ObsNormalizer
from mqc.core.market.config import MarketConfig

Act = Callable[[np.ndarray], np.ndarray]  # normalised observations [1, D] -> actions [1, n_act]


def replay_targets(act: Act, data: EnvData, cfg: EnvConfig, normalizer: Any, mode: str) -> np.ndarray:
    """``[T, A]`` targets of ``act`` decided at every bar from ``data.first`` to the last one (rows before: 0).

    The last bar's decision earns nothing (a backtest's last bar) but is made, so the engine holds it.
    """
    T, A = data.n_bars, data.n_assets
    out = np.zeros((T, A))
    book = Book(data, unbounded(cfg), 1, data.first, T + 1, mode=mode)
    book.reset(np.array([0]), np.array([data.first]))
    for t in range(data.first, T):
        action = np.asarray(act(normalizer(book.observe())), dtype=np.float64).reshape(1, -1)
        book.step(action)
        out[t] = book.last_targets[0]
    return out


def _history_overnight(data: EnvData) -> EnvData:
    """The last bar of the panel counts as overnight (a backtest ending there holds overnight)."""
    ov = data.overnight.copy()
    ov[-1] = True
    return dataclasses.replace(data, overnight=ov)


def cube_warmup(cfg: CubeConfig) -> int:
    """First bar every cube feature can be defined at (the backtest's embargo when it recomputes a split)."""
    return max(max(MOMENTUM_WINDOWS), cfg.min_context - 1)


@dataclass
class EnvPolicyStrategy:
    """A policy acting in the portfolio env, as a ``Strategy`` (kind ``ppo``)."""

    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    cube_cfg: CubeConfig
    env_cfg: EnvConfig
    mode: str
    act: Act
    normalizer: Any
    asset_classes: tuple[str, ...] = ()
    lookback: int = 1
    path: Path | None = None
    metrics: dict[str, Any] | None = None

    @property
    def warmup(self) -> int:
        return cube_warmup(self.cube_cfg)

    def target_weights(self, panel: Any, cube: Any = None) -> np.ndarray:
        """``[T, A]`` float64 targets; row t uses bars <= t only (``cube``: the panel's, else built or cached)."""
        if tuple(panel.symbols) != self.symbols:
            raise DataError(
                f"this {self.kind} policy trades {','.join(self.symbols)}, the panel holds {','.join(panel.symbols)}",
                hint=f"load exactly {','.join(self.symbols)}",
            )
        cube = cube if cube is not None else build_cube(panel, self.cube_cfg)
        data = _history_overnight(env_data(panel, cube, self.market))
        return replay_targets(self.act, data, self.env_cfg, self.normalizer, self.mode)


# ----- the ppo checkpoint kind ------------------------------------------------------------------
def sb3_policy(
    obs_size: int,
    n_actions: int,
    policy_kwargs: dict[str, Any],
    state_dict: dict[str, Any] | None = None,
    bound: float = 1.0,
):
    """An SB3 ``ActorCriticPolicy`` for the env's spaces (weights loaded when given)."""
    from mqc.core.errors import require

    gym = require("gymnasium", "rl")
    require("stable_baselines3", "rl")
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy = ActorCriticPolicy(
        gym.spaces.Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float32),
        gym.spaces.Box(-bound, bound, shape=(n_actions,), dtype=np.float32),
        lr_schedule=lambda _: 0.0,
        **policy_kwargs,
    )
    if state_dict is not None:
        policy.load_state_dict(state_dict)
    return policy.eval()


def deterministic_act(policy: Any) -> Act:
    """``act`` of an SB3 policy: its deterministic action (the Gaussian mean, clipped to the box)."""

    def act(obs: np.ndarray) -> np.ndarray:
        action, _ = policy.predict(obs, deterministic=True)
        return action

    return act


def load_ppo_strategy(ckpt: dict[str, Any], path: Path) -> EnvPolicyStrategy:
    """The loader of checkpoint kind ``ppo`` (registered by ``mqc.core.train.checkpoint_kinds``)."""
    try:
        market = config.from_dict(MarketConfig, ckpt["market_config"], f"{path}: market_config")
        cube_cfg = config.from_dict(CubeConfig, ckpt["cube_config"], f"{path}: cube_config")
        env_cfg = config.from_dict(EnvConfig, ckpt["env_config"], f"{path}: env_config")
        norm_raw = ckpt["normalizer"]
        normalizer = Identity() if norm_raw.get("identity") else ObsNormalizer.from_dict(norm_raw)
        policy = sb3_policy(
            int(ckpt["obs_size"]),
            int(ckpt["n_actions"]),
            dict(ckpt["policy_kwargs"]),
            ckpt["state_dict"],
            action_bound(ckpt["action_mode"]),
        )
    except (KeyError, TypeError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: incomplete or mismatched ppo checkpoint ({type(exc).__name__}: {str(exc)[:160]})"
        ) from exc
    return EnvPolicyStrategy(
        kind="ppo",
        symbols=tuple(ckpt["symbols"]),
        timeframe=ckpt["timeframe"],
        market=market,
        cube_cfg=cube_cfg,
        env_cfg=env_cfg,
        mode=ckpt["action_mode"],
        act=deterministic_act(policy),
        normalizer=normalizer,
        asset_classes=tuple(ckpt["asset_classes"]),
        path=path,
        metrics=ckpt.get("metrics"),
    )
