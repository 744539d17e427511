"""The portfolio envs: check_env, the shared market model, causality, penalties, the batched VecEnv."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mqc.core.errors import ConfigError, DataError
from mqc.core.gym.book import env_data
from mqc.core.gym.config import EnvConfig
from mqc.core.gym.cube import build_cube
from mqc.core.gym.env import PortfolioEnv, SingleAssetEnv
from mqc.core.gym.normalize import ObsNormalizer
from mqc.core.gym.vec import BatchedPortfolioEnv
from mqc.core.market import step_kernel
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import step as fill_step

pytestmark = pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")

MODES = [
    ("long", MarketConfig()),
    ("long", MarketConfig(include_cash=True)),
    ("leverage", MarketConfig(include_cash=True, max_gross_leverage=2.0, max_overnight_leverage=1.5)),
    ("long_short", MarketConfig(allow_short=True, max_gross_leverage=2.0, max_overnight_leverage=1.0)),
]


@pytest.fixture
def data(known_panel, small_cube_cfg):
    def make(market=None, panel=None):
        p = panel if panel is not None else known_panel
        return env_data(p, build_cube(p, small_cube_cfg), market or MarketConfig())

    return make


@pytest.mark.parametrize(("mode", "market"), MODES)
def test_check_env_every_mode(data, mode, market):
    env = PortfolioEnv(data(market), EnvConfig(action_mode=mode, episode_length=30))
    check_env(env, skip_render_check=True)


def test_check_env_single_asset(known_panel, small_cube_cfg):
    one = known_panel.select(["UP"])
    env = SingleAssetEnv(env_data(one, build_cube(one, small_cube_cfg), MarketConfig(include_cash=True)))
    check_env(env, skip_render_check=True)
    env.reset(options={"start_index": 100})
    _, _, _, _, info = env.step(np.array([0.5], dtype=np.float32))
    assert info["gross_exposure"] == pytest.approx(0.5)
    _, _, _, _, info = env.step(np.array([-0.5], dtype=np.float32))  # long-only market: the short is clipped
    assert info["gross_exposure"] == 0.0


def test_long_short_respects_crypto_long_only(known_panel, small_cube_cfg):
    panel = dataclasses.replace(known_panel, asset_classes=("crypto", "equity", "equity"))
    market = MarketConfig(allow_short=True, max_gross_leverage=2.0, max_overnight_leverage=2.0)
    env = PortfolioEnv(env_data(panel, build_cube(panel, small_cube_cfg), market), EnvConfig(action_mode="long_short"))
    env.reset(options={"start_index": 100})
    short_crypto = np.array([-1, 1, -1, -1, 1, -1, -1, -1], dtype=np.float32)  # long N1, short UP (crypto)
    env.step(short_crypto)
    assert (env.core.book[0, 0] >= 0) and env.core.book[0, 1] > 0


def test_step_is_the_market_models_one_bar_step(data):
    """Reward and accounting are those of ``fills.step`` with the backtest's costs and financing."""
    d = data(MarketConfig(include_cash=True))
    env = PortfolioEnv(d, EnvConfig(episode_length=10))
    env.reset(options={"start_index": 120})
    a1 = np.array([1, -1, -1, 0.5], dtype=np.float32)
    _, _, _, _, info1 = env.step(a1)
    book_after_first = env.core.book.copy()
    a2 = np.array([-1, 1, -1, 0.0], dtype=np.float32)
    _, reward, _, _, info = env.step(a2)
    t = 121
    targets = env.core.last_targets
    ref = fill_step(
        book_after_first,
        targets,
        d.hold[t][None],
        d.returns[t][None],
        d.fees,
        d.dt[t][None],
        d.overnight[t][None],
        d.asset_classes,
        d.market,
    )
    assert info["bar"] == t
    assert info["net_return"] == pytest.approx(float(ref.net_return[0]), abs=1e-15)
    assert info["costs"] == pytest.approx(float(ref.costs[0])) and info["costs"] > 0
    assert reward == pytest.approx(np.log1p(info["net_return"]))
    assert info1["turnover"] == pytest.approx(info1["gross_exposure"])  # from cash: the whole book is traded


