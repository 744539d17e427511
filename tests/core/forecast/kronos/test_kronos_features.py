"""Kronos path features: masking, known-answer summaries, disk cache, causality, progress."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.errors import ConfigError
from mqc.core.forecast.kronos.config import KronosFeatureConfig
from mqc.core.forecast.kronos.features import (
    STATS,
    KronosFeatureProvider,
    compute_kronos_features,
    feature_names,
    provider_from_settings,
    summarise,
)
from mqc.core.progress import RecordingProgress


def _cfg(tiny_kronos, **kw) -> KronosFeatureConfig:
    model_dir, tok_dir = tiny_kronos
    base = dict(
        model_path=str(model_dir),
        tokenizer_path=str(tok_dir),
        context=16,
        horizons=(1, 3),
        sample_count=4,
        batch_size=8,
    )
    return KronosFeatureConfig(**{**base, **kw})


def test_summary_known_answer():
    # two paths, horizon 2: closes 110 then 121 (up) and 90 then 81 (down), origin close 100
    paths = np.zeros((1, 2, 2, 6))
    paths[0, 0, :, 3] = [110, 121]
    paths[0, 1, :, 3] = [90, 81]
    paths[..., 1] = paths[..., 3] + 1
    paths[..., 2] = paths[..., 3] - 1
    f = dict(
        zip([f"h{h}_{s}" for h in (1, 2) for s in STATS], summarise(paths, np.array([100.0]), (1, 2))[0], strict=True)
    )
    assert f["h2_ret_mean"] == pytest.approx((0.21 - 0.19) / 2)
    assert f["h2_ret_std"] == pytest.approx(0.20)
    assert f["h1_p_up"] == pytest.approx(0.5)
    assert f["h1_path_vol"] == pytest.approx(0.10)
    assert f["h2_path_vol"] == pytest.approx((np.sqrt((0.1**2 + 0.11**2) / 2) + np.sqrt((0.1**2 + 0.09**2) / 2)) / 2)
    assert f["h2_path_range"] == pytest.approx(((122 - 109) / 100 + (91 - 80) / 100) / 2)
    assert f["h1_ret_q10"] < f["h1_ret_q50"] < f["h1_ret_q90"]


def test_features_are_masked_cached_and_reported(synth_panel, tiny_kronos):
    panel = synth_panel(n_assets=2, n_bars=40, seed=0)
    cfg = _cfg(tiny_kronos)
    prog = RecordingProgress()
    first = compute_kronos_features(panel.timestamps, panel.values, cfg, progress=prog)
    names = feature_names(cfg)
    assert first.values.shape == (40, 2, len(names)) and len(names) == 2 * len(STATS)
    assert not first.valid[: cfg.context - 1].any() and first.valid[cfg.context - 1 :].all()
    assert np.isnan(first.values[: cfg.context - 1]).all()  # masked, not zero-filled
    assert np.isfinite(first.values[cfg.context - 1 :]).all()
    assert prog.total == 2 * (40 - cfg.context + 1) and prog.done == prog.total and "eta_s" in prog.fields
    assert first.computed_origins == prog.total and first.cache_hits == 0
    second = compute_kronos_features(panel.timestamps, panel.values, cfg)
    assert second.cache_hits == 2 and second.computed_origins == 0
    np.testing.assert_array_equal(second.values, first.values)
    # another setting is another cache entry
    third = compute_kronos_features(panel.timestamps, panel.values, _cfg(tiny_kronos, seed=1))
    assert third.cache_hits == 0 and not np.array_equal(np.nan_to_num(third.values), np.nan_to_num(first.values))


def test_features_up_to_t_ignore_later_bars(synth_panel, tiny_kronos):
    panel = synth_panel(n_assets=1, n_bars=44, seed=1)
    cfg = _cfg(tiny_kronos)
    a = compute_kronos_features(panel.timestamps, panel.values, cfg, use_disk_cache=False)
    t = 27  # mid-batch: bars 24..31 share one sampling batch
    vals = panel.values.copy()
    vals[t + 1 :, :, :4] *= 1.5
    vals[t + 1 :, :, 4] *= 3.0
    vals[-1, 0, :] = np.nan  # even a broken later bar changes nothing up to t
    b = compute_kronos_features(panel.timestamps, vals, cfg, use_disk_cache=False)
    np.testing.assert_array_equal(a.values[: t + 1], b.values[: t + 1])
    np.testing.assert_array_equal(a.valid[: t + 1], b.valid[: t + 1])
    assert not np.array_equal(a.values[t + 1 : -1], b.values[t + 1 : -1])
    assert not b.valid[-1].any()
    # appending bars does not change earlier features either
    c = compute_kronos_features(panel.timestamps[:30], panel.values[:30], cfg, use_disk_cache=False)
    np.testing.assert_array_equal(a.values[:30], c.values)


def test_provider_roundtrips_through_its_settings(synth_panel, tiny_kronos):
    panel = synth_panel(n_assets=1, n_bars=24, seed=2)
    p = KronosFeatureProvider(_cfg(tiny_kronos))
    values, valid = p.compute(panel)
    assert values.shape == (24, 1, len(p.names)) and valid.shape == (24, 1)
    again = provider_from_settings(p.to_dict())
    assert again.config == p.config
    np.testing.assert_array_equal(again.compute(panel)[0], values)
    with pytest.raises(ConfigError, match="unknown settings"):
        provider_from_settings({**p.to_dict(), "bogus": 1})


def test_config_validation():
    with pytest.raises(ConfigError, match="horizons"):
        KronosFeatureConfig(horizons=(0, 4))
    with pytest.raises(ConfigError, match="sample_count"):
        KronosFeatureConfig(sample_count=0)


def _session_bars(n_regular: int, n_extended: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hourly equity bars: ``n_regular`` regular-session bars (14:30..20:00 UTC), then ``n_extended``
    bars on an extended-hours schedule (09:00..23:00 UTC) starting right after the last regular bar."""
    import pandas as pd

    regular, extended = [], []
    for day in pd.bdate_range("2024-01-02", periods=200):
        for h in range(9, 24):
            stamp = day + pd.Timedelta(hours=h, minutes=30 if h == 14 else 0)
            if len(regular) < n_regular:
                if 14 <= h <= 20:
                    regular.append(stamp)
            elif len(extended) < n_extended and stamp > regular[-1]:
                extended.append(stamp)
    ts = pd.DatetimeIndex(regular + extended).values.astype("datetime64[ns]")
    c = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, len(ts))))
    return ts, np.stack([c, c * 1.002, c * 0.998, c, np.full_like(c, 1e4)], -1)[:, None, :]


