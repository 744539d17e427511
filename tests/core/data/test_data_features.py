"""The feature module is causal: bars after t never change features at or before t."""

from __future__ import annotations

import numpy as np

from mqc.core.data.config import FeatureConfig
from mqc.core.data.features import compute_features, feature_names


def test_features_are_causal(synth_panel):
    panel = synth_panel(n_assets=3, n_bars=400, seed=7)
    cfg = FeatureConfig(vol_windows=(10, 30), momentum_windows=(5, 60), include_volume=True)
    base = compute_features(panel.values, cfg)
    rng = np.random.default_rng(0)
    for t in (0, 61, 150, 398):
        changed = panel.values.copy()
        # Perturb every field of every bar after t (keeping bars valid: positive prices).
        changed[t + 1 :] *= rng.uniform(0.5, 1.5, size=changed[t + 1 :].shape)
        feats = compute_features(changed, cfg)
        assert np.array_equal(feats.values[: t + 1], base.values[: t + 1]), f"features up to {t} changed"
        if t + 1 < len(panel) and t + 1 >= cfg.warmup:
            assert not np.array_equal(feats.values[t + 1 :], base.values[t + 1 :])


def test_feature_names_and_warmup(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=100)
    cfg = FeatureConfig()
    fs = compute_features(panel.values, cfg)
    assert fs.names == feature_names(cfg) == ("gap", "hi", "lo", "body", "vol20", "mom5", "mom20", "mom60", "lvol20")
    assert fs.values.shape == (100, 2, len(fs.names)) and fs.values.dtype == np.float32
    assert not fs.valid[: cfg.warmup].any() and fs.valid[cfg.warmup :].all()
    # Candle features match their definitions at a valid bar.
    t, a = 80, 1
    o, h, lo, c = panel.values[t, a, :4]
    assert np.isclose(fs.values[t, a, 1], np.log(h / o), atol=1e-6)
    assert np.isclose(fs.values[t, a, 0], np.log(o / panel.values[t - 1, a, 3]), atol=1e-6)
