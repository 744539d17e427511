"""Fixtures of the gym tests: a known-answer market and small synthetic panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")


def drift_panel(n_bars: int = 400, seed: int = 0, drift: float = 0.004, vol: float = 0.01):
    """Three assets: ``UP`` rises ``drift`` per bar (plus small noise), ``N1`` and ``N2`` are zero-mean noise."""
    from mqc.core.data.panel import Panel

    rng = np.random.default_rng(seed)
    ts = pd.date_range("2015-01-01", periods=n_bars, freq="D").to_numpy().astype("datetime64[ns]")
    r = rng.normal(0.0, vol, size=(n_bars, 3))
    r[:, 0] = drift + rng.normal(0.0, vol / 4, size=n_bars)
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    vol_ = rng.uniform(1e5, 2e5, size=(n_bars, 3))
    values = np.stack([open_, high, low, close, vol_], axis=-1)
    return Panel(
        timestamps=ts,
        symbols=("UP", "N1", "N2"),
        values=values,
        filled=np.zeros((n_bars, 3), dtype=bool),
        timeframe="1d",
        asset_classes=("equity",) * 3,
    )


@pytest.fixture
def known_panel():
    return drift_panel()


@pytest.fixture
def make_drift_panel():
    """Factory: ``make_drift_panel(n_bars=.., seed=.., drift=..)``."""
    return drift_panel


@pytest.fixture
def small_cube_cfg():
    from mqc.core.gym.config import CubeConfig

    return CubeConfig(forecaster="drift", window=60, num_samples=32, chunk=128)