def test_features_up_to_t_ignore_later_bar_schedule(tiny_kronos):
    # the review's case: the vendor adds extended-hours bars after t; the calendar that labels the
    # future bars of origins <= t must not learn that schedule from the later timestamps
    cfg = _cfg(tiny_kronos)
    t = 36  # mid-batch (bars 32..39 share a sampling batch)
    ts_a, v_a = _session_bars(t + 1, 0, seed=0)
    ts_b, v_b = _session_bars(t + 1, 150, seed=0)
    v_b[t + 1 :] *= 1.3  # later prices change too
    np.testing.assert_array_equal(ts_a, ts_b[: t + 1])
    np.testing.assert_array_equal(v_a, v_b[: t + 1])
    a = compute_kronos_features(ts_a, v_a, cfg, use_disk_cache=False)
    b = compute_kronos_features(ts_b, v_b, cfg, use_disk_cache=False)
    assert a.valid[cfg.context - 1 :].all()
    np.testing.assert_array_equal(a.values, b.values[: t + 1])
    np.testing.assert_array_equal(a.valid, b.valid[: t + 1])


def test_future_calendar_follows_history_up_to_each_origin():
    import pandas as pd

    from mqc.core.forecast.kronos.features import _FutureStamps

    t = 36
    ts, _ = _session_bars(t + 1, 150, seed=0)
    future = _FutureStamps(ts, "equity", 8)
    hours_at_t = set(pd.DatetimeIndex(future(t)).hour)
    assert hours_at_t <= set(range(14, 21))  # regular session only: nothing after t is known
    assert pd.DatetimeIndex(future(t))[0] > pd.Timestamp(ts[t])
    # once the extended schedule dominates the history, the future bars follow it
    assert set(pd.DatetimeIndex(future(len(ts) - 1)).hour) & {9, 10, 21, 22, 23}


def test_cache_key_carries_the_feature_format_version(monkeypatch, tiny_kronos):
    from mqc.core.forecast.kronos import features as kf

    ts, v = _session_bars(20, 0, seed=0)
    cfg = _cfg(tiny_kronos)
    key = kf.cache_key(ts, v[:, 0], "m", "t", cfg)
    monkeypatch.setattr(kf, "FORMAT_VERSION", kf.FORMAT_VERSION + 1)
    assert kf.cache_key(ts, v[:, 0], "m", "t", cfg) != key  # a definition change never reuses old entries
