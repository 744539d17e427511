"""Offline datasets: a behaviour policy replayed through the portfolio env, transitions written to disk.

The policy's target weights become actions in the env's own action space (``encode``: the inverse of
the env's decoding, up to its logit bound), the env steps them (so rewards, costs and penalties are the
env's), and each transition is recorded: observation (raw, as the env emits it), action, reward,
terminal, timeout. An offline-trained policy therefore acts in the same env, with the same decoding.

``write_dataset`` writes mqc's own NPZ (arrays + a ``metadata`` JSON string: env/cube/market settings,
symbols, feature names, action mode and bounds, the split segment); ``format="d3rlpy"`` writes a
d3rlpy ``MDPDataset`` (HDF5) instead (needs the ``offline`` extra).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import atomic, config
from mqc.core.errors import ConfigError, DataError, require
from mqc.core.gym.book import LOGIT_BOUND, Book, EnvData, action_bound
from mqc.core.gym.config import CubeConfig, EnvConfig
from mqc.core.market.config import MarketConfig

FORMAT = "mqc-offline"
FORMAT_VERSION = 1


def encode(weights: np.ndarray, mode: str, include_cash: bool, cap: np.ndarray) -> np.ndarray:
    """Actions ``[N, n_act]`` whose decoding (``book.decode``) gives ``weights`` ``[N, A]`` (up to the logit bound).

    ``long``/``leverage``: logits ``log w`` shifted so the largest is at the bound (a weight below
    ``exp(-2 * bound)`` of the largest decodes as ~0); the cash slot takes ``1 - sum w``; ``leverage``'s
    gross head is the logit of ``gross / cap``. ``long_short``: the long and short legs likewise.
    ``position``: ``w / cap``.
    """
    w = np.asarray(weights, dtype=np.float64)
    cap = np.asarray(cap, dtype=np.float64)
    tiny = np.exp(-2 * LOGIT_BOUND)

    def logits(p: np.ndarray) -> np.ndarray:
        lp = np.log(np.maximum(p, tiny * np.maximum(p.max(axis=1, keepdims=True), 1e-300)))
        return np.clip(lp - lp.max(axis=1, keepdims=True) + LOGIT_BOUND, -LOGIT_BOUND, LOGIT_BOUND)

    if mode == "position":
        return np.clip(w / cap[:, None], -1.0, 1.0)
    if mode in ("long", "leverage"):
        w = np.maximum(w, 0.0)
        gross = w.sum(axis=1)
        if mode == "long":
            parts = np.hstack([w, np.maximum(1.0 - gross, 0.0)[:, None]]) if include_cash else w
            return logits(np.where(parts.sum(axis=1, keepdims=True) > 0, parts, 1.0))
        shares = w / np.where(gross > 0, gross, 1.0)[:, None]
        if include_cash:
            shares = np.hstack([shares, np.zeros((len(w), 1))])
        g = np.clip(gross / cap, 1e-6, 1 - 1e-6)
        head = np.clip(np.log(g / (1 - g)), -LOGIT_BOUND, LOGIT_BOUND)
        return np.hstack([logits(np.where(gross[:, None] > 0, shares, 1.0)), head[:, None]])
    # long_short: longs - shorts = w / cap; each leg a softmax over assets + a cash slot
    x = w / cap[:, None]
    longs, shorts = np.maximum(x, 0.0), np.maximum(-x, 0.0)
    legs = []
    for leg in (longs, shorts):
        cash = np.maximum(1.0 - leg.sum(axis=1), 0.0)[:, None]
        legs.append(logits(np.hstack([leg, cash])))
    return np.hstack(legs)


@dataclass
class OfflineDataset:
    observations: np.ndarray  # float32 [N, obs]
    actions: np.ndarray  # float32 [N, n_act]
    rewards: np.ndarray  # float32 [N]
    terminals: np.ndarray  # bool [N]
    timeouts: np.ndarray  # bool [N]
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return len(self.rewards)


def collect(
    targets: np.ndarray,
    data: EnvData,
    env_cfg: EnvConfig,
    lo: int,
    hi: int,
    mode: str,
    *,
    meta: dict[str, Any] | None = None,
) -> OfflineDataset:
    """Replay ``targets`` ``[T, A]`` through the env over ``[lo, hi)`` in consecutive episodes of ``episode_length``.

    Raises:
        DataError: the segment holds no decision bar.
    """
    book = Book(data, env_cfg, 1, lo, hi, mode=mode)
    from mqc.core.market.fills import leverage_cap

    obs_l, act_l, rew_l, term_l, tout_l = [], [], [], [], []
    start = book.lo
    while start <= book.hi - 2:
        book.reset(np.array([0]), np.array([start]))
        while True:
            t = int(book.t[0])
            obs = book.observe()
            cap = np.atleast_1d(leverage_cap(data.market, data.overnight[t : t + 1]))
            action = encode(targets[t : t + 1], book.mode, book.include_cash, cap)
            res = book.step(action)
            obs_l.append(obs[0])
            act_l.append(action[0].astype(np.float32))
            rew_l.append(float(res.reward[0]))
            term_l.append(bool(res.terminated[0]))
            tout_l.append(bool(res.truncated[0]))
            if res.terminated[0] or res.truncated[0]:
                break
        start = int(book.t[0])  # the next episode starts where this one stopped
    if not rew_l:
        raise DataError(f"no decision bar in [{lo}, {hi})", hint="load more history")
    md = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "action_mode": mode,
        "action_bound": action_bound(mode),
        "include_cash": data.market.include_cash,
        "symbols": list(data.symbols),
        "feature_names": list(data.feature_names),
        "obs_layout": "cube row (asset-major: A x F) + pre-trade weights (A) + drawdown + recent return",
        "segment": [lo, hi],
        **(meta or {}),
    }
    return OfflineDataset(
        np.asarray(obs_l, dtype=np.float32),
        np.asarray(act_l, dtype=np.float32),
        np.asarray(rew_l, dtype=np.float32),
        np.asarray(term_l),
        np.asarray(tout_l),
        md,
    )


def write_dataset(ds: OfflineDataset, path: str | Path, fmt: str = "npz") -> Path:
    """Write ``ds`` atomically as mqc's NPZ or a d3rlpy ``MDPDataset`` (``fmt="d3rlpy"``, HDF5).

    Raises:
        ConfigError: unknown format. DependencyMissing: d3rlpy not installed.
    """
    path = Path(path).expanduser()
    if fmt == "npz":
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            observations=ds.observations,
            actions=ds.actions,
            rewards=ds.rewards,
            terminals=ds.terminals,
            timeouts=ds.timeouts,
            metadata=np.array(json.dumps(ds.metadata)),
        )
        atomic.write_bytes(path, buf.getvalue())
        return path
    if fmt == "d3rlpy":
        d3 = require("d3rlpy", "offline")
        dataset = d3.dataset.MDPDataset(
            observations=ds.observations,
            actions=ds.actions,
            rewards=ds.rewards,
            terminals=ds.terminals.astype(np.float32),
            timeouts=ds.timeouts.astype(np.float32),
        )
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
            dataset.dump(fh)
        return path
    raise ConfigError(f"unknown dataset format {fmt!r}; known: npz, d3rlpy")


def read_dataset(path: str | Path) -> OfflineDataset:
    """Read mqc's NPZ dataset.

    Raises:
        DataError: not an mqc offline dataset.
    """
    try:
        with np.load(Path(path).expanduser()) as z:
            meta = json.loads(str(z["metadata"]))
            ds = OfflineDataset(z["observations"], z["actions"], z["rewards"], z["terminals"], z["timeouts"], meta)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not an mqc offline dataset ({exc})", hint="write one: mqc data offline") from exc
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: not an mqc offline dataset (format {meta.get('format')!r})")
    return ds


def build_offline(
    policy: str,
    panel: Any,
    market: MarketConfig,
    env_cfg: EnvConfig,
    cube_cfg: CubeConfig,
    split_cfg: Any,
    *,
    segment: str = "train",
    settings: Any = None,
    progress: Any = None,
) -> OfflineDataset:
    """The offline dataset of behaviour policy ``policy`` on ``panel``'s ``segment`` (the split every trainer uses)."""
    from mqc.core.data.split import split_for
    from mqc.core.gym.book import env_data, resolve_mode
    from mqc.core.gym.cube import build_cube
    from mqc.core.gym.policies import BehaviourPolicy, PolicySettings
    from mqc.core.progress import NULL

    cube = build_cube(panel, cube_cfg, progress=progress or NULL)
    data = env_data(panel, cube, market)
    mode = resolve_mode(env_cfg, market)
    strat = BehaviourPolicy(
        policy, tuple(panel.symbols), panel.timeframe, market, cube_cfg, settings or PolicySettings()
    )
    targets = strat.weights_from_cube(cube)
    split = split_for(len(panel), split_cfg, 1, cube.warmup)
    lo, hi = (0, len(panel)) if segment == "all" else split.segment(segment)
    meta = {
        "policy": policy,
        "policy_settings": strat.settings.__dict__,
        "env_config": config.to_dict(env_cfg),
        "cube_config": config.to_dict(cube_cfg),
        "market_config": config.to_dict(market),
        "timeframe": panel.timeframe,
        "data_fingerprint": panel.fingerprint,
        "feature_cube": cube.key,
        "split": split.to_dict(),
        "segment_name": segment,
        "timestamps": [str(panel.timestamps[lo])[:29], str(panel.timestamps[hi - 1])[:29]],
    }
    return collect(targets, data, env_cfg, lo, hi, mode, meta=meta)
