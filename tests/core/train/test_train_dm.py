"""``train dm``: known-answer market, determinism, resume, causality, run directory, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mqc.core.data.config import DataConfig, FeatureConfig
from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.policy.inputs import register_feature_provider
from mqc.core.policy.strategy import load_strategy
from mqc.core.runs import read_metrics
from mqc.core.train.api import resume_run, train_dm
from mqc.core.train.config import DMTrainConfig
from mqc.core.train.data import evaluate_segment
from mqc.core.train.dm import DMTrainer

FEATS = FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)
TINY = dict(
    lookback=16, horizon=8, batch_windows=4, rollout_groups=4, hidden_size=16, steps=8, eval_interval=4, log_interval=2
)


@pytest.fixture
def trend_panel(synth_panel):
    """Asset 0 drifts up strongly; the others are flat with the same noise."""
    return synth_panel(n_assets=3, n_bars=400, seed=7, drift=(1.5, 0.0, 0.0), annual_vol=0.1, correlation=0.0)


def _train(panel, tmp_path, **kw):
    cfg = DMTrainConfig(**{**TINY, "save_dir": str(tmp_path / "runs"), **kw})
    return train_dm(DataConfig(), MarketConfig(), cfg, feature_cfg=FEATS, panel=panel)


def test_known_answer_trending_asset_gets_most_weight(trend_panel, tmp_path) -> None:
    res = _train(trend_panel, tmp_path, steps=40, eval_interval=20)
    strat = load_strategy(res.run_dir)
    w = strat.target_weights(trend_panel)
    s0, s1 = res_test = json.loads((res.run_dir / "report.json").read_text())["test_bars"]
    assert res_test and w[s0:s1, 0].mean() > 0.6, w[s0:s1].mean(0)
    assert res.test_metrics["total_return"] > 0


def test_run_directory_is_complete(trend_panel, tmp_path) -> None:
    res = _train(trend_panel, tmp_path, objective="grpo")
    run = res.run_dir
    assert run.parent == tmp_path / "runs"
    doc = json.loads((run / "config.json").read_text())
    for key in ("configs", "symbols", "data_fingerprint", "mqc_version", "command_line", "split", "timeframe"):
        assert key in doc
    assert doc["configs"]["dm"]["lookback"]["value"] == 16
    assert doc["split"]["embargo"] == 16
    rows = read_metrics(run)
    train_rows = [r for r in rows if r["kind"] == "train"]
    eval_rows = [r for r in rows if r["kind"] == "eval"]
    need = {
        "step",
        "loss",
        "policy",
        "entropy",
        "kl",
        "drawdown_penalty",
        "reward_mean",
        "reward_std",
        "peak_mem_gb",
        "microbatch",
        "windows",
    }
    assert [r["step"] for r in train_rows] == [2, 4, 6, 8] and need <= set(train_rows[0])
    assert [r["step"] for r in eval_rows] == [4, 8] and "eval_sharpe" in eval_rows[0]
    for name in ("latest.pt", "best.pt"):
        ckpt = torch.load(run / "checkpoints" / name, weights_only=True)
        for key in (
            "format",
            "format_version",
            "kind",
            "state_dict",
            "model_config",
            "feature_config",
            "market_config",
            "symbols",
            "asset_classes",
            "timeframe",
            "lookback",
            "data_fingerprint",
            "feature_stats",
            "step",
            "metrics",
        ):
            assert key in ckpt, (name, key)
    assert "train_state" in torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    report = json.loads((run / "report.json").read_text())
    assert report["segment"] == "test" and "test_metrics" in report and "equal_weight" in report["test_baselines"]


def test_checkpoint_round_trip_reproduces_the_test_report(trend_panel, tmp_path) -> None:
    res = _train(trend_panel, tmp_path, objective="pathwise", muon=False)
    strat = load_strategy(res.best_checkpoint)
    assert strat.kind == "dm" and strat.symbols == trend_panel.symbols and strat.lookback == 16
    w = strat.target_weights(trend_panel)
    trainer = DMTrainer(trend_panel, MarketConfig(), DMTrainConfig(**TINY), feature_cfg=FEATS)
    m = evaluate_segment(trainer.data, w, "test", MarketConfig())
    for key in ("sharpe", "total_return", "turnover", "max_drawdown"):
        assert m[key] == pytest.approx(res.test_metrics[key], rel=1e-9, abs=1e-12), key
    first = FEATS.warmup + 16 - 1
    assert (w[:first] == 0).all() and (w[first:].sum(-1) > 0.99).all()


def test_same_seed_same_metrics(trend_panel, tmp_path) -> None:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "peak_mem_gb"} for r in rows]  # noqa: E731
    a = _train(trend_panel, tmp_path / "a", seed=3)
    b = _train(trend_panel, tmp_path / "b", seed=3)
    c = _train(trend_panel, tmp_path / "c", seed=4)
    assert strip(read_metrics(a.run_dir)) == strip(read_metrics(b.run_dir))
    assert strip(read_metrics(a.run_dir)) != strip(read_metrics(c.run_dir))
    assert a.test_metrics == b.test_metrics


def test_resume_reproduces_the_uninterrupted_run(trend_panel, tmp_path) -> None:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "peak_mem_gb"} for r in rows]  # noqa: E731
    full = _train(trend_panel, tmp_path / "full", steps=12)
    cfg = DMTrainConfig(**{**TINY, "steps": 12, "save_dir": str(tmp_path / "killed")})
    killed = DMTrainer(trend_panel, MarketConfig(), cfg, feature_cfg=FEATS).fit(stop_after=4)
    assert killed.steps == 4 and not killed.test_metrics
    resumed = resume_run(killed.run_dir, panel=trend_panel)
    assert resumed.steps == 12
    assert strip(read_metrics(resumed.run_dir)) == strip(read_metrics(full.run_dir))
    assert resumed.test_metrics == full.test_metrics


def test_decisions_are_causal(trend_panel, tmp_path) -> None:
    res = _train(trend_panel, tmp_path, steps=4)
    strat = load_strategy(res.run_dir)
    before = strat.target_weights(trend_panel)
    t = 250
    trend_panel.values[t + 1 :, :, :4] *= np.random.default_rng(0).uniform(0.5, 1.5, size=(1, 3, 1)) * 1.3
    trend_panel.values[t + 1 :, :, 4] *= 7.0
    after = strat.target_weights(trend_panel)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])
    assert not np.allclose(before[t + 1 :], after[t + 1 :])


def test_too_few_bars_and_nans_are_clear_errors(synth_panel, tmp_path) -> None:
    short = synth_panel(n_assets=2, n_bars=60, seed=1)
    with pytest.raises(DataError, match="too few"):
        _train(short, tmp_path, lookback=64)
    bad = synth_panel(n_assets=2, n_bars=300, seed=1)
    bad.values[100, 0, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        _train(bad, tmp_path)
    assert not (tmp_path / "runs").exists(), "a failed start leaves no run directory"


def test_too_few_bars_names_the_limiting_symbol(synth, tmp_path) -> None:
    from mqc.core.data.panel import align_frames

    frames = synth(n_assets=3, n_bars=300, seed=2)
    frames["SYN2"] = frames["SYN2"].iloc[250:]  # a late starter cuts the common range to 50 bars
    panel = align_frames(frames)
    assert len(panel) == 50
    with pytest.raises(DataError, match=r"common range is only \d{4}-\d\d-\d\d \.\. .*SYN2 start\(s\) only at") as exc:
        _train(panel, tmp_path, lookback=64)
    assert "250 earlier bars" in str(exc.value)


def test_target_weights_need_the_trained_symbols(trend_panel, tmp_path) -> None:
    strat = load_strategy(_train(trend_panel, tmp_path, steps=4).run_dir)
    with pytest.raises(DataError, match="lacks symbol"):
        strat.target_weights(trend_panel.select(["SYN0", "SYN1"]))
    reordered = trend_panel.select(["SYN2", "SYN0", "SYN1"])
    np.testing.assert_array_equal(strat.target_weights(reordered), strat.target_weights(trend_panel)[:, [2, 0, 1]])
    trend_panel.timeframe = "1h"
    with pytest.raises(DataError, match="trained on 1d bars"):
        strat.target_weights(trend_panel)


class _Rank:
    """Cross-sectional rank of 5-bar momentum: causal, for the provider round trip."""

    name = "rank-test"

    def __init__(self, window: int = 5) -> None:
        self.window = window

    def to_dict(self) -> dict:
        return {"window": self.window}

    def compute(self, panel):
        c = np.log(panel.close)
        m = np.zeros_like(c)
        m[self.window :] = c[self.window :] - c[: -self.window]
        rank = m.argsort(1).argsort(1).astype(np.float32)[..., None]
        valid = np.zeros(c.shape, bool)
        valid[self.window :] = True
        return rank, valid


def test_feature_provider_is_stored_and_rebuilt(trend_panel, tmp_path) -> None:
    register_feature_provider("rank-test", lambda s: _Rank(**s))
    cfg = DMTrainConfig(**{**TINY, "steps": 4, "save_dir": str(tmp_path)})
    res = train_dm(DataConfig(), MarketConfig(), cfg, feature_cfg=FEATS, panel=trend_panel, providers=[_Rank(5)])
    ckpt = torch.load(res.best_checkpoint, weights_only=True)
    assert ckpt["feature_config"]["providers"] == [{"name": "rank-test", "settings": {"window": 5}}]
    strat = load_strategy(res.best_checkpoint)
    assert isinstance(strat.providers[0], _Rank)
    assert strat.target_weights(trend_panel).shape == (len(trend_panel), 3)


def test_shorting_microbatch_and_checkpointing(trend_panel, tmp_path) -> None:
    market = MarketConfig(allow_short=True, max_gross_leverage=2.0, max_overnight_leverage=1.5)
    cfg = DMTrainConfig(
        **{**TINY, "steps": 4, "microbatch_windows": 2, "gradient_checkpointing": True, "save_dir": str(tmp_path)}
    )
    res = train_dm(DataConfig(), market, cfg, feature_cfg=FEATS, panel=trend_panel)
    rows = [r for r in read_metrics(res.run_dir) if r["kind"] == "train"]
    assert rows[0]["microbatch"] == 2 and rows[0]["windows"] == 4
    w = load_strategy(res.run_dir).target_weights(trend_panel)
    assert (np.abs(w).sum(-1) <= 1.5 + 1e-9).all() and (w < 0).any()


def test_init_checkpoint_and_hardware_settings(trend_panel, tmp_path) -> None:
    from mqc.core.errors import CheckpointError, ConfigError

    first = _train(trend_panel, tmp_path, steps=4)
    cfg = DMTrainConfig(**{**TINY, "init_checkpoint": str(first.best_checkpoint), "seed": 9})
    trainer = DMTrainer(trend_panel, MarketConfig(), cfg, feature_cfg=FEATS)
    saved = torch.load(first.best_checkpoint, weights_only=True)["state_dict"]
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    with pytest.raises(CheckpointError, match="do not fit"):
        DMTrainer(
            trend_panel,
            MarketConfig(),
            DMTrainConfig(**{**TINY, "hidden_size": 8, "init_checkpoint": str(first.best_checkpoint)}),
            feature_cfg=FEATS,
        )
    with pytest.raises(ConfigError, match="bf16"):
        DMTrainer(
            trend_panel, MarketConfig(), DMTrainConfig(**{**TINY, "dtype": "bf16", "device": "cpu"}), feature_cfg=FEATS
        )
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            DMTrainer(trend_panel, MarketConfig(), DMTrainConfig(**{**TINY, "device": "cuda"}), feature_cfg=FEATS)
    with pytest.raises(ConfigError, match="rollout_groups"):
        DMTrainConfig(rollout_groups=1)


def test_high_costs_lower_turnover(synth_panel, tmp_path) -> None:
    panel = synth_panel(n_assets=4, n_bars=500, seed=12, drift=(0.0,) * 4, annual_vol=0.3, correlation=0.0)
    turnover = []
    for cost in (0.0, 100.0):
        cfg = DMTrainConfig(
            lookback=16,
            horizon=16,
            batch_windows=8,
            rollout_groups=4,
            hidden_size=16,
            steps=40,
            eval_interval=20,
            objective="pathwise",
            seed=12,
            save_dir=str(tmp_path / str(cost)),
        )
        res = train_dm(DataConfig(), MarketConfig().with_cost(cost, 0.0), cfg, feature_cfg=FEATS, panel=panel)
        turnover.append((res.val_metrics["turnover"], res.test_metrics["turnover"]))
    (cheap_val, cheap_test), (dear_val, dear_test) = turnover
    assert dear_val < 0.8 * cheap_val and dear_test < 0.8 * cheap_test, turnover
