"""Offline datasets: a behaviour policy replayed through the portfolio env, transitions written to disk.

The policy's target weights become actions in the env's own action space (``encode``: the inverse of
the env's decoding, up to its logit bound), the env steps them (so rewards, costs and penalties are the
env's), and each transition is recorded: observation (raw, as the env emits it), action, reward,
terminal, timeout. An offline-trained policy therefore acts in the same env, with the same decoding.

``write_dataset`` writes mqc's own NPZ (arrays + a ``metadata`` JSON string: env/cube/market settings,
symbols, feature names, action mode and bounds, the split segment); ``format="d3rlpy"`` writes the
HDF5 file of a d3rlpy ``MDPDataset`` instead, with h5py alone: d3rlpy pins gymnasium 1.0.0, so it reads
the file in its own environment (the ``offline`` extra). Actions stay in the env's box
(``+-action_bound``): d3rlpy's continuous policies need ``MinMaxActionScaler`` over that box (docs/gym.md).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import atomic, config
from mqc.core.errors import ConfigError, DataError, DependencyMissing, require
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
    t = start
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
        "decision_bars": [book.lo, t],  # the first and last bar decided (features undefined before the first)
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


FORMATS = ("npz", "d3rlpy")
D3RLPY_VERSION = "2.1"  # d3rlpy's ``dataset.io.DATASET_VERSION`` (2.x): the layout ``_write_d3rlpy`` writes
D3RLPY_COLUMNS = ("observations", "actions", "rewards", "terminated")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyMissing(
            "writing a d3rlpy dataset needs h5py",
            hint="pip install h5py  (d3rlpy itself, to train on the file, pins gymnasium 1.0.0: install it "
            'in its own environment, e.g. pip install -e ".[offline]" in a venv)',
        ) from exc
    return h5py


def check_format(fmt: str) -> None:
    """Fail before any work when ``fmt`` is unknown or its writer is not installed.

    Raises:
        ConfigError: unknown format. DependencyMissing: ``d3rlpy`` without h5py.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "d3rlpy":
        _h5py()


def _write_d3rlpy(h5: Any, ds: OfflineDataset) -> None:
    """d3rlpy 2.x's ``ReplayBuffer.dump`` layout, written with h5py alone (d3rlpy cannot share an environment
    with the core's gymnasium): per episode ``i`` (split after each terminal or timeout) ``observations_i``
    ``[n, obs]``, ``actions_i`` ``[n, act]``, ``rewards_i`` ``[n, 1]`` (float32) and ``terminated_i`` (bool);
    plus ``columns``, ``num_episodes``, ``version`` and mqc's metadata JSON (``mqc_metadata``, which d3rlpy
    does not read). ``d3rlpy.dataset.ReplayBuffer.load(f, InfiniteBuffer())`` reads it (a test holds it equal
    to d3rlpy's own ``MDPDataset`` of the same arrays)."""
    ends = np.flatnonzero(ds.terminals | ds.timeouts) + 1
    if not len(ends) or ends[-1] != len(ds):
        raise DataError("the dataset's last transition ends no episode (neither terminal nor timeout)")
    text = _h5py().string_dtype()
    h5.create_dataset("columns", data=np.array(D3RLPY_COLUMNS, dtype=object), dtype=text)
    h5.create_dataset("num_episodes", data=np.int64(len(ends)))
    start = 0
    for i, end in enumerate(ends):
        h5.create_dataset(f"observations_{i}", data=ds.observations[start:end].astype(np.float32))
        h5.create_dataset(f"actions_{i}", data=ds.actions[start:end].astype(np.float32))
        h5.create_dataset(f"rewards_{i}", data=ds.rewards[start:end].astype(np.float32).reshape(-1, 1))
        h5.create_dataset(f"terminated_{i}", data=np.bool_(ds.terminals[end - 1]))
        start = end
    h5.create_dataset("version", data=D3RLPY_VERSION, dtype=text)
    h5.create_dataset("mqc_metadata", data=json.dumps(ds.metadata), dtype=text)


def write_dataset(ds: OfflineDataset, path: str | Path, fmt: str = "npz") -> Path:
    """Write ``ds`` atomically as mqc's NPZ or a d3rlpy ``MDPDataset`` (``fmt="d3rlpy"``, HDF5; needs h5py only).

    Raises:
        ConfigError: unknown format. DependencyMissing: h5py not installed (``d3rlpy``).
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
        h5py = _h5py()
        with atomic.atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
            _write_d3rlpy(h5, ds)
        return path
    raise ConfigError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")


@dataclass
class D3rlpyExport:
    """A d3rlpy export read back with d3rlpy: its ``ReplayBuffer``, mqc's metadata, and the action scaler
    that maps d3rlpy's tanh policies (``[-1, 1]``) onto the env's own action box."""

    dataset: Any  # d3rlpy.dataset.ReplayBuffer
    metadata: dict[str, Any]
    action_scaler: Any  # d3rlpy.preprocessing.MinMaxActionScaler over [-action_bound, action_bound]


def load_d3rlpy(path: str | Path) -> D3rlpyExport:
    """Read a ``--format d3rlpy`` file with d3rlpy (the ``offline`` extra), its action space declared continuous.

    d3rlpy's own ``ReplayBuffer.load`` guesses the action space from the values and takes whole-number
    actions for discrete ones: a ``topk`` dataset (every logit at the bound, +-5) would read as 6 discrete
    actions. Pass ``action_scaler`` to the algorithm's config so its actions land in the env's box.

    Raises:
        DependencyMissing: d3rlpy not installed. DataError: not an mqc d3rlpy export.
    """
    d3 = require("d3rlpy", "offline")
    h5py = _h5py()
    path = Path(path).expanduser()
    try:
        with h5py.File(path, "r") as h5:
            meta = json.loads(h5["mqc_metadata"][()])
        with open(path, "rb") as fh:
            episodes = d3.dataset.load(d3.dataset.Episode, fh)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(
            f"{path}: not an mqc d3rlpy export ({exc})", hint="write one: mqc data offline --format d3rlpy"
        ) from exc
    n = int(episodes[0].actions.shape[1])
    dataset = d3.dataset.ReplayBuffer(
        d3.dataset.InfiniteBuffer(), episodes=episodes, action_space=d3.ActionSpace.CONTINUOUS, action_size=n
    )
    bound = float(meta["action_bound"])
    scaler = d3.preprocessing.MinMaxActionScaler(minimum=np.full(n, -bound), maximum=np.full(n, bound))
    return D3rlpyExport(dataset, meta, scaler)


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
    }
    ds = collect(targets, data, env_cfg, lo, hi, mode, meta=meta)
    first, last = ds.metadata["decision_bars"]
    ds.metadata["timestamps"] = [str(panel.timestamps[first])[:29], str(panel.timestamps[last])[:29]]
    return ds
