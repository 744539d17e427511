"""``train ppo``: known-answer market, val selection, determinism, the checkpoint kind replayed by
``mqc backtest`` equal to the run's own test report, the normaliser saved and restored, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

from mqc.core import runs  # noqa: E402
from mqc.core.data.config import DataConfig  # noqa: E402
from mqc.core.errors import ConfigError, DataError  # noqa: E402
from mqc.core.gym.config import CubeConfig, EnvConfig, PPOTrainConfig  # noqa: E402
from mqc.core.gym.cube import build_cube  # noqa: E402
from mqc.core.gym.policies import BehaviourPolicy  # noqa: E402
from mqc.core.market.config import MarketConfig  # noqa: E402
from mqc.core.policy.strategy import load_strategy  # noqa: E402
from mqc.core.train.api import train  # noqa: E402

CUBE = CubeConfig(forecaster="drift", window=60)
TINY = dict(n_envs=4, n_steps=32, batch_size=64, n_epochs=2, net_arch=(16,), eval_freq=256)


def _train(panel=None, data=None, *, env=None, market=None, cube=CUBE, **ppo):
    cfg = PPOTrainConfig(**{"num_timesteps": 512, **TINY, **ppo})
    return train(
        "ppo",
        data or DataConfig(),
        market or MarketConfig(),
        cfg,
        extra={"env": env or EnvConfig(episode_length=32), "cube": cube},
        panel=panel,
    )


def test_known_answer_ppo_ends_up_in_the_drifting_asset_and_topk_picks_it(make_drift_panel):
    panel = make_drift_panel(n_bars=800)
    res = _train(
        panel,
        env=EnvConfig(episode_length=32, normalize=False),
        num_timesteps=4096,
        n_envs=8,
        batch_size=128,
        n_epochs=10,
        learning_rate=3e-3,
        ent_coef=0.0,
        gamma=0.5,
        net_arch=(32,),
        seed=1,
        eval_freq=1024,
    )
    strat = load_strategy(res.run_dir)
    w = strat.target_weights(panel)
    lo, hi = json.loads((res.run_dir / "report.json").read_text())["test_bars"]
    mean = w[lo:hi].mean(axis=0)
    assert mean[0] > 0.6 and mean[0] > 3 * max(mean[1], mean[2])
    assert res.test_metrics["total_return"] > res.test_baselines["equal_weight"]["total_return"]
    top = BehaviourPolicy("topk", panel.symbols, "1d", MarketConfig(), CUBE).target_weights(panel)
    first = build_cube(panel, CUBE).warmup
    assert (top[first:, 0] == 1.0).mean() > 0.9


def test_best_is_selected_on_val_and_test_is_reported_once(make_drift_panel):
    res = _train(make_drift_panel(), num_timesteps=1024, ent_coef=0.02, ent_coef_final=0.0)
    rows = runs.read_metrics(res.run_dir)
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [256, 512, 768, 1024]
    best = max(evals, key=lambda r: r["eval_sharpe"])  # first of equal scores
    assert res.best_step == best["step"] and sum(r["best"] for r in evals) >= 1
    assert not any("test" in k for r in rows for k in r)  # test figures never reach the log
    report = json.loads((res.run_dir / "report.json").read_text())
    assert report["test_metrics"]["sharpe"] == res.test_metrics["sharpe"]
    assert set(report["test_baselines"]) == {"equal_weight", "inverse_vol", "buy_and_hold"}
    ckpt = runs.read_checkpoint(runs.checkpoint_path(res.run_dir, runs.BEST))
    assert ckpt["kind"] == "ppo" and ckpt["step"] == res.best_step
    for name in ("best.zip", "latest.zip", "latest.pt"):
        assert runs.checkpoint_path(res.run_dir, name).is_file()
    ent = [r["ent_coef"] for r in rows if r["kind"] == "train"]
    assert ent[0] == pytest.approx(0.02) and ent[-1] < ent[0] / 2  # linear anneal towards ent_coef_final
    doc = runs.read_run_config(res.run_dir)
    assert set(doc["configs"]) == {"data", "market", "split", "env", "cube", "ppo"}
    assert doc["split"]["embargo"] == 60  # the cube's warm-up, as every trainer embargoes its windows


def test_same_seed_same_run(make_drift_panel):
    panel = make_drift_panel()
    a, b = (_train(panel, seed=3) for _ in range(2))
    ca, cb = (runs.read_checkpoint(runs.checkpoint_path(r.run_dir, runs.LATEST)) for r in (a, b))
    for k, v in ca["state_dict"].items():
        assert np.array_equal(v.numpy(), cb["state_dict"][k].numpy()), k
    assert ca["normalizer"] == cb["normalizer"]
    assert a.test_metrics == b.test_metrics
    c = _train(panel, seed=4)
    cc = runs.read_checkpoint(runs.checkpoint_path(c.run_dir, runs.LATEST))
    assert not all(np.array_equal(v.numpy(), cc["state_dict"][k].numpy()) for k, v in ca["state_dict"].items())


def test_checkpoint_backtest_equals_the_runs_test_report(tmp_path):
    from mqc.core.backtest.runner import run_checkpoint_backtest
    from mqc.core.data.synth import SynthSpec, write_synth_csv

    write_synth_csv(SynthSpec(n_assets=3, n_bars=420, seed=2), tmp_path / "bars")
    res = _train(
        data=DataConfig(data_root=str(tmp_path / "bars")), cube=CubeConfig(forecaster="bootstrap", num_samples=32)
    )
    report = run_checkpoint_backtest(res.run_dir, write=False)
    assert report.segment["split_source"] == "checkpoint"
    assert [report.segment["start_bar"], report.segment["end_bar"]] == json.loads(
        (res.run_dir / "report.json").read_text()
    )["test_bars"]
    want = {k: v for k, v in res.test_metrics.items() if k != "costs"}
    assert report.metrics == pytest.approx(want, rel=1e-12, abs=1e-15)
    val = run_checkpoint_backtest(res.run_dir, write=False, backtest_cfg=_split("val"))
    assert val.metrics == pytest.approx({k: v for k, v in res.val_metrics.items() if k != "costs"}, rel=1e-12)


def _split(name):
    from mqc.core.backtest.config import BacktestConfig

    return BacktestConfig(split=name)


def test_normaliser_is_saved_with_the_model_and_restored(make_drift_panel):
    res = _train(make_drift_panel())
    ckpt = runs.read_checkpoint(runs.checkpoint_path(res.run_dir, runs.BEST))
    norm = ckpt["normalizer"]
    assert norm["count"] > 256 and len(norm["mean"]) == ckpt["obs_size"]
    strat = load_strategy(res.run_dir)
    assert strat.normalizer.frozen
    assert strat.normalizer.to_dict() == norm


def test_bad_input_fails_before_writing_a_run(make_drift_panel, tmp_path):
    panel = make_drift_panel()
    with pytest.raises(ConfigError, match="unknown model"):
        _train(panel, cube=CubeConfig(forecaster="nope"), save_dir=str(tmp_path / "runs"))
    with pytest.raises(DataError, match="too few"):
        _train(panel.slice(0, 60), save_dir=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="allow_short"):
        _train(panel, env=EnvConfig(action_mode="long_short"), save_dir=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_sb3_dummy_vec_env_trains_the_same_env(make_drift_panel):
    res = _train(make_drift_panel(), vec_env="dummy", n_envs=2, num_timesteps=256, eval_freq=128)
    ckpt = runs.read_checkpoint(runs.checkpoint_path(res.run_dir, runs.BEST))
    assert ckpt["kind"] == "ppo" and res.steps == 256 and "sharpe" in res.test_metrics


def test_resume_continues_a_killed_run(make_drift_panel):
    from mqc.core.train.api import resume_run
    from mqc.core.train.ppo import PPOTrainer

    panel = make_drift_panel()
    cfg = PPOTrainConfig(num_timesteps=512, **TINY)
    extra = {"env": EnvConfig(episode_length=32), "cube": CUBE}
    killed = PPOTrainer(panel, MarketConfig(), cfg, extra=extra).fit(stop_after=256)
    assert killed.steps == 256 and killed.test_metrics == {}
    assert not (killed.run_dir / "report.json").exists()
    runs.append_metrics(killed.run_dir, {"kind": "train", "step": 300})  # logged after the checkpoint: dropped
    res = resume_run(killed.run_dir, panel=panel)
    assert res.resumed_from["step"] == 256 and res.steps == 512 and res.run_dir == killed.run_dir
    evals = [r["step"] for r in runs.read_metrics(res.run_dir) if r["kind"] == "eval"]
    assert evals == [256, 512]
    assert 300 not in [r["step"] for r in runs.read_metrics(res.run_dir)]
    assert json.loads((res.run_dir / "report.json").read_text())["test_metrics"] == res.test_metrics


def test_bc_warmstart_clones_the_behaviour_policy(make_drift_panel, tmp_path):
    from mqc.core.data.config import SplitConfig
    from mqc.core.gym.offline import build_offline, write_dataset

    panel = make_drift_panel(n_bars=600)
    # raw observations (as the PPO known-answer test): standardised book/drawdown inputs that never
    # vary in a topk dataset put the clone off its data as soon as the replay's drawdown differs
    env = EnvConfig(episode_length=32, normalize=False)
    ds = build_offline("topk", panel, MarketConfig(), env, CUBE, SplitConfig())
    path = write_dataset(ds, tmp_path / "topk.npz")
    # almost no PPO (one rollout at a tiny learning rate): what the policy does is the clone
    res = _train(panel, env=env, num_timesteps=64, n_envs=2, learning_rate=1e-6, bc_warmstart=str(path), eval_freq=64)
    bc = [r for r in runs.read_metrics(res.run_dir) if r["kind"] == "bc"][0]
    assert bc["transitions"] == len(ds) and bc["loss_last"] < bc["loss_first"] / 2
    w = load_strategy(res.run_dir).target_weights(panel)
    lo, hi = json.loads((res.run_dir / "report.json").read_text())["test_bars"]
    assert w[lo:hi, 0].mean() > 0.8  # topk holds UP
    other = build_offline("topk", panel, MarketConfig(), env, CUBE, SplitConfig(), segment="test")
    write_dataset(other, tmp_path / "test.npz")
    with pytest.raises(DataError, match="past this run's train segment"):
        _train(panel, env=env, num_timesteps=64, n_envs=2, bc_warmstart=str(tmp_path / "test.npz"))
