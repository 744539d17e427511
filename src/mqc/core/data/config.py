"""Configs for data selection and features (light module: no pandas/numpy at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.errors import ConfigError


@config_table("data")
@dataclass(frozen=True)
class DataConfig:
    """Which bars to load and how to align them."""

    symbols: tuple[str, ...] = field(default=(), metadata={"help": "symbols from the catalog (empty: all of the timeframe)"})
    timeframe: str = field(default="1d", metadata={"help": "bar size label: 1m, 5m, 15m, 1h, 4h, 1d"})
    data_root: str | None = field(default=None, metadata={"help": "folder of per-symbol CSV/Parquet files instead of the catalog"})
    start: str | None = field(default=None, metadata={"help": "first timestamp to load (inclusive, UTC)"})
    end: str | None = field(default=None, metadata={"help": "last timestamp to load (inclusive, UTC)"})
    max_assets: int | None = field(default=None, metadata={"help": "keep at most this many symbols (in order)"})
    exclude: tuple[str, ...] = field(default=(), metadata={"help": "symbols to leave out"})
    align: Literal["union", "inner"] = field(default="union", metadata={"help": "union: forward-fill (and mark) missing bars; inner: drop any bar some symbol lacks"})
    on_error: Literal["fail", "repair", "drop"] = field(default="fail", metadata={"help": "what to do with invalid rows when reading --data-root files"})

    def __post_init__(self) -> None:
        if self.max_assets is not None and self.max_assets < 1:
            raise ConfigError(f"max_assets must be >= 1, got {self.max_assets}")


@config_table("split")
@dataclass(frozen=True)
class SplitConfig:
    """Train / val / test split by time, with an embargo gap between segments."""

    val_frac: float = field(default=0.15, metadata={"help": "fraction of bars in the validation segment"})
    test_frac: float = field(default=0.15, metadata={"help": "fraction of bars in the test segment"})
    embargo: int = field(default=0, metadata={"help": "bars left out between segments (0: use the lookback)"})

    def __post_init__(self) -> None:
        if not (0.0 <= self.val_frac < 1 and 0.0 <= self.test_frac < 1 and self.val_frac + self.test_frac < 0.9):
            raise ConfigError(
                f"val_frac={self.val_frac}, test_frac={self.test_frac}: each must be in [0, 1) and together < 0.9"
            )
        if self.embargo < 0:
            raise ConfigError(f"embargo must be >= 0, got {self.embargo}")


@config_table("features")
@dataclass(frozen=True)
class FeatureConfig:
    """Causal per-asset candle features (every value at bar t uses bars <= t only)."""

    vol_windows: tuple[int, ...] = field(default=(20,), metadata={"help": "realised-volatility windows in bars"})
    momentum_windows: tuple[int, ...] = field(default=(5, 20, 60), metadata={"help": "log-momentum windows in bars"})
    include_volume: bool = field(default=True, metadata={"help": "add log volume relative to its rolling mean"})
    volume_window: int = field(default=20, metadata={"help": "window of the rolling volume mean"})

    def __post_init__(self) -> None:
        for w in (*self.vol_windows, *self.momentum_windows, self.volume_window):
            if w < 2:
                raise ConfigError(f"feature windows must be >= 2 bars, got {w}")

    @property
    def warmup(self) -> int:
        """Bars needed before every feature is defined."""
        return max((*self.vol_windows, *self.momentum_windows, self.volume_window if self.include_volume else 1)) + 1
