"""``train sharpe``: known-answer market, costs vs turnover, determinism, round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mqc.core.data.config import DataConfig, FeatureConfig
from mqc.core.market.config import MarketConfig
from mqc.core.policy.strategy import load_strategy
from mqc.core.runs import read_metrics
from mqc.core.train.api import resume_run, train_sharpe
from mqc.core.train.config import SharpeTrainConfig
from mqc.core.train.sharpe import SharpeTrainer

FEATS = FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)
TINY = dict(lookback=4, horizon=32, batch_windows=8, hidden_size=16, steps=40, eval_interval=20, log_interval=10)


def _train(panel, tmp_path, market=None, **kw):
    cfg = SharpeTrainConfig(**{**TINY, "save_dir": str(tmp_path), **kw})
    return train_sharpe(DataConfig(), market or MarketConfig(), cfg, feature_cfg=FEATS, panel=panel)


def test_known_answer_trending_asset_gets_most_weight(synth_panel, tmp_path) -> None:
    panel = synth_panel(n_assets=3, n_bars=400, seed=7, drift=(1.5, 0.0, 0.0), annual_vol=0.1, correlation=0.0)
    res = _train(panel, tmp_path, lr=1e-2)
    w = load_strategy(res.run_dir).target_weights(panel)
    s0, s1 = json.loads((res.run_dir / "report.json").read_text())["test_bars"]
    assert w[s0:s1, 0].mean() > 0.6, w[s0:s1].mean(0)


def test_high_costs_lower_turnover(synth_panel, tmp_path) -> None:
    panel = synth_panel(n_assets=4, n_bars=500, seed=11, drift=(0.0,) * 4, annual_vol=0.3, correlation=0.0)
    cheap = _train(panel, tmp_path / "cheap", MarketConfig().with_cost(0.0, 0.0), steps=60)
    dear = _train(panel, tmp_path / "dear", MarketConfig().with_cost(100.0, 0.0), steps=60)
    turn = lambda r: np.mean([x["turnover"] for x in read_metrics(r.run_dir) if x["kind"] == "train"])  # noqa: E731
    assert turn(dear) < 0.5 * turn(cheap), (turn(dear), turn(cheap))
    assert dear.val_metrics["turnover"] < cheap.val_metrics["turnover"]


def test_same_seed_same_metrics_and_resume(synth_panel, tmp_path) -> None:
    panel = synth_panel(n_assets=3, n_bars=300, seed=2)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "peak_mem_gb"} for r in rows]  # noqa: E731
    a = _train(panel, tmp_path / "a", steps=8, eval_interval=4, log_interval=2)
    b = _train(panel, tmp_path / "b", steps=8, eval_interval=4, log_interval=2)
    assert strip(read_metrics(a.run_dir)) == strip(read_metrics(b.run_dir))
    cfg = SharpeTrainConfig(
        **{**TINY, "steps": 8, "eval_interval": 4, "log_interval": 2, "save_dir": str(tmp_path / "k")}
    )
    killed = SharpeTrainer(panel, MarketConfig(), cfg, feature_cfg=FEATS).fit(stop_after=4)
    resumed = resume_run(killed.run_dir, panel=panel)
    assert strip(read_metrics(resumed.run_dir)) == strip(read_metrics(a.run_dir))


def test_checkpoint_and_causality(synth_panel, tmp_path) -> None:
    panel = synth_panel(n_assets=3, n_bars=300, seed=5)
    res = _train(panel, tmp_path, steps=4, eval_interval=4, market=None)
    ckpt = torch.load(res.best_checkpoint, weights_only=True)
    assert ckpt["kind"] == "sharpe" and ckpt["model_config"]["type"] == "sharpe_mlp"
    strat = load_strategy(res.best_checkpoint)
    before = strat.target_weights(panel)
    panel.values[201:, :, :4] *= 1.7
    after = strat.target_weights(panel)
    np.testing.assert_array_equal(before[:201], after[:201])
    assert (before[: FEATS.warmup + 3] == 0).all()
    assert before[FEATS.warmup + 3 :].sum(-1) == pytest.approx(np.ones(len(panel) - FEATS.warmup - 3))


def test_resume_refuses_changed_data_and_epochs_set_the_budget(synth_panel, tmp_path) -> None:
    from mqc.core.errors import CheckpointError
    from mqc.core.train import SharpeTrainer as LazySharpeTrainer

    panel = synth_panel(n_assets=3, n_bars=300, seed=2)
    cfg = SharpeTrainConfig(**{**TINY, "steps": 8, "eval_interval": 4, "save_dir": str(tmp_path)})
    killed = LazySharpeTrainer(panel, MarketConfig(), cfg, feature_cfg=FEATS).fit(stop_after=4)
    other = synth_panel(n_assets=3, n_bars=300, seed=3)
    with pytest.raises(CheckpointError, match="bars changed"):
        resume_run(killed.run_dir, panel=other)
    trainer = SharpeTrainer(panel, MarketConfig(), SharpeTrainConfig(**{**TINY, "epochs": 2.0}), feature_cfg=FEATS)
    n_train = len(trainer.data.decisions("train"))
    assert trainer.total_steps == -(-2 * n_train // (8 * 32))
