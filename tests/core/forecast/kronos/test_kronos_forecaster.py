"""The ``kronos`` forecaster through the registry: Forecast shapes, calendar, samples, settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.errors import ConfigError
from mqc.core.forecast import base
from mqc.core.forecast.kronos.forecaster import resolve_settings


def test_registered_lazily_and_forecasts_every_path(synth, tiny_kronos):
    model_dir, tok_dir = tiny_kronos
    assert "kronos" in base.available()
    fc = base.create(
        "kronos", model_path=str(model_dir), tokenizer_path=str(tok_dir), context=40, sample_count=6, seed=3
    )
    frames = synth(n_assets=2, n_bars=60, seed=1)
    frames["SHORT"] = frames["SYN0"].iloc[:30].reset_index(drop=True)  # a shorter history: own batch
    out = fc.predict(frames, 5, (0.9, 0.1, 0.5))
    assert set(out) == {"SYN0", "SYN1", "SHORT"}
    f = out["SYN0"]
    assert f.quantile_levels == (0.1, 0.5, 0.9)
    assert f.quantiles.shape == (3, 5, 4) and f.samples.shape == (6, 5, 4)
    assert (np.diff(f.quantiles, axis=0) >= 0).all()
    assert (f.quantiles[..., 1] >= f.quantiles[..., 3]).all() and (f.quantiles[..., 2] <= f.quantiles[..., 3]).all()
    assert len(f.timestamps) == 5 and f.timestamps[0] > f.origin
    assert f.timestamps[0] - f.origin == pd.Timedelta(days=1)
    assert f.last_close == pytest.approx(float(frames["SYN0"]["close"].iloc[-1]))
    np.testing.assert_allclose(f.quantiles[1, :, 3], np.quantile(f.samples[..., 3], 0.5, axis=0))
    # same seed, same forecast
    again = base.create(
        "kronos", model_path=str(model_dir), tokenizer_path=str(tok_dir), context=40, sample_count=6, seed=3
    )
    np.testing.assert_array_equal(again.predict(frames, 5, (0.1, 0.5, 0.9))["SYN1"].samples, out["SYN1"].samples)


def test_forecast_ignores_bars_before_the_context_window(synth, tiny_kronos):
    model_dir, tok_dir = tiny_kronos
    frames = synth(n_assets=1, n_bars=80, seed=2)
    fc = base.create("kronos", model_path=str(model_dir), tokenizer_path=str(tok_dir), context=32, sample_count=4)
    a = fc.predict(frames, 3, (0.5,))["SYN0"].samples
    changed = frames["SYN0"].copy()
    changed.loc[:40, ["open", "high", "low", "close"]] *= 3.0  # only bars outside the last 32
    b = fc.predict({"SYN0": changed}, 3, (0.5,))["SYN0"].samples
    np.testing.assert_array_equal(a, b)


def test_settings_precedence_and_errors():
    from mqc.core.forecast.config import ForecastConfig

    cfg = ForecastConfig(model="kronos", context_length=128, num_samples=7, seed=4)
    s = resolve_settings(cfg, top_k=5)
    assert (s.context, s.sample_count, s.seed, s.top_k) == (128, 7, 4, 5)
    assert s.model_path == "NeoQuasar/Kronos-small"  # the Chronos default id is not taken as Kronos weights
    with pytest.raises(ConfigError, match="did you mean 'top_p'"):
        resolve_settings(None, top_pp=0.5)
    with pytest.raises(ConfigError, match="temperature"):
        resolve_settings(None, temperature=0.0)


def test_tokenizer_path_from_environment(monkeypatch):
    monkeypatch.setenv("MQC_KRONOS_MODEL_TOKENIZER_PATH", "/some/tok")
    assert resolve_settings(None).tokenizer_path == "/some/tok"
    assert resolve_settings(None, tokenizer_path="/x").tokenizer_path == "/x"


def test_symbol_forecast_is_the_same_alone_or_in_a_batch(synth, tiny_kronos):
    """Each symbol samples from its own (seed, symbol, origin) stream, not a generator shared by the call."""
    model_dir, tok_dir = tiny_kronos
    frames = synth(n_assets=3, n_bars=60, seed=1)
    frames["SHORT"] = frames["SYN0"].iloc[:30].reset_index(drop=True)  # another length group, sampled first

    def fc():
        return base.create(
            "kronos", model_path=str(model_dir), tokenizer_path=str(tok_dir), context=40, sample_count=6, seed=3
        )

    together = fc().predict(frames, 5, (0.1, 0.5, 0.9))
    for sym in ("SYN1", "SYN2"):
        alone = fc().predict({sym: frames[sym]}, 5, (0.1, 0.5, 0.9))[sym]
        np.testing.assert_array_equal(alone.samples, together[sym].samples)
    # different symbols (and so different streams) do not share draws
    assert not np.array_equal(
        together["SYN1"].samples - together["SYN1"].last_close, together["SYN2"].samples - together["SYN2"].last_close
    )
