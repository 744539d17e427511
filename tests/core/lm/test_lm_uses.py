"""The trained LM as a forecaster (``mqc-lm``) and as a checkpoint kind for backtests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.core.lm.conftest import TINY, TINY_MODEL, random_walk

from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.errors import ArtifactNotFound, CheckpointError
from mqc.core.forecast.base import create
from mqc.core.forecast.config import ForecastConfig
from mqc.core.lm.config import Stage1Config, Stage3Config
from mqc.core.lm.stages import run_stage1, run_stage3


@pytest.fixture
def stage3_run(csv_root: Path) -> tuple[Path, Path]:
    r1 = run_stage1(
        DataConfig(data_root=str(csv_root)), SplitConfig(), Stage1Config(**{**TINY, **TINY_MODEL, "epochs": 1.0})
    )
    r3 = run_stage3(Stage3Config(**TINY, epochs=0.2, context_len=24, horizon=6))
    return r1.train.run_dir, r3.train.run_dir


def _frame(n: int, seed: int) -> pd.DataFrame:
    ohlc = random_walk(n, seed)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC"),
            **{k: ohlc[:, i] for i, k in enumerate(("open", "high", "low", "close"))},
            "volume": 1.0,
        }
    )


def test_mqc_lm_forecasts_quantiles_causally(stage3_run: tuple[Path, Path]) -> None:
    cfg = ForecastConfig(model="mqc-lm", model_id=str(stage3_run[1]), num_samples=16, min_context=8)
    model = create("mqc-lm", config=cfg)
    frame = _frame(80, 3)
    a = model.predict({"X": frame}, 6, (0.1, 0.5, 0.9))["X"]
    assert a.quantiles.shape == (3, 6, 4) and np.all(np.diff(a.quantiles, axis=0) >= 0)
    assert a.samples is not None and a.samples.shape == (16, 6, 4)
    assert np.all(a.quantiles[..., 1] >= a.quantiles[..., 2])  # high >= low
    again = model.predict({"X": frame}, 6, (0.1, 0.5, 0.9))["X"]
    np.testing.assert_array_equal(a.quantiles, again.quantiles)  # seeded per series
    longer = pd.concat([frame, _frame(100, 9).iloc[80:]], ignore_index=True)
    cut = model.predict({"X": longer.iloc[:80]}, 6, (0.1, 0.5, 0.9))["X"]
    np.testing.assert_array_equal(a.quantiles, cut.quantiles)  # later bars never reach the origin


def test_mqc_lm_needs_a_stage_run(stage3_run: tuple[Path, Path], tmp_path: Path) -> None:
    assert create("mqc-lm", config=ForecastConfig(model="mqc-lm")).lm.horizon == 6  # default: newest stage 3
    with pytest.raises(ArtifactNotFound):
        create("mqc-lm", config=ForecastConfig(model="mqc-lm", model_id=str(tmp_path / "nothing")))


def test_backtest_replays_the_lm(stage3_run: tuple[Path, Path]) -> None:
    from mqc.core.backtest.runner import run_checkpoint_backtest
    from mqc.core.policy.strategy import load_strategy

    report = run_checkpoint_backtest(str(stage3_run[1]), write=False)
    assert report.source["kind"] == "stage3" and np.isfinite(report.metrics["sharpe"])
    assert report.benchmarks  # the usual benchmarks beside it
    ckpt_test = torch.load(stage3_run[1] / "checkpoints" / "best.pt", weights_only=True)["split_times"]["test"]
    assert report.segment["split"] == "test" and report.segment["first"][:10] == ckpt_test[0][:10]
    strategy = load_strategy(stage3_run[1])
    from mqc.core.data.panel import load_panel

    panel = load_panel(config=DataConfig(data_root=strategy.lm.ckpt["data_config"]["data_root"]))
    full = strategy.target_weights(panel)
    t = 300
    cut = strategy.target_weights(panel.slice(0, t + 1))
    np.testing.assert_array_equal(full[: t + 1], cut)  # causal: bars after t change nothing up to t
    assert np.all(full >= 0) and np.all(full <= 1)  # long-only market by default
    with pytest.raises(CheckpointError, match="no horizon"):
        load_strategy(stage3_run[0])  # a stage-1 run has no horizon to trade