def _perturbed(panel, t, seed=1):
    rng = np.random.default_rng(seed)
    v = panel.values.copy()
    k = len(panel) - t - 1
    v[t + 1 :, :, :4] *= np.exp(np.cumsum(rng.normal(0, 0.05, size=(k, panel.n_assets)), axis=0))[..., None]
    return dataclasses.replace(panel, values=v)


def _obs_path(d, actions, start):
    env = PortfolioEnv(d, EnvConfig(episode_length=1000))
    obs, _ = env.reset(options={"start_index": start})
    path = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        path.append(obs)
    return np.array(path)


def test_observations_are_causal(data, known_panel):
    """Changing bars after t changes no observation up to t (same actions)."""
    start, t = 100, 140
    actions = np.random.default_rng(0).uniform(-1, 1, size=(t - start, 3)).astype(np.float32)
    base = _obs_path(data(), actions, start)
    other = _obs_path(data(panel=_perturbed(known_panel, t)), actions, start)
    np.testing.assert_array_equal(base, other)  # observations of bars start .. t
    longer = np.vstack([actions, actions[:5]])
    assert not np.array_equal(
        _obs_path(data(), longer, start)[-1], _obs_path(data(panel=_perturbed(known_panel, t)), longer, start)[-1]
    )


# ----- penalties: sign and size ---------------------------------------------------------------------
def _one_step(d, cfg, action, start=150, mode=None):
    env = PortfolioEnv(d, cfg, mode=mode)
    env.reset(options={"start_index": start})
    _, reward, terminated, _, info = env.step(np.asarray(action, dtype=np.float32))
    info["weights"] = env.core.last_weights[0]
    return reward, terminated, info


LEV = MarketConfig(include_cash=True, max_gross_leverage=2.0, max_overnight_leverage=2.0)
FULL = [1, -1, -1, -1, 1.0]  # all in UP, gross head high
HALF = [1, -1, -1, -1, -0.2]  # all in UP, gross head low


@pytest.mark.parametrize("name", ["turnover", "cvar", "uncertainty"])
def test_exposure_penalties_punish_the_riskier_action(data, name):
    d = data(LEV)
    cfg = EnvConfig(action_mode="leverage", **{f"{name}_penalty": 2.0})
    plain = EnvConfig(action_mode="leverage")
    r_full, _, i_full = _one_step(d, cfg, FULL)
    r_half, _, i_half = _one_step(d, cfg, HALF)
    assert i_full["gross_exposure"] > i_half["gross_exposure"]
    key = f"penalty_{name}"
    assert i_full[key] > i_half[key] > 0
    # size: reward = log net return - the penalty, and the penalty is the documented product
    r_plain, _, _ = _one_step(d, plain, FULL)
    assert r_full == pytest.approx(r_plain - i_full[key])
    t = i_full["bar"]
    if name == "turnover":
        assert i_full[key] == pytest.approx(2.0 * i_full["turnover"])
    elif name == "cvar":
        tail = np.maximum(-d.cvar[t], 0.0)
        assert tail.any()
        assert i_full[key] == pytest.approx(2.0 * (np.abs(i_full["weights"]) * tail).sum(), rel=1e-9)
    else:
        assert i_full[key] == pytest.approx(2.0 * (np.abs(i_full["weights"]) * d.fc_std[t]).sum(), rel=1e-9)


def test_drawdown_penalty_and_loss_shutdown(data):
    d = data(MarketConfig())
    # N1 is noise: find a bar where holding it loses money
    t = next(t for t in range(150, 300) if d.returns[t, 1] < -0.005)
    lose = [-1, 1, -1]
    cfg = EnvConfig(drawdown_penalty=3.0, loss_limit=0.004, shutdown_penalty=0.5)
    reward, terminated, info = _one_step(d, cfg, lose, start=t)
    assert info["drawdown"] > 0.004 and terminated
    assert info["penalty_drawdown"] == pytest.approx(3.0 * info["drawdown"])
    assert info["penalty_shutdown"] == 0.5
    assert reward == pytest.approx(np.log1p(info["net_return"]) - 3.0 * info["drawdown"] - 0.5)
    t_up = next(t for t in range(150, 300) if d.returns[t, 0] > 0)
    _, terminated, info = _one_step(d, cfg, [1, -1, -1], start=t_up)
    assert info["penalty_drawdown"] == 0.0 and info["penalty_shutdown"] == 0.0 and not terminated


