"""Deciding one bar: causal, the backtest's row, and cheap (a trailing window, not the whole history)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mqc.core.data.config import DataConfig
from mqc.core.trade.decide import checkpoint_decider
from mqc.core.trade.runner import load_history


def test_live_decision_is_the_full_history_row_and_ignores_the_future(tiny_run):
    d = checkpoint_decider(tiny_run)
    panel = load_history(d, DataConfig())
    full = d.strategy.target_weights(panel)
    assert d.window < len(panel) - 100  # the point: a bar does not re-run the whole history
    for t in range(len(panel) - 40, len(panel) - 1):
        row = d.decide(panel.slice(0, t + 1))
        np.testing.assert_allclose(row, full[t], atol=1e-6, rtol=0)
        # perturb every bar after t: the decision at t cannot change (it never sees them)
        shaken = dataclasses.replace(panel, values=panel.values.copy())
        shaken.values[t + 1 :] *= 1.5
        np.testing.assert_array_equal(d.decide(shaken.slice(0, t + 1)), row)


def test_precomputed_rows_are_served_only_for_the_same_bars(tiny_run):
    d = checkpoint_decider(tiny_run)
    panel = load_history(d, DataConfig())
    d.precompute(panel.slice(0, len(panel) - 10))
    t = len(panel) - 20
    np.testing.assert_array_equal(d.decide(panel.slice(0, t + 1)), d._rows[t])
    later = d.decide(panel.slice(0, len(panel)))  # beyond the precomputed bars: decided live
    assert later.shape == (2,)
