"""The d3rlpy export of ``mqc data offline``, read and trained on by real d3rlpy.

d3rlpy pins gymnasium 1.0.0, so it lives in its own environment (the ``offline`` extra; .ci/run builds a
second venv for this file). Without d3rlpy the d3rlpy tests skip; the format checks run everywhere.
(This folder is not called ``gym``: a test folder of that name would shadow the old ``gym`` d3rlpy imports.)
"""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.data.config import SplitConfig
from mqc.core.errors import ConfigError
from mqc.core.gym.config import CubeConfig, EnvConfig
from mqc.core.gym.offline import OfflineDataset, build_offline, check_format, load_d3rlpy, write_dataset
from mqc.core.market.config import MarketConfig

MARKET = MarketConfig(include_cash=True)
ENV = EnvConfig(episode_length=40)
CUBE = CubeConfig(forecaster="drift", window=60, num_samples=32, chunk=128)


@pytest.fixture
def d3():
    pytest.importorskip("h5py")
    d3rlpy = pytest.importorskip("d3rlpy")
    import torch

    torch.manual_seed(0)
    return d3rlpy


@pytest.fixture
def topk(make_drift_panel) -> tuple[object, OfflineDataset]:
    panel = make_drift_panel()
    return panel, build_offline("topk", panel, MARKET, ENV, CUBE, SplitConfig())


def _fit(algo, dataset, n_steps: int, d3) -> dict:
    out = algo.fit(
        dataset,
        n_steps=n_steps,
        n_steps_per_epoch=n_steps,
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3.logging.NoopAdapterFactory(),
    )
    return out[-1][1]


def test_d3rlpy_reads_the_export_as_its_own_mdpdataset(d3, topk, tmp_path):
    _, ds = topk
    path = write_dataset(ds, tmp_path / "ds.h5", "d3rlpy")
    export = load_d3rlpy(path)
    # the episodes d3rlpy builds itself from the same arrays (split after each terminal or timeout)
    own = d3.dataset.MDPDataset(
        ds.observations,
        ds.actions,
        ds.rewards,
        ds.terminals.astype(np.float32),
        ds.timeouts.astype(np.float32),
        action_space=d3.ActionSpace.CONTINUOUS,
    )
    assert len(export.dataset.episodes) == len(own.episodes) == int((ds.terminals | ds.timeouts).sum()) >= 2
    for got, want in zip(export.dataset.episodes, own.episodes, strict=True):
        for name in ("observations", "actions", "rewards"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
        assert got.terminated == want.terminated
    info = export.dataset.dataset_info
    assert info.action_space == d3.ActionSpace.CONTINUOUS and info.action_size == ds.actions.shape[1]
    # a timed-out episode's last step has no next observation: d3rlpy does not sample it
    assert export.dataset.transition_count == own.transition_count == len(ds) - int(ds.timeouts.sum())
    assert export.metadata == ds.metadata and export.metadata["action_bound"] == 5.0
    # why load_d3rlpy declares the space: d3rlpy's own loader takes topk's whole-number logits (+-5) as discrete
    with open(path, "rb") as fh:
        guessed = d3.dataset.ReplayBuffer.load(fh, d3.dataset.InfiniteBuffer())
    assert np.all(ds.actions == np.round(ds.actions))
    assert guessed.dataset_info.action_space == d3.ActionSpace.DISCRETE


def test_bc_clone_of_topk_acts_in_the_env_and_cql_iql_fit(d3, topk, tmp_path):
    from mqc.core.gym.book import env_data
    from mqc.core.gym.cube import build_cube
    from mqc.core.gym.env import PortfolioEnv

    panel, ds = topk
    export = load_d3rlpy(write_dataset(ds, tmp_path / "ds.h5", "d3rlpy"))
    bc = d3.algos.BCConfig(batch_size=32, learning_rate=3e-3, action_scaler=export.action_scaler).create(device="cpu:0")
    assert _fit(bc, export.dataset, 200, d3)["loss"] < 0.1  # on the scaled actions, in [-1, 1]
    for config in (d3.algos.CQLConfig, d3.algos.IQLConfig):
        algo = config(batch_size=32, action_scaler=export.action_scaler).create(device="cpu:0")
        losses = _fit(algo, export.dataset, 5, d3)
        assert all(np.isfinite(v) for v in losses.values())
        assert algo.predict(ds.observations[:3]).shape == (3, ds.actions.shape[1])
    # the clone acts in the env it was recorded in: actions in the env's box, and like topk it holds UP
    lo, hi = export.metadata["segment"]
    env = PortfolioEnv(env_data(panel, build_cube(panel, CUBE), MARKET), ENV, lo=lo, hi=hi)
    obs, _ = env.reset(options={"start_index": max(lo, 60)})
    held = []
    for _ in range(30):
        action = bc.predict(obs[None])[0]
        assert env.action_space.contains(action) and np.abs(action).max() > 1.0  # the env's scale, not tanh's
        obs, _, terminated, truncated, _ = env.step(action)
        held.append(env.core.last_weights[0, 0])
        assert not terminated
    assert np.mean(held) > 0.9


def test_d3rlpy_writer_refuses_an_unended_dataset(topk, tmp_path):
    pytest.importorskip("h5py")
    from mqc.core.errors import DataError

    _, ds = topk
    cut = OfflineDataset(
        ds.observations[:-1], ds.actions[:-1], ds.rewards[:-1], ds.terminals[:-1], ds.timeouts[:-1], ds.metadata
    )
    with pytest.raises(DataError, match="ends no episode"):
        write_dataset(cut, tmp_path / "ds.h5", "d3rlpy")
    assert not (tmp_path / "ds.h5").exists()


def test_unknown_format_fails_before_any_work():
    with pytest.raises(ConfigError, match="unknown dataset format 'parquet'; known: npz, d3rlpy"):
        check_format("parquet")
    check_format("npz")
