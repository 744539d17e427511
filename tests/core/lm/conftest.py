"""Fixtures for the candle LM: tiny CSV folders (random and periodic) and tiny stage configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TINY = {"device": "cpu", "batch": 8, "eval_interval": 5, "seed": 0}
TINY_MODEL = {"layers": 1, "heads": 2, "kv_heads": 1, "embd": 32, "seq_len": 48, "vocab": 16, "tokenizer_steps": 60}


def write_csv(root: Path, symbol: str, ohlc: np.ndarray, start: str = "2015-01-01") -> None:
    ts = pd.date_range(start, periods=len(ohlc), freq="D", tz="UTC")
    frame = pd.DataFrame(ohlc, columns=["open", "high", "low", "close"], index=ts)
    frame["volume"] = 1000.0
    frame.index.name = "timestamp"
    frame.to_csv(root / f"{symbol}.csv")


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    return np.stack([open_, high, low, close], axis=-1)


def periodic(n: int) -> np.ndarray:
    """A period-4 candle pattern: four distinct candles (return, body, wicks) repeating."""
    rets = np.array([0.03, -0.02, 0.01, -0.02])
    up = np.array([0.010, 0.002, 0.006, 0.0])
    down = np.array([0.0, 0.008, 0.003, 0.012])
    close = 100 * np.exp(np.cumsum(rets[np.arange(n) % 4]))
    open_ = np.concatenate([[100.0], close[:-1]])
    k = np.arange(n) % 4
    high = np.maximum(open_, close) * np.exp(up[k])
    low = np.minimum(open_, close) * np.exp(-down[k])
    return np.stack([open_, high, low, close], axis=-1)


@pytest.fixture
def csv_root(tmp_path: Path) -> Path:
    """Two random-walk symbols (AAA, BBB), 400 daily bars each."""
    root = tmp_path / "bars"
    root.mkdir()
    write_csv(root, "AAA", random_walk(400, 1))
    write_csv(root, "BBB", random_walk(400, 2))
    return root


@pytest.fixture
def periodic_root(tmp_path: Path) -> Path:
    root = tmp_path / "periodic"
    root.mkdir()
    write_csv(root, "CYC", periodic(1200))
    return root
