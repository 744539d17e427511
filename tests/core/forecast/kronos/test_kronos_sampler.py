"""Path sampling: KV cache == no cache, seeds, upstream filtering semantics, every path returned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mqc.core.errors import ConfigError
from mqc.core.forecast.kronos.checkpoint import load_model, load_tokenizer
from mqc.core.forecast.kronos.sampler import (
    SamplingSettings,
    calendar_stamps,
    filter_logits,
    make_generator,
    sample_paths,
)


def _windows(n_win: int, length: int, horizon: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_win, length)), axis=1))
    ohlcv = np.stack([close, close * 1.01, close * 0.99, close, rng.uniform(1e3, 2e3, (n_win, length))], -1)
    ts = pd.date_range("2024-01-01", periods=length + horizon, freq="h").to_numpy()
    xs = np.broadcast_to(calendar_stamps(ts[:length]), (n_win, length, 5))
    ys = np.broadcast_to(calendar_stamps(ts[length:]), (n_win, horizon, 5))
    return ohlcv, xs, ys


@pytest.fixture
def tiny(tiny_kronos):
    model_dir, tok_dir = tiny_kronos
    return load_model(model_dir), load_tokenizer(tok_dir)


@pytest.mark.parametrize("max_context", [64, 30])  # 30 < 24 + 10: the window slides
def test_kv_cache_gives_the_same_paths(tiny, max_context):
    model, tok = tiny
    x, xs, ys = _windows(3, 24, 10)
    out = {}
    for cache in (True, False):
        s = SamplingSettings(sample_count=4, max_context=max_context, use_cache=cache)
        out[cache] = sample_paths(model, tok, x, xs, ys, s, make_generator(11))
    assert out[True].shape == (3, 4, 10, 6)
    np.testing.assert_array_equal(out[True], out[False])


def test_seed_reproduces_and_paths_differ(tiny):
    model, tok = tiny
    x, xs, ys = _windows(2, 20, 6)
    s = SamplingSettings(sample_count=8, top_p=1.0)
    a = sample_paths(model, tok, x, xs, ys, s, make_generator(1))
    b = sample_paths(model, tok, x, xs, ys, s, make_generator(1))
    c = sample_paths(model, tok, x, xs, ys, s, make_generator(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # every path is returned, not their mean: the paths of one window differ from each other
    assert np.unique(a[0, :, -1, 3]).size > 1
    assert np.isfinite(a).all()


def test_filtering_follows_upstream():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    k = filter_logits(logits.clone(), top_k=2, top_p=0.1)  # top_k wins, top_p ignored
    assert torch.isfinite(k).tolist() == [[True, True, False, False, False]]
    p = filter_logits(logits.clone(), top_k=0, top_p=0.7)
    probs = torch.softmax(logits, -1)[0]
    assert probs[0] < 0.7 < probs[:2].sum()  # the token crossing the threshold is kept
    assert torch.isfinite(p).tolist() == [[True, True, False, False, False]]
    assert torch.equal(filter_logits(logits.clone(), 0, 1.0), logits)


def test_greedy_limit_is_deterministic_across_seeds(tiny):
    model, tok = tiny
    x, xs, ys = _windows(1, 16, 4)
    s = SamplingSettings(sample_count=2, top_k=1)
    a = sample_paths(model, tok, x, xs, ys, s, make_generator(1))
    b = sample_paths(model, tok, x, xs, ys, s, make_generator(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0, 0], a[0, 1])


def test_invalid_settings_are_config_errors():
    with pytest.raises(ConfigError, match="temperature"):
        SamplingSettings(temperature=0)
    with pytest.raises(ConfigError, match="top_p"):
        SamplingSettings(top_p=0)
