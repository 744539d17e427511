"""Fast checks of the foundation pieces other modules build on."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core import config
from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig


def test_precedence_defaults_hyperparams_profile_env_flags():
    res = config.resolve(
        MarketConfig,
        hyperparams={"equity_fee_bps": 3, "slippage_bps": 4},
        profile={"slippage_bps": 5, "borrow_rate": 0.01},
        profile_name="p",
        env={"MQC_MARKET_BORROW_RATE": "0.02", "MQC_MARKET_CASH_RATE": "0.03"},
        flags={"cash_rate": 0.04, "financing_rate": None},
    )
    v, s = res.value, res.sources
    assert (v.equity_fee_bps, s["equity_fee_bps"]) == (3.0, "hyperparams")
    assert (v.slippage_bps, s["slippage_bps"]) == (5.0, "profile:p")
    assert (v.borrow_rate, s["borrow_rate"]) == (0.02, "env:MQC_MARKET_BORROW_RATE")
    assert (v.cash_rate, s["cash_rate"]) == (0.04, "flag")
    assert s["financing_rate"] == "default"


def test_unknown_key_suggests_close_match():
    with pytest.raises(ConfigError, match="did you mean 'slippage_bps'"):
        config.resolve(MarketConfig, profile={"slipage_bps": 1})


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match=r"\[market\].allow_short"):
        config.resolve(MarketConfig, profile={"allow_short": "maybe"})


def test_bad_values_from_flags_are_usage_errors_from_profiles_config_errors():
    from mqc.core.errors import UsageError

    with pytest.raises(UsageError, match="equity_fee_bps"):
        config.resolve(MarketConfig, env={}, flags={"equity_fee_bps": -1.0})
    with pytest.raises(UsageError, match="allow-short"):
        config.resolve(MarketConfig, env={}, flags={"allow_short": "maybe"})
    with pytest.raises(ConfigError) as err:
        config.resolve(MarketConfig, env={}, profile={"equity_fee_bps": -1.0})
    assert not isinstance(err.value, UsageError)
    # A valid flag beside an invalid profile value: the profile is what needs fixing.
    with pytest.raises(ConfigError) as err:
        config.resolve(MarketConfig, env={}, profile={"equity_fee_bps": -1.0}, flags={"slippage_bps": 1.0})
    assert not isinstance(err.value, UsageError)


def test_synth_bars_are_consistent(synth):
    frames = synth(n_assets=3, n_bars=300, seed=1)
    for df in frames.values():
        assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        assert (df[["open", "high", "low", "close"]] > 0).all().all()
    again = synth(n_assets=3, n_bars=300, seed=1)
    assert np.array_equal(frames["SYN0"]["close"], again["SYN0"]["close"])