# ----- reset, episodes, bad input ---------------------------------------------------------------------
def test_reset_options_and_episode_length(data):
    d = data()
    env = PortfolioEnv(d, EnvConfig(episode_length=5), lo=0, hi=300)
    _, info = env.reset(seed=3, options={"start_index": 200})
    assert info["bar"] == 200
    for k in range(5):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        assert trunc == (k == 4) and not term
    starts = {env.reset(options={"random_start": True})[1]["bar"] for _ in range(20)}
    assert len(starts) > 1 and min(starts) >= d.first and max(starts) <= 300 - 1 - 5
    with pytest.raises(ConfigError, match="start_index"):
        env.reset(options={"start_index": 10})  # inside the features' warm-up


def test_bad_action_and_nan_observation(data, known_panel, small_cube_cfg):
    env = PortfolioEnv(data(), EnvConfig())
    env.reset(options={"start_index": 100})
    with pytest.raises(ConfigError, match="action of shape"):
        env.step(np.zeros(5, dtype=np.float32))
    cube = build_cube(known_panel, small_cube_cfg)
    cube.values = cube.values.copy()
    cube.values[101, 1, 0] = np.nan
    env = PortfolioEnv(env_data(known_panel, cube, MarketConfig()), EnvConfig())
    env.reset(options={"start_index": 100})
    with pytest.raises(DataError, match="bar 101"):
        env.step(np.zeros(3, dtype=np.float32))


def test_cube_of_other_symbols_is_refused(known_panel, small_cube_cfg):
    cube = build_cube(known_panel.select(["UP", "N1"]), small_cube_cfg)
    with pytest.raises(DataError, match="built for UP,N1"):
        env_data(known_panel, cube, MarketConfig())


# ----- the batched VecEnv ------------------------------------------------------------------------------
def test_batched_env_matches_single_envs_and_autoresets(data):
    d = data(MarketConfig(include_cash=True))
    cfg = EnvConfig(episode_length=7)
    vec = BatchedPortfolioEnv(d, cfg, 3, seed=11)
    obs = vec.reset()
    starts = vec.core.t.copy()
    singles = [PortfolioEnv(d, cfg) for _ in range(3)]
    s_obs = [e.reset(options={"start_index": int(s)})[0] for e, s in zip(singles, starts, strict=True)]
    np.testing.assert_allclose(obs, np.array(s_obs))
    rng = np.random.default_rng(0)
    for _ in range(7):
        act = rng.uniform(-1, 1, size=(3, 4)).astype(np.float32)
        obs, rew, done, infos = vec.step(act)
        for i, env in enumerate(singles):
            o, r, _, trunc, _ = env.step(act[i])
            assert r == pytest.approx(float(rew[i]), rel=1e-5)
            assert done[i] == trunc
            if done[i]:
                np.testing.assert_allclose(infos[i]["terminal_observation"], o)
                assert infos[i]["episode"]["l"] == 7
            else:
                np.testing.assert_allclose(obs[i], o)
    assert done.all() and (vec.core.steps == 0).all()


def test_batched_env_is_deterministic_under_a_seed(data):
    d = data()
    runs = []
    for _ in range(2):
        vec = BatchedPortfolioEnv(d, EnvConfig(episode_length=4), 4)
        vec.seed(5)
        out = [vec.reset()]
        for _ in range(9):
            out.append(vec.step(np.zeros((4, 3), dtype=np.float32))[0])
        runs.append(np.array(out))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_sb3_accepts_the_batched_env(data):
    from stable_baselines3.common.env_checker import check_env as sb3_check  # noqa: F401
    from stable_baselines3.common.vec_env import VecEnv

    assert isinstance(BatchedPortfolioEnv(data(), EnvConfig(), 2), VecEnv)


