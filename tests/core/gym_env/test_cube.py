"""The feature cube: causal for every forecaster, masked before defined, cached, clear errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mqc.core.errors import ConfigError, DataError
from mqc.core.gym.config import CubeConfig
from mqc.core.gym.cube import FEATURE_NAMES, build_cube, realised_features

BASELINES = ("naive", "seasonal-naive", "drift", "hist-vol", "ewma-vol", "bootstrap", "garch")


def _perturbed(panel, t: int, seed: int = 1):
    """The panel with every bar after ``t`` changed (prices scaled, volume redrawn)."""
    rng = np.random.default_rng(seed)
    v = panel.values.copy()
    k = len(panel) - t - 1
    scale = np.exp(np.cumsum(rng.normal(0.0, 0.05, size=(k, panel.n_assets)), axis=0))
    v[t + 1 :, :, :4] *= scale[..., None]
    v[t + 1 :, :, 4] = rng.uniform(1.0, 1e6, size=(k, panel.n_assets))
    return dataclasses.replace(panel, values=v)


@pytest.mark.parametrize("forecaster", BASELINES)
def test_every_feature_of_every_forecaster_is_causal(make_drift_panel, forecaster):
    panel = make_drift_panel(n_bars=140)
    cfg = CubeConfig(forecaster=forecaster, window=40, num_samples=32, chunk=64, prediction_length=3)
    full = build_cube(panel, cfg, cache=False)
    for t in (70, 100):
        other = build_cube(_perturbed(panel, t), cfg, cache=False)
        np.testing.assert_array_equal(full.values[: t + 1], other.values[: t + 1], err_msg=f"{forecaster} row <= {t}")
        assert not np.array_equal(full.values[t + 1 :], other.values[t + 1 :])


def test_features_are_masked_before_defined_not_zero_filled(known_panel, small_cube_cfg):
    cube = build_cube(known_panel, small_cube_cfg, cache=False)
    mom60 = cube.index("mom_60")
    assert np.isnan(cube.values[:60, :, mom60]).all() and not cube.valid[:60, :, mom60].any()
    assert cube.valid[60:, :, mom60].all()
    fc = cube.index("fc_mean")
    assert np.isnan(cube.values[: small_cube_cfg.min_context - 1, :, fc]).all()
    assert cube.warmup == 60
    assert cube.valid[cube.warmup :].all()


def test_realised_features_known_answer():
    T = 70
    close = 100.0 * np.exp(0.01 * np.arange(T))  # +1% log return per bar, no volatility
    v = np.stack([close, close * 1.01, close * 0.99, close, np.full(T, 10.0)], axis=-1)[:, None, :]
    f = realised_features(v)
    names = FEATURE_NAMES[-len(f[0, 0]) :]
    row = dict(zip(names, f[65, 0], strict=True))
    assert row["mom_5"] == pytest.approx(0.05) and row["mom_60"] == pytest.approx(0.60)
    assert row["vol_20"] == pytest.approx(0.0, abs=1e-7)
    assert row["prev_ret"] == pytest.approx(0.01)
    assert row["range"] == pytest.approx(np.log(1.01 / 0.99))
    assert row["volume_change"] == 0.0


def test_forecast_features_follow_the_forecast(known_panel, small_cube_cfg):
    cube = build_cube(known_panel, small_cube_cfg, cache=False)
    t = cube.warmup + 50
    mean, pup, cvar = (cube.values[t, :, cube.index(n)] for n in ("fc_mean", "fc_p_up", "fc_cvar5"))
    assert mean[0] > 0.005 and abs(mean[1]) < 0.01  # drift model: UP's mean log return ~ 3 x 0.4%
    assert pup[0] > pup[1] and pup[0] > pup[2]
    q10, q90 = cube.values[t, :, cube.index("fc_q10")], cube.values[t, :, cube.index("fc_q90")]
    assert (q10 < q90).all() and (cvar <= q10 + 1e-9).all()


def test_cube_is_cached_with_metadata(known_panel, small_cube_cfg):
    first = build_cube(known_panel, small_cube_cfg)
    assert not first.cached and first.path is not None and first.path.is_file()
    meta = json.loads(first.path.with_suffix(".json").read_text())
    assert meta["names"] == list(FEATURE_NAMES) and meta["symbols"] == ["UP", "N1", "N2"]
    assert meta["settings"]["forecaster"] == "drift" and meta["data_fingerprint"] == known_panel.fingerprint
    again = build_cube(known_panel, small_cube_cfg)
    assert again.cached and again.key == first.key
    np.testing.assert_array_equal(again.values, first.values)
    other = build_cube(known_panel, dataclasses.replace(small_cube_cfg, prediction_length=2))
    assert other.key != first.key and not other.cached


def test_torn_cache_file_is_recomputed(known_panel, small_cube_cfg):
    first = build_cube(known_panel, small_cube_cfg)
    first.path.write_bytes(b"torn")
    again = build_cube(known_panel, small_cube_cfg)
    assert not again.cached
    np.testing.assert_array_equal(again.values, first.values)


def test_bad_input(known_panel, small_cube_cfg):
    with pytest.raises(DataError, match="too few"):
        build_cube(known_panel.slice(0, 50), small_cube_cfg)
    with pytest.raises(ConfigError, match="unknown model"):
        build_cube(known_panel, dataclasses.replace(small_cube_cfg, forecaster="nope"))
    cube = build_cube(known_panel, small_cube_cfg)
    with pytest.raises(DataError, match="built for UP,N1,N2"):
        cube.check_panel(known_panel.select(["UP", "N1"]))
