"""Baselines: known answers, coverage, shapes, OHLC consistency, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.errors import ConfigError, DataError
from mqc.core.forecast import base
from mqc.core.forecast.config import ForecastConfig
from mqc.core.forecast.registry import BASELINES

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def _frame(close: np.ndarray, start: str = "2020-01-01", freq: str = "B") -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(close), freq=freq, tz="UTC")
    return pd.DataFrame(
        {"timestamp": ts, "open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1e6}
    )


def _model(name: str, **kw):
    return base.create(name, config=ForecastConfig(model=name, **kw))


def test_persistence_on_constant_series_is_exact():
    fc = _model("naive").predict({"C": _frame(np.full(100, 42.0))}, 5, (0.1, 0.5, 0.9))["C"]
    assert fc.quantiles.shape == (3, 5, 4)
    assert np.allclose(fc.field("close"), 42.0)
    assert np.allclose(fc.field("open"), 42.0)


@pytest.mark.parametrize("name", ["hist-vol", "ewma-vol", "drift", "bootstrap"])
def test_random_walk_models_have_zero_width_on_constant_series(name):
    fc = _model(name).predict({"C": _frame(np.full(300, 10.0))}, 4, (0.1, 0.5, 0.9))["C"]
    assert np.allclose(fc.field("close"), 10.0, rtol=1e-9)


def test_ewma_vol_interval_coverage_is_close_to_nominal():
    rng = np.random.default_rng(0)
    B, T, H = 2000, 300, 1
    logp = np.cumsum(rng.normal(0, 0.01, size=(B, T + H)), axis=1)
    c = 100 * np.exp(logp)
    x = np.stack([c, c * 1.002, c * 0.998, c, np.ones_like(c)], axis=-1)
    q, _ = _model("ewma-vol").predict_arrays(x[:, :T], H, LEVELS)
    actual = c[:, T]
    for lo, hi, nominal in ((0.25, 0.75, 0.5), (0.1, 0.9, 0.8), (0.05, 0.95, 0.9)):
        inside = (actual >= q[:, LEVELS.index(lo), 0, 3]) & (actual <= q[:, LEVELS.index(hi), 0, 3])
        assert abs(inside.mean() - nominal) < 0.04, (nominal, inside.mean())


@pytest.mark.parametrize("name", BASELINES)
def test_quantiles_sorted_and_candles_consistent(name, synth):
    frames = synth(n_assets=3, n_bars=400, seed=3, weekdays_only=True)
    out = _model(name, window=120 if name == "garch" else 250).predict(frames, 6, (0.9, 0.1, 0.5))
    assert set(out) == set(frames)
    for fc in out.values():
        q = fc.quantiles
        assert fc.quantile_levels == (0.1, 0.5, 0.9)
        assert q.shape == (3, 6, 4) and np.isfinite(q).all()
        assert (np.diff(q, axis=0) >= -1e-9).all()
        o, h, lo, c = (q[..., i] for i in range(4))
        assert (lo <= np.minimum(o, c) + 1e-9).all() and (h >= np.maximum(o, c) - 1e-9).all()
        assert len(fc.timestamps) == 6 and all(t.day_of_week < 5 for t in fc.timestamps)


def test_bootstrap_samples_and_seed_determinism(synth):
    frames = synth(n_assets=2, n_bars=300, seed=1)
    a = _model("bootstrap", num_samples=50).predict(frames, 5, (0.1, 0.5, 0.9))
    b = _model("bootstrap", num_samples=50).predict(frames, 5, (0.1, 0.5, 0.9))
    assert a["SYN0"].samples.shape == (50, 5, 4)
    assert np.array_equal(a["SYN0"].quantiles, b["SYN0"].quantiles)


def test_seasonal_naive_repeats_the_last_season():
    close = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 20)
    fc = _model("seasonal-naive", season_length=5).predict({"S": _frame(close)}, 7, (0.5,))["S"]
    assert np.allclose(fc.field("close")[0], [1, 2, 3, 4, 5, 1, 2])


def test_unset_season_is_learned_from_each_symbols_calendar():
    from mqc.core.forecast.calendar import season_bars

    assert season_bars(pd.bdate_range("2024-01-01", periods=300, tz="UTC")) == 5
    assert season_bars(pd.date_range("2024-01-01", periods=300, freq="D", tz="UTC"), asset_class="crypto") == 7
    assert season_bars(pd.date_range("2024-01-01", periods=500, freq="h", tz="UTC"), asset_class="crypto") == 24
    days = pd.bdate_range("2024-06-03", "2024-08-30")
    hourly = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in range(9, 16)]).tz_localize(
        "America/New_York"
    )
    assert season_bars(hourly.tz_convert("UTC")) == 7  # one session of 7 hourly bars
    # A weekly pattern on 24/7 daily bars: an unset season repeats the last 7 days, not 5.
    crypto = _frame(np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 20), freq="D")
    crypto.attrs["asset_class"] = "crypto"
    equity = _frame(np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 28))
    out = _model("seasonal-naive").predict({"BTCUSD": crypto, "SPY": equity}, 8, (0.5,))
    assert np.allclose(out["BTCUSD"].field("close")[0], [1, 2, 3, 4, 5, 6, 7, 1])
    assert np.allclose(out["SPY"].field("close")[0], [1, 2, 3, 4, 5, 1, 2, 3])
    # Built without a config naming it (library use): the same learned season, no recursion.
    bare = base.create("seasonal-naive").predict({"BTCUSD": crypto}, 8, (0.5,))
    assert np.allclose(bare["BTCUSD"].field("close")[0], [1, 2, 3, 4, 5, 6, 7, 1])


def test_unknown_model_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'ewma-vol'"):
        base.create("ewma-voll", config=ForecastConfig())


def test_too_little_context_names_the_symbol():
    with pytest.raises(DataError, match="SHORT: only 10 context bars"):
        _model("ewma-vol").predict({"SHORT": _frame(np.linspace(1, 2, 10))}, 3, (0.5,))


def test_bad_quantile_level_is_a_config_error():
    with pytest.raises(ConfigError, match="quantile level 1.5"):
        ForecastConfig(quantile_levels=(0.5, 1.5))
