"""Undefined figures are NaN (``-`` in tables, ``null`` in JSON), never a number; no numpy warnings."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from mqc.core.atomic import dumps
from mqc.core.metrics import compute_metrics, max_drawdown, sharpe, sortino


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw numpy RuntimeWarning fails the test
        return fn(*args, **kwargs)


def test_a_jump_to_1e308_gives_undefined_volatility_and_sharpe_without_warnings():
    # The issue: "RuntimeWarning: overflow encountered in square", vol inf% and Sharpe 0.00.
    prices = np.array([10.0, 11.0, 1e308, 12.0, 13.0])
    m = _quiet(compute_metrics, prices[1:] / prices[:-1] - 1.0, 252)
    assert math.isnan(m["volatility"]) and math.isnan(m["sharpe"])
    assert json.loads(dumps(m))["sharpe"] is None and json.loads(dumps(m))["volatility"] is None
    assert m["n_bars"] == 4


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_returns_leave_every_return_figure_undefined(bad):
    m = _quiet(compute_metrics, np.array([0.01, bad, 0.02, -0.01]), 252)
    for key in ("total_return", "annual_return", "volatility", "sharpe", "sortino", "max_drawdown", "calmar"):
        assert math.isnan(m[key]), key
    assert math.isnan(_quiet(sharpe, np.array([0.01, bad]), 252))
    assert math.isnan(_quiet(sortino, np.array([-0.01, bad]), 252))
    assert math.isnan(_quiet(max_drawdown, np.array([0.01, bad])))


def test_overflowing_growth_is_undefined_not_infinite():
    m = _quiet(compute_metrics, np.array([1e200, 3e200, 2e200]), 252)
    assert math.isnan(m["total_return"]) and math.isnan(m["annual_return"]) and math.isnan(m["volatility"])


def test_conventional_defined_cases_are_unchanged():
    cash = _quiet(compute_metrics, np.zeros(10), 252)
    assert (cash["volatility"], cash["sharpe"], cash["sortino"], cash["calmar"]) == (0.0, 0.0, 0.0, 0.0)
    assert _quiet(sharpe, np.array([0.01]), 252) == 0.0  # one bar: no spread
    up = _quiet(compute_metrics, np.array([0.01, 0.02, 0.01]), 252)
    assert up["sortino"] == 0.0 and up["max_drawdown"] == 0.0 and up["sharpe"] > 0
    r = np.array([0.01, -0.02, 0.03, 0.005])
    assert compute_metrics(r, 252)["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