# ----- the observation normaliser ----------------------------------------------------------------------
def test_normaliser_round_trip_and_freeze():
    rng = np.random.default_rng(0)
    norm = ObsNormalizer(3, clip=5.0)
    x = rng.normal([1.0, -2.0, 10.0], [0.5, 2.0, 30.0], size=(4000, 3))
    for chunk in np.array_split(x, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean, x.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(norm.var, x.var(axis=0), rtol=1e-3)
    back = ObsNormalizer.from_dict(norm.to_dict())
    assert back.frozen
    np.testing.assert_array_equal(back(x[:10]), norm(x[:10]))
    back.update(x + 100.0)  # frozen: no change
    np.testing.assert_array_equal(back.mean, norm.mean)
    assert np.abs(norm(x * 100)).max() <= 5.0


@pytest.mark.parametrize("held_bars", [False, True])
@pytest.mark.parametrize(("mode", "market"), MODES)
def test_batched_env_accounting_is_the_backtest_engines(data, known_panel, held_bars, mode, market):
    """Every episode of the batched env, stepped on random actions, books what ``mqc backtest``'s engine
    (``execute``) books for the env's decoded targets over the same bars: executed weights, net
    return, costs, turnover, financing, gross exposure. Guards the env's speed path (no held bar in
    its segment: ``hold=None``; equal caps: no overnight flags) against drifting from the market."""
    from mqc.core.backtest.engine import execute

    panel = known_panel
    if held_bars:  # forward-filled bars: held at their drifted weight, never traded
        filled = np.random.default_rng(3).random(np.shape(panel.filled)) < 0.15
        panel = dataclasses.replace(panel, filled=filled)
    d = data(market, panel)
    n, horizon = 5, 40
    vec = BatchedPortfolioEnv(d, EnvConfig(action_mode=mode, episode_length=horizon), n, seed=4)
    vec.reset()
    starts = vec.core.t.copy()
    rng = np.random.default_rng(1)
    targets, weights, acc = [], [], []
    for _ in range(horizon - 1):  # no episode ends (an end would reset the book)
        _, _, done, infos = vec.step(rng.uniform(-3, 3, size=(n, vec.core.n_actions)).astype(np.float32))
        assert not done.any()
        targets.append(vec.core.last_targets.copy())
        weights.append(vec.core.last_weights.copy())
        acc.append(infos)
    targets, weights = np.array(targets), np.array(weights)
    assert vec.core._holds is held_bars
    for i, s in enumerate(starts):
        bars = slice(s, s + horizon - 1)
        tg = np.where(d.hold[bars], np.nan, targets[:, i])  # the engine holds where the target is NaN
        w, sim = execute(tg, d.returns[bars], d.fees, d.dt[bars], d.overnight[bars], d.asset_classes, d.market)
        np.testing.assert_allclose(weights[:, i], w, rtol=0, atol=1e-12)
        for key, series in (
            ("net_return", sim.net_returns),
            ("costs", sim.costs),
            ("turnover", sim.turnover),
            ("financing", sim.financing),
            ("gross_exposure", sim.gross_leverage),
        ):
            np.testing.assert_allclose([a[i][key] for a in acc], series, rtol=0, atol=1e-12, err_msg=key)


@pytest.mark.skipif(not step_kernel.HAVE_NUMBA, reason="numba not installed (extra 'fast')")
@pytest.mark.parametrize("held_bars", [False, True])
@pytest.mark.parametrize(("mode", "market"), MODES)
def test_batched_env_is_the_same_on_the_compiled_and_the_numpy_step(data, known_panel, held_bars, mode, market):
    """``env.engine`` numba (the compiled one-bar step) and numpy give the same observations, rewards,
    episode ends and accounting bit for bit, through penalties, a loss limit and restarts."""
    panel = known_panel
    if held_bars:
        panel = dataclasses.replace(panel, filled=np.random.default_rng(3).random(np.shape(panel.filled)) < 0.15)
    d = data(market, panel)
    cfg = dict(action_mode=mode, episode_length=25, turnover_penalty=0.01, drawdown_penalty=0.1, cvar_penalty=0.05)
    cfg.update(uncertainty_penalty=0.02, loss_limit=0.05, shutdown_penalty=1.0)
    envs = [BatchedPortfolioEnv(d, EnvConfig(**cfg, engine=e), 6, seed=9) for e in ("numba", "numpy")]
    first = [env.reset() for env in envs]
    np.testing.assert_array_equal(*first)
    rng = np.random.default_rng(2)
    for _ in range(60):
        action = (rng.uniform(-5, 5, size=(6, envs[0].core.n_actions)) * rng.choice([0.3, 3.0])).astype(np.float32)
        (o1, r1, d1, i1), (o2, r2, d2, i2) = (env.step(action) for env in envs)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for a, b in zip(i1, i2, strict=True):
            assert a.keys() == b.keys()
            for key in a:
                if key != "episode":
                    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(envs[0].core.book, envs[1].core.book)
