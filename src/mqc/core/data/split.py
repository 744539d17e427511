"""The split rules training and backtests share: the embargo between segments and the first bar a
policy can decide on. ``Split`` and ``time_split`` (the index arithmetic) live in ``panel.py``.

A decision at bar t reads ``lookback`` bars of features (``t - lookback + 1 .. t``), and each feature
is defined from bar ``warmup`` on; the embargo keeps those windows (and the returns the last training
decisions earn) from reaching across a segment boundary.
"""

from __future__ import annotations

from mqc.core.data.config import SplitConfig
from mqc.core.data.panel import Split, time_split


def embargo_for(split_cfg: SplitConfig, lookback: int, warmup: int = 0) -> int:
    """The configured embargo, or (0 = auto) the longest window a decision looks back over:
    ``max(lookback, warmup)``."""
    return split_cfg.embargo or max(lookback, warmup)


def split_for(n_bars: int, split_cfg: SplitConfig, lookback: int, warmup: int = 0) -> Split:
    """The time split of ``n_bars`` by ``split_cfg`` with the embargo of ``embargo_for``.

    Raises:
        DataError: too few bars for the fractions and the embargo.
    """
    return time_split(n_bars, split_cfg.val_frac, split_cfg.test_frac, embargo_for(split_cfg, lookback, warmup))


def first_decision(warmup: int, lookback: int) -> int:
    """The first bar whose decision has ``lookback`` bars of defined features (``warmup`` is the
    first bar at which every feature is defined)."""
    return warmup + lookback - 1
