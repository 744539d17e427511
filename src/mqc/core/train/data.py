"""Training data: the panel turned into standardised inputs, forward returns, bar lengths and
train/val/test decision ranges (split by time with an embargo).

A decision at bar t uses the features of bars ``t - lookback + 1 .. t`` and earns ``returns[t]``
(close t -> close t+1); a segment ``[s0, s1)`` therefore holds decisions ``t`` in
``[max(s0, first_decision), s1 - 1)`` so that no return reaches past the segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mqc.core.data.config import FeatureConfig, SplitConfig
from mqc.core.data.panel import Panel, Split, time_split
from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import (
    bar_years,
    constrain_weights,
    fee_rates,
    overnight_mask,
    simple_returns,
    simulate,
)
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


def embargo_for(split_cfg: SplitConfig, lookback: int, feature_cfg: FeatureConfig) -> int:
    """The configured embargo, or (0 = auto) the longest window a decision looks back over."""
    return split_cfg.embargo or max(lookback, feature_cfg.warmup)


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
    embargo = embargo_for(split_cfg, lookback, feature_cfg)
    need = feature_cfg.warmup + lookback + horizon
    hint = f"load more history (--start earlier), or lower --lookback (now {lookback}) / --horizon (now {horizon})"
    if n < need:
        raise DataError(f"{n} bars are too few: the features need {feature_cfg.warmup}, the lookback {lookback} and one window {horizon}", hint=hint)
    split = time_split(n, split_cfg.val_frac, split_cfg.test_frac, embargo)
    inputs, stats = build_inputs(panel, feature_cfg, providers, fit_stop=split.train[1])
    first = inputs.warmup + lookback - 1
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
            f"the train split ({split.train[0]}..{split.train[1]} of {n} bars) leaves {max(n_train, 0)} decision bars after the "
            f"{first}-bar warm-up (features + lookback); a window needs {horizon}",
            hint=hint,
        )
    for seg in ("val", "test"):
        if split_cfg.val_frac if seg == "val" else split_cfg.test_frac:
            if len(data.decisions(seg)) < 2:
                raise DataError(f"the {seg} split holds fewer than 2 decision bars", hint=hint)
    return data


def evaluate_weights(data: TrainData, weights: np.ndarray, idx: np.ndarray, market: MarketConfig) -> dict[str, Any]:
    """Constrain ``weights [len(idx), A]`` and run the float64 market over those bars (from cash).

    Returns:
        compute_metrics(...) of the net returns, plus ``cost`` (summed costs + financing).
    """
    if idx.size == 0:
        return compute_metrics(np.zeros(0), data.panel.bars_per_year)
    w = constrain_weights(np.asarray(weights, dtype=np.float64), data.panel.asset_classes, market, data.overnight[idx])
    sim = simulate(w, data.returns[idx], data.fees, data.dt_years[idx], market)
    m = compute_metrics(sim.net_returns, data.panel.bars_per_year, turnover=sim.turnover, gross_leverage=sim.gross_leverage)
    m["costs"] = float(np.sum(sim.costs) + np.sum(sim.financing))
    return m


def baselines(data: TrainData, segment: str, market: MarketConfig) -> dict[str, dict[str, Any]]:
    """Equal-weight (1/N) and inverse-volatility (20-bar trailing) rebalanced every bar, same costs."""
    idx = data.decisions(segment)
    a = data.panel.n_assets
    eq = np.full((idx.size, a), 1.0 / a)
    logr = np.zeros_like(data.returns)
    logr[1:] = np.diff(np.log(data.panel.close), axis=0)
    vol = np.stack([logr[max(t - 19, 0) : t + 1].std(0) for t in idx]) if idx.size else np.zeros((0, a))
    inv = 1.0 / np.maximum(vol, 1e-8)
    inv = inv / inv.sum(-1, keepdims=True)
    return {"equal_weight": evaluate_weights(data, eq, idx, market), "inverse_vol": evaluate_weights(data, inv, idx, market)}
