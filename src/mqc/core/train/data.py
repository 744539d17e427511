"""Training data: the panel turned into standardised inputs, forward returns, bar lengths and
train/val/test decision ranges (split by time with an embargo), and the evaluation of val/test.

A decision at bar t uses the features of bars ``t - lookback + 1 .. t`` and earns ``returns[t]``
(close t -> close t+1); for training windows a segment ``[s0, s1)`` therefore holds decisions ``t``
in ``[max(s0, first_decision), s1 - 1)`` so that no return reaches past the segment.

Evaluation (checkpoint selection on val, the final test report) does not use that range: it replays
the whole segment through the backtest engine (``evaluate_segment``), exactly as
``mqc backtest --split val|test`` does, so both print the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mqc.core.data.config import FeatureConfig, SplitConfig
from mqc.core.data.panel import Panel, Split
from mqc.core.data.split import first_decision, split_for
from mqc.core.dates import iso_day
from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import bar_years, fee_rates, overnight_mask, simple_returns
from mqc.core.metrics import compute_metrics
from mqc.core.policy.inputs import FeatureProvider, PolicyInputs, build_inputs


@dataclass
class TrainData:
    panel: Panel
    inputs: PolicyInputs
    stats: dict[str, list[float]]
    split: Split
    returns: np.ndarray  # float64 [T, A]
    dt_years: np.ndarray  # float64 [T]
    overnight: np.ndarray  # bool [T]
    fees: np.ndarray  # float64 [A]
    lookback: int
    first_decision: int

    def decisions(self, segment: str) -> np.ndarray:
        """Decision bar indices of a segment (``train``, ``val``, ``test``)."""
        s0, s1 = self.split.segment(segment)
        return np.arange(max(s0, self.first_decision), s1 - 1)


def common_range_note(panel: Panel) -> str:
    """When alignment cut the panel to the symbols' common range, say which symbol(s) limit it.

    Returns:
        ``""`` when no symbol lost rows, else ``" (the common range of ... is FIRST .. LAST: SYM
        starts FIRST, SYM ends LAST; the others have N more rows)"``.
    """
    rep = panel.report
    before, after = dict(rep.rows_before_common_start), dict(rep.rows_after_common_end)
    if len(panel) == 0 or (not any(before.values()) and not any(after.values())):
        return ""
    first, last = iso_day(panel.timestamps[0]), iso_day(panel.timestamps[-1])
    parts = []
    if any(before.values()):
        late = [s for s, k in before.items() if k == 0]
        parts.append(
            f"{', '.join(late)} start(s) only at {first} (others have up to {max(before.values())} earlier bars)"
        )
    if any(after.values()):
        early = [s for s, k in after.items() if k == 0]
        parts.append(f"{', '.join(early)} end(s) at {last} (others have up to {max(after.values())} later bars)")
    return (
        f"; the symbols' common range is only {first} .. {last}: {'; '.join(parts)}. Drop the limiting symbol(s) or"
        " load more of their history"
    )


def prepare_data(
    panel: Panel,
    market: MarketConfig,
    feature_cfg: FeatureConfig,
    split_cfg: SplitConfig,
    *,
    lookback: int,
    horizon: int,
    providers: Sequence[FeatureProvider] = (),
) -> TrainData:
    """Build TrainData, checking there are enough bars for the lookback and every segment.

    Raises:
        DataError: NaNs/inf in the bars, or too few bars for lookback + horizon + val + test.
    """
    n = len(panel)
    need = feature_cfg.warmup + lookback + horizon
    hint = f"load more history (--start earlier), or lower --lookback (now {lookback}) / --horizon (now {horizon})"
    if n < need:
        raise DataError(
            f"{n} bars are too few: the features need {feature_cfg.warmup}, the lookback {lookback} and one window"
            f" {horizon}" + common_range_note(panel),
            hint=hint,
        )
    try:
        split = split_for(n, split_cfg, lookback, feature_cfg.warmup)
    except DataError as exc:
        raise DataError(str(exc) + common_range_note(panel), hint=exc.hint or hint) from exc
    inputs, stats = build_inputs(panel, feature_cfg, providers, fit_stop=split.train[1])
    first = first_decision(inputs.warmup, lookback)
    data = TrainData(
        panel=panel,
        inputs=inputs,
        stats=stats,
        split=split,
        returns=simple_returns(panel.close),
        dt_years=bar_years(panel.timestamps),
        overnight=overnight_mask(panel.timestamps),
        fees=fee_rates(panel.asset_classes, market),
        lookback=lookback,
        first_decision=first,
    )
    n_train = len(data.decisions("train"))
    if n_train < horizon:
        raise DataError(
            f"the train split ({split.train[0]}..{split.train[1]} of {n} bars) leaves {max(n_train, 0)} decision bars"
            f" after the {first}-bar warm-up (features + lookback); a window needs {horizon}",
            hint=hint,
        )
    for seg in ("val", "test"):
        if split_cfg.val_frac if seg == "val" else split_cfg.test_frac:
            if len(data.decisions(seg)) < 2:
                raise DataError(f"the {seg} split holds fewer than 2 decision bars", hint=hint)
    return data


def evaluate_segment(data: TrainData, targets: np.ndarray, segment: str, market: MarketConfig) -> dict[str, Any]:
    """Score target weights on a split segment with the backtest engine (what ``mqc backtest`` runs).

    The scored bars are the whole segment ``[s0, s1)`` as ``run_backtest(start=s0, end=s1)`` replays
    it: from cash at s0, forward-filled bars held, exact cost drift, the last bar earning nothing.

    Args:
        targets: ``[T, A]`` target weights over the whole panel (rows outside the segment ignored).
    Returns:
        The engine's metrics of the segment, plus ``costs`` (summed costs + financing).
    """
    from mqc.core.backtest.engine import run_backtest

    lo, hi = data.split.segment(segment)
    if hi <= lo:
        return compute_metrics(np.zeros(0), data.panel.bars_per_year)
    res = run_backtest(data.panel, targets, market, start=lo, end=hi, bars_per_year=data.panel.bars_per_year)
    return {**res.metrics, "costs": float(np.sum(res.costs) + np.sum(res.financing))}


# The baselines of a run's report: the backtest's benchmarks with its default settings, minus cash.
BASELINES = ("equal_weight", "inverse_vol", "buy_and_hold")


def baselines(data: TrainData, segment: str, market: MarketConfig) -> dict[str, dict[str, Any]]:
    """The ``mqc backtest`` benchmarks (``benchmark_weights``, default ``BacktestConfig`` settings)
    replayed over the same segment, through the same engine, with the same costs."""
    from mqc.core.backtest.benchmarks import benchmark_weights
    from mqc.core.backtest.config import BacktestConfig

    lo, hi = data.split.segment(segment)
    if hi <= lo:
        return {}
    bt = BacktestConfig()
    out = {}
    for name in BASELINES:
        w = benchmark_weights(
            name, data.panel, lo, hi, rebalance_every=bt.rebalance_every, inv_vol_window=bt.inv_vol_window
        )
        out[name] = evaluate_segment(data, w, segment, market)
    return out
