"""Configs for data selection and features (light module: no pandas/numpy at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.dates import check_range, check_timestamp
from mqc.core.errors import ConfigError

MIXED_CLOSE = ("warn", "lag_crypto", "error")


def check_timeframe_label(label: str) -> None:
    """Raise ``timeframe.TimeframeError`` (a ConfigError) for a label that is not a bar size."""
    from mqc.core.data.timeframe import parse_timeframe  # (numpy: not at import, the CLI loads this module)

    parse_timeframe(label)


@config_table("data")
@dataclass(frozen=True)
class DataConfig:
    """Which bars to load and how to align them."""

    symbols: tuple[str, ...] = field(
        default=(), metadata={"help": "symbols from the catalog (empty: all of the timeframe)"}
    )
    timeframe: str = field(default="1d", metadata={"help": "bar size label: 1m, 5m, 15m, 1h, 4h, 1d"})
    data_root: str | None = field(
        default=None, metadata={"help": "folder of per-symbol CSV/Parquet files instead of the catalog"}
    )
    start: str | None = field(default=None, metadata={"help": "first timestamp to load (inclusive, UTC)"})
    end: str | None = field(default=None, metadata={"help": "last timestamp to load (inclusive, UTC)"})
    max_assets: int | None = field(default=None, metadata={"help": "keep at most this many symbols (in order)"})
    exclude: tuple[str, ...] = field(default=(), metadata={"help": "symbols to leave out"})
    align: Literal["union", "inner"] = field(
        default="union",
        metadata={"help": "union: forward-fill (and mark) missing bars; inner: drop any bar some symbol lacks"},
    )
    on_error: Literal["fail", "repair", "drop"] = field(
        default="fail", metadata={"help": "what to do with invalid rows when reading --data-root files"}
    )
    allow_altered: bool = field(
        default=False,
        metadata={
            "help": (
                "use catalog files whose bars no longer match the content hash recorded at import (a warning instead of"
                " an error; repair them instead: mqc data verify)"
            )
        },
    )
    mixed_close: Literal["warn", "lag_crypto", "error"] = field(
        default="warn",
        metadata={
            "help": (
                "daily+ panels mixing crypto (closes 24:00 UTC) with equities (close 20:00-21:00 UTC): warn (report the"
                " 3-4 h look-ahead), lag_crypto (each date uses the previous crypto bar: causal, crypto acts a day"
                " late) or error"
            )
        },
    )

    def __post_init__(self) -> None:
        check_timeframe_label(self.timeframe)
        if self.mixed_close not in MIXED_CLOSE:
            raise ConfigError(f"mixed_close must be one of {', '.join(MIXED_CLOSE)}, got {self.mixed_close!r}")
        if self.max_assets is not None and self.max_assets < 1:
            raise ConfigError(f"max_assets must be >= 1, got {self.max_assets}")
        check_timestamp(self.start, "data.start")
        check_timestamp(self.end, "data.end")
        check_range(self.start, self.end, "data")


@config_table("import")
@dataclass(frozen=True)
class ImportConfig:
    """How ``mqc data import`` / ``validate`` treat bad rows and store bars."""

    on_error: Literal["fail", "repair", "drop"] = field(
        default="fail",
        metadata={
            "help": "fail: stop at the first bad row; repair: fix what can be fixed, drop the rest; drop: drop bad rows"
        },
    )
    spike_sigma: float = field(
        default=12.0, metadata={"help": "robust z-score of a one-bar reversal reported as a spike (warning)"}
    )
    replace: bool = field(
        default=False,
        metadata={
            "help": (
                "overwrite stored bars that differ at the new timestamps (the rest of the history is kept, rescaled"
                " when the provider re-adjusted it by one factor) instead of refusing the import"
            )
        },
    )
    adjusted: bool = field(
        default=False,
        metadata={
            "help": (
                "scale open/high/low/close by Adj Close / Close when a file has both (dividend- and split-adjusted"
                " prices)"
            )
        },
    )
    asset_class: str | None = field(
        default=None, metadata={"help": "asset class to store (equity, crypto, cash); default: guessed from the symbol"}
    )

    def __post_init__(self) -> None:
        from mqc.core.market.config import ASSET_CLASSES

        if self.spike_sigma <= 0:
            raise ConfigError(f"spike_sigma must be > 0, got {self.spike_sigma}")
        if self.asset_class is not None and self.asset_class not in ASSET_CLASSES:
            raise ConfigError(f"asset_class {self.asset_class!r} is not one of {', '.join(ASSET_CLASSES)}")


@config_table("fetch")
@dataclass(frozen=True)
class FetchConfig:
    """Downloads from market-data providers (``mqc data fetch``; yfinance or ccxt need ``pip install -e ".[fetch]"``
    from the mqc checkout; alpaca needs only the keys in APCA_API_KEY_ID / APCA_API_SECRET_KEY)."""

    provider: Literal["yfinance", "ccxt", "alpaca"] = field(
        default="yfinance",
        metadata={"help": "yfinance (stocks, ETFs, indices), ccxt (crypto exchanges) or alpaca (US stocks, crypto)"},
    )
    timeframe: str = field(default="1d", metadata={"help": "bar size to download: 1m, 5m, 15m, 1h, 1d"})
    start: str | None = field(
        default=None, metadata={"help": "first date to download (default: provider's earliest / 1000 bars for ccxt)"}
    )
    end: str | None = field(default=None, metadata={"help": "last date to download (default: now)"})
    exchange: str = field(default="binance", metadata={"help": "ccxt exchange id"})
    retries: int = field(default=5, metadata={"help": "retries on rate-limit / network errors"})
    backoff_s: float = field(
        default=2.0, metadata={"help": "first retry delay in seconds (doubles each retry, capped at 60 s)"}
    )
    cache_hours: float = field(
        default=12.0,
        metadata={"help": "reuse a cached download younger than this (ranges that end in the past never expire)"},
    )
    page_limit: int = field(default=1000, metadata={"help": "bars per ccxt request"})
    alpaca_adjustment: Literal["raw", "split", "dividend", "all"] = field(
        default="all",
        metadata={"help": "Alpaca stock prices: all (splits and dividends, as yfinance), split, dividend or raw"},
    )
    alpaca_feed: Literal["iex", "sip"] = field(
        default="iex", metadata={"help": "Alpaca stock feed: iex (free plan) or sip (all US exchanges, paid plan)"}
    )
    alpaca_url: str = field(default="https://data.alpaca.markets", metadata={"help": "Alpaca market-data base URL"})
    timeout_s: float = field(default=30.0, metadata={"help": "HTTP timeout of one Alpaca request, seconds"})

    def __post_init__(self) -> None:
        check_timeframe_label(self.timeframe)
        if self.retries < 0 or self.backoff_s < 0 or self.cache_hours < 0:
            raise ConfigError("retries, backoff_s and cache_hours must be >= 0")
        if self.timeout_s <= 0:
            raise ConfigError(f"fetch.timeout_s must be > 0, got {self.timeout_s}")
        if self.page_limit < 1:
            raise ConfigError(f"page_limit must be >= 1, got {self.page_limit}")
        check_timestamp(self.start, "fetch.start")
        check_timestamp(self.end, "fetch.end")
        check_range(self.start, self.end, "fetch")


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
