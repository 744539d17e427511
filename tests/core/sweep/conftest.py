"""A tiny synthetic data root and the base tables of a sweep of ``train dm`` on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqc.core import config
from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.market.config import MarketConfig
from mqc.core.train.config import DMTrainConfig

TINY = """
dm.steps = 4
dm.eval_interval = 2
dm.log_interval = 2
dm.batch_windows = 2
dm.rollout_groups = 2
dm.horizon = 8
"""


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    from mqc.core.data.synth import SynthSpec, write_synth_csv

    root = tmp_path / "bars"
    write_synth_csv(SynthSpec(n_assets=2, n_bars=300, seed=3), root)
    return root


@pytest.fixture
def base(data_root: Path) -> dict:
    return {
        "data": config.to_dict(DataConfig(data_root=str(data_root))),
        "market": config.to_dict(MarketConfig()),
        "features": config.to_dict(FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)),
        "split": config.to_dict(SplitConfig()),
        "dm": config.to_dict(DMTrainConfig()),
    }


@pytest.fixture
def sweep_file(tmp_path: Path):
    def make(body: str, name: str = "sweep.toml") -> Path:
        p = tmp_path / name
        p.write_text(TINY + body, encoding="utf-8")
        return p

    return make
