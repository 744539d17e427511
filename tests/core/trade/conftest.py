"""A tiny trained dm policy on synthetic daily bars in the catalog (shared by the trade tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = dict(lookback=8, horizon=4, batch_windows=2, rollout_groups=2, hidden_size=4, steps=2, eval_interval=2)


@pytest.fixture
def tiny_run(synth) -> Path:
    """SYN0, SYN1 (daily, 300 bars) in the catalog and a dm run trained on them; returns the run dir."""
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.api import train_dm
    from mqc.core.train.config import DMTrainConfig

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=300, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")
    res = train_dm(DataConfig(symbols=("SYN0", "SYN1"), timeframe="1d"), MarketConfig(), DMTrainConfig(**TINY))
    return res.run_dir
