"""Rolling windows over one continuous replay, and their aggregates.

These are NOT walk-forward re-fits: the model (or weights file) is fixed and replayed once over the
segment; the windows are overlapping slices of that single replay (positions carry over; the
segment starts from cash), a view of how stable the result is through time. Window i covers bars
``[i * stride, i * stride + window_length)``; a tail shorter than a window is not scored. Per window:

    reward    = sum_t log(1 + net_t)                       total log growth over the window
    objective = reward * bars_per_year / window_length     annualised log growth (the dm objective)

plus every metric of ``mqc.core.metrics.compute_metrics`` on the window's net returns.

``objective_best`` is the best window picked after the fact (in hindsight): a description of the
spread of the windows, not a result anyone could have achieved by choosing a window in advance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mqc.core.backtest.engine import BacktestResult
from mqc.core.dates import iso_seconds
from mqc.core.errors import DataError
from mqc.core.metrics import compute_metrics


def window_starts(n_bars: int, window_length: int, stride: int) -> list[int]:
    """Start bars of every full window; raises DataError when even one does not fit."""
    if window_length > n_bars:
        raise DataError(
            f"--window-length {window_length} is longer than the {n_bars} bars of the evaluated segment",
            hint=f"use --window-length {max(2, n_bars)} or less, or evaluate more bars (--split all, --start earlier)",
        )
    return list(range(0, n_bars - window_length + 1, stride))


WINDOWS_KIND = "rolling (overlapping) slices of one replay"


def rolling_windows(
    result: BacktestResult, window_length: int, stride: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-window metrics and the aggregates reported in ``report.json``.

    Returns:
        (windows, aggregates): aggregates hold windows_kind, windows, objective_mean,
        objective_best (the hindsight-best window, with objective_best_note saying so),
        reward_mean, reward_std, sharpe_mean, turnover_mean, cumulative_return_mean and
        max_drawdown_worst.
    Raises:
        DataError: when ``window_length`` exceeds the replay.
    """
    starts = window_starts(len(result), window_length, stride)
    rewards = result.rewards
    bpy = result.bars_per_year
    windows: list[dict[str, Any]] = []
    for i, s in enumerate(starts):
        e = s + window_length
        # Only a window reaching the replay's last bar holds that bar, which has no holding period.
        m = compute_metrics(
            result.net_returns[s:e],
            bpy,
            turnover=result.turnover[s:e],
            gross_leverage=result.gross_leverage[s:e],
            final_bar_held=e < len(result),
        )
        reward = float(rewards[s:e].sum())
        windows.append(
            {
                "window": i,
                "start_bar": s,
                "end_bar": e,
                "start": iso_seconds(result.timestamps[s]),
                "end": iso_seconds(result.timestamps[e - 1]),
                "reward": reward,
                "objective": reward * bpy / window_length,
                **m,
            }
        )
    rew = np.array([w["reward"] for w in windows])
    obj = np.array([w["objective"] for w in windows])
    aggregates = {
        "windows_kind": WINDOWS_KIND,
        "windows": len(windows),
        "window_length": window_length,
        "stride": stride,
        "objective_mean": float(obj.mean()),
        "objective_best": float(obj.max()),
        "objective_best_note": "best window chosen in hindsight (not an achievable result)",
        "reward_mean": float(rew.mean()),
        "reward_std": float(rew.std(ddof=1)) if rew.size > 1 else 0.0,
        "sharpe_mean": float(np.mean([w["sharpe"] for w in windows])),
        "turnover_mean": float(np.mean([w["turnover"] for w in windows])),
        "cumulative_return_mean": float(np.mean([w["total_return"] for w in windows])),
        "max_drawdown_worst": float(np.max([w["max_drawdown"] for w in windows])),
    }
    return windows, aggregates
