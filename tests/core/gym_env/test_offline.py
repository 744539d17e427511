"""Offline datasets: actions in the env's own space, a round trip through the env (d3rlpy: tests/core/gym_offline)."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.data.config import SplitConfig
from mqc.core.errors import DataError
from mqc.core.gym.book import decode, env_data
from mqc.core.gym.config import EnvConfig
from mqc.core.gym.cube import build_cube
from mqc.core.gym.env import PortfolioEnv
from mqc.core.gym.offline import build_offline, encode, read_dataset, write_dataset
from mqc.core.gym.policies import BehaviourPolicy, kelly_weights
from mqc.core.market.config import MarketConfig


@pytest.mark.parametrize(
    ("mode", "cash", "cap"),
    [
        ("long", False, 1.0),
        ("long", True, 1.0),
        ("leverage", True, 1.5),
        ("long_short", False, 2.0),
        ("position", False, 1.0),
    ],
)
def test_encode_inverts_the_envs_decoding(mode, cash, cap):
    rng = np.random.default_rng(0)
    n, A = 50, 3
    if mode == "long":
        w = rng.dirichlet(np.ones(A + int(cash)), size=n)[:, :A]
    elif mode == "leverage":
        w = rng.dirichlet(np.ones(A), size=n) * rng.uniform(0.2, 1.4, size=(n, 1))
    elif mode == "long_short":
        w = rng.dirichlet(np.ones(A + 1), size=n)[:, :A] - rng.dirichlet(np.ones(A + 1), size=n)[:, :A]
        w = w * cap
    else:
        w = rng.uniform(-1, 1, size=(n, A))
    caps = np.full(n, cap)
    a = encode(w, mode, cash, caps)
    back = decode(a, mode, A, cash, caps)
    np.testing.assert_allclose(back, w, atol=1e-3)


def test_offline_round_trip_replays_in_the_same_env(known_panel, small_cube_cfg, tmp_path):
    market = MarketConfig(include_cash=True)
    env_cfg = EnvConfig(episode_length=40, turnover_penalty=0.1)
    ds = build_offline("topk", known_panel, market, env_cfg, small_cube_cfg, SplitConfig())
    path = write_dataset(ds, tmp_path / "ds.npz")
    back = read_dataset(path)
    for name in ("observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
    assert back.metadata["action_mode"] == "long" and back.metadata["symbols"] == ["UP", "N1", "N2"]
    lo, hi = back.metadata["segment"]
    assert back.metadata["segment_name"] == "train" and hi == back.metadata["split"]["train"][1]
    # the dates shown are those of the first and last decision, not of the segment's undefined-feature bars
    first, last = back.metadata["decision_bars"]
    assert first == max(lo, 60) and last == len(back) + first - 1
    assert back.metadata["timestamps"] == [
        str(known_panel.timestamps[first])[:29],
        str(known_panel.timestamps[last])[:29],
    ]
    # the same env, fed the stored actions from the stored starts, gives the stored rewards and observations
    env = PortfolioEnv(env_data(known_panel, build_cube(known_panel, small_cube_cfg), market), env_cfg, lo=lo, hi=hi)
    assert env.action_space.contains(back.actions[0]) and env.observation_space.shape == back.observations.shape[1:]
    ends = np.flatnonzero(back.terminals | back.timeouts)
    assert ends[-1] == len(back) - 1 and back.timeouts.sum() == len(ends)
    i = 0
    for end in ends[:3]:
        obs, _ = env.reset(options={"start_index": max(lo, 60) + i})
        for k in range(i, end + 1):
            np.testing.assert_array_equal(obs, back.observations[k])
            obs, reward, _, trunc, _ = env.step(back.actions[k])
            assert reward == pytest.approx(float(back.rewards[k]), rel=1e-6, abs=1e-9)
        assert trunc
        i = end + 1
    # topk acts in the env: almost all of the book in the drifting asset
    weights = env.core.last_weights[0]
    assert weights[0] > 0.99


def test_kelly_cap_holds_after_normalisation():
    mu = np.array([[0.02, 0.01, 0.03, -0.01]])
    sigma = np.full((1, 4), 0.05)
    w = kelly_weights(mu, sigma, fraction=1.0, cap=0.4, gross_cap=1.0, short=False)
    assert (w <= 0.4 + 1e-12).all() and w.sum() <= 1.0 + 1e-12 and w[0, 3] == 0.0
    # raw Kelly (8, 4, 12) is capped at 0.4 each; the gross 1.2 is scaled *down* to 1: no weight grows
    np.testing.assert_allclose(w, [[1 / 3, 1 / 3, 1 / 3, 0.0]])
    w2 = kelly_weights(mu * 0.01, sigma, fraction=1.0, cap=0.4, gross_cap=1.0, short=False)
    assert w2.sum() < 1.0  # small edges stay small: never renormalised up to a full book


def test_behaviour_policies_are_causal(known_panel, small_cube_cfg):
    import dataclasses

    for kind in ("topk", "kelly", "blended"):
        pol = BehaviourPolicy(kind, known_panel.symbols, "1d", MarketConfig(), small_cube_cfg)
        full = pol.target_weights(known_panel)
        v = known_panel.values.copy()
        v[201:, 1, :4] *= 1.5
        other = pol.target_weights(dataclasses.replace(known_panel, values=v))
        np.testing.assert_array_equal(full[:201], other[:201])
        assert (full[:60] == 0).all() and np.abs(full[60:]).sum(axis=1).max() <= 1.0 + 1e-12


def test_unreadable_dataset(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"nope")
    with pytest.raises(DataError, match="not an mqc offline dataset"):
        read_dataset(tmp_path / "x.npz")
