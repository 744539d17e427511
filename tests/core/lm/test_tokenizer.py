"""The candle tokenizer: causal features and tokens, train-split-only statistics, both quantisers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.core.lm.conftest import random_walk, write_csv

from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.errors import DataError
from mqc.core.lm.data import load_lm_data, stream
from mqc.core.lm.tokenizer import (
    TokenizerSpec,
    candle_features,
    candles_from_features,
    fit_tokenizer,
    tokenizer_report,
)


@pytest.mark.parametrize("quantizer", ["vq", "bsq", "fsq"])
def test_tokens_up_to_t_ignore_later_candles(quantizer: str) -> None:
    ohlc = random_walk(300, 0)
    tok = fit_tokenizer(candle_features(ohlc[:200]), TokenizerSpec(quantizer, 16, 8), steps=30, seed=0)
    base = tok.encode(candle_features(ohlc))
    t = 150
    moved = ohlc.copy()
    moved[t + 1 :] *= np.exp(np.random.default_rng(1).normal(0, 0.2, (len(ohlc) - t - 1, 1)))
    moved[t + 1 :, 1] *= 1.05  # and reshape the later candles
    feats = candle_features(moved)
    np.testing.assert_array_equal(feats[: t + 1], candle_features(ohlc)[: t + 1])
    np.testing.assert_array_equal(tok.encode(feats)[: t + 1], base[: t + 1])
    assert not np.array_equal(tok.encode(feats)[t + 2 :], base[t + 2 :])


def test_features_invert_to_candles() -> None:
    ohlc = random_walk(50, 3)
    back = candles_from_features(candle_features(ohlc)[1:], ohlc[0, 3])
    np.testing.assert_allclose(back, ohlc[1:], rtol=1e-10)


def test_statistics_come_from_the_train_split_only(tmp_path: Path) -> None:
    ohlc = random_walk(400, 5)
    for name, bars in (("a", ohlc), ("b", ohlc.copy())):
        (tmp_path / name).mkdir()
        if name == "b":
            bars[300:] *= np.linspace(1, 3, 100)[:, None]  # val and test candles change, train does not
        write_csv(tmp_path / name, "AAA", bars)
    fitted = []
    for name in ("a", "b"):
        data = load_lm_data(DataConfig(data_root=str(tmp_path / name)), SplitConfig())
        assert data.split.train[1] <= 300
        tok = fit_tokenizer(data.features("train", [0]), TokenizerSpec("vq", 16, 8), steps=5, seed=0)
        fitted.append((tok.mean.numpy().copy(), tok.scale.numpy().copy()))
        whole = data.features("all", [0])
        assert not np.allclose(whole.mean(0), tok.mean.numpy())  # not the whole history's
    np.testing.assert_array_equal(fitted[0][0], fitted[1][0])
    np.testing.assert_array_equal(fitted[0][1], fitted[1][1])


def test_streams_separate_assets_and_segments(csv_root: Path) -> None:
    data = load_lm_data(DataConfig(data_root=str(csv_root)), SplitConfig())
    tok = fit_tokenizer(data.features("train", [0, 1]), TokenizerSpec("vq", 16, 8), steps=5, seed=0)
    s = stream(tok, data, "val", [0, 1])
    bos = np.flatnonzero(s == 16)
    assert list(bos) == [0, 1 + len(data.rows(0, "val"))]
    assert len(s) == 2 + len(data.rows(0, "val")) + len(data.rows(1, "val"))
    assert data.split.val[0] - data.split.train[1] >= 1  # the embargo covers the previous-close feature


def test_report_and_dead_codes_reseeded() -> None:
    feats = candle_features(random_walk(2000, 7))
    tok = fit_tokenizer(feats[:1500], TokenizerSpec("vq", 64, 8, decay=0.9), steps=300, seed=0, batch=256)
    rep = tokenizer_report(tok, feats[1500:])
    assert rep["return_rmse"] < rep["return_std"]  # reconstructs better than predicting the mean
    assert rep["code_usage"] > 0.3 and rep["perplexity"] > 10  # re-seeding keeps the codebook alive
    bsq = fit_tokenizer(feats[:1500], TokenizerSpec("bsq", 64), steps=300, seed=0, batch=256)
    assert tokenizer_report(bsq, feats[1500:])["return_rmse"] < rep["return_std"]
    fsq = fit_tokenizer(feats[:1500], TokenizerSpec("fsq", 64), steps=300, seed=0, batch=256)
    assert tokenizer_report(fsq, feats[1500:])["return_rmse"] < rep["return_std"]


def test_fsq_grid_ids_and_vectors_round_trip() -> None:
    """FSQ: levels multiply to the vocab; every id in range is reachable, and an id decodes to the
    grid point it was quantised to (dimension 0 is the lowest mixed-radix digit)."""
    import torch

    from mqc.core.errors import ConfigError
    from mqc.core.nn import fsq

    assert fsq.levels_for(512) == (8, 8, 8) and fsq.levels_for(1000) == (10, 10, 10)
    assert fsq.levels_for(6) == (3, 2) and int(np.prod(fsq.levels_for(96))) == 96
    with pytest.raises(ConfigError, match="prime factors"):
        fsq.levels_for(34)
    levels = (5, 4)
    q, ids = fsq.quantize(torch.randn(4000, 2) * 3, levels)
    assert set(ids.tolist()) == set(range(20))
    torch.testing.assert_close(fsq.codes_of(ids, levels), q)
    corner = fsq.quantize(torch.tensor([[9.0, -9.0]]), levels)  # top level of dim 0, bottom of dim 1
    assert int(corner[1]) == 4 and corner[0].tolist() == [[1.0, -1.0]]


def test_bad_prices_are_refused() -> None:
    bad = random_walk(10, 0)
    bad[3, 2] = -1.0
    with pytest.raises(DataError, match="finite and > 0"):
        candle_features(bad)
