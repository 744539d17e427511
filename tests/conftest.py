"""Shared fixtures: isolated user dirs, offline HF, seeded synthetic bars, optional real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_OHLCV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ohlcv"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONFIG", "DATA", "CACHE", "RUNS"):
        d = tmp_path / f"mqc-{name.lower()}"
        monkeypatch.setenv(f"MQC_{name}_DIR", str(d))
    monkeypatch.delenv("MQC_PROFILE", raising=False)
    monkeypatch.delenv("MQC_DEBUG", raising=False)
    for key in list(os.environ):
        if key.startswith("MQC_") and key.count("_") >= 2 and not key.endswith("_DIR"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture
def synth():
    """Factory: ``synth(n_assets=3, n_bars=500, seed=0, **spec)`` -> {symbol: canonical frame}."""
    from mqc.core.data.synth import SynthSpec, synth_ohlcv

    def make(**kwargs):
        return synth_ohlcv(SynthSpec(**kwargs))

    return make


@pytest.fixture
def synth_panel(synth):
    """Factory: an aligned Panel of synthetic bars."""
    from mqc.core.data.panel import align_frames

    def make(**kwargs):
        return align_frames(synth(**kwargs))

    return make


@pytest.fixture(scope="session")
def shared_ohlcv() -> Path:
    """``../shared/data/ohlcv`` (skips the test when the real data is absent)."""
    if not SHARED_OHLCV.is_dir():
        pytest.skip("real data in ../shared/data/ohlcv is not available")
    return SHARED_OHLCV


def _drift_panel(n_bars: int = 400, seed: int = 0, drift: float = 0.004, vol: float = 0.01):
    """Three assets: ``UP`` rises ``drift`` per bar (plus small noise), ``N1`` and ``N2`` are zero-mean noise."""
    import numpy as np
    import pandas as pd

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
def make_drift_panel():
    """Factory of a known-answer market: ``make_drift_panel(n_bars=400, seed=0, drift=0.004, vol=0.01)``
    -> a Panel where ``UP`` rises ``drift`` per bar and ``N1``, ``N2`` are zero-mean noise."""
    return _drift_panel
