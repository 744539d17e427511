"""Parity with the upstream implementation shipped in ``kronos-finance`` (skipped when absent).

Tiny random *upstream* modules are saved with upstream's own ``save_pretrained``, loaded with our
strict loader, and both predictors sample with the same seed: our path mean must equal upstream's
``KronosPredictor.predict`` (which averages the paths), sliding window included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore:.*weekday:Warning"
)
upstream = pytest.importorskip("kronos_finance._vendor.kronos_model")

from mqc.core.forecast.kronos.checkpoint import load_model, load_tokenizer  # noqa: E402
from mqc.core.forecast.kronos.sampler import SamplingSettings, calendar_stamps, make_generator, sample_paths  # noqa: E402

TOK = dict(
    d_in=6,
    d_model=32,
    n_heads=4,
    ff_dim=64,
    n_enc_layers=3,
    n_dec_layers=3,
    ffn_dropout_p=0.0,
    attn_dropout_p=0.0,
    resid_dropout_p=0.0,
    s1_bits=4,
    s2_bits=4,
    beta=0.05,
    gamma0=1.0,
    gamma=1.1,
    zeta=0.05,
    group_size=4,
)
MOD = dict(
    s1_bits=4,
    s2_bits=4,
    n_layers=2,
    d_model=32,
    n_heads=4,
    ff_dim=64,
    ffn_dropout_p=0.0,
    attn_dropout_p=0.0,
    resid_dropout_p=0.0,
    token_dropout_p=0.0,
    learn_te=True,
)


@pytest.mark.parametrize(
    ("max_context", "top_k", "top_p", "use_cache"), [(512, 0, 0.9, True), (45, 3, 1.0, True), (45, 0, 0.9, False)]
)
def test_sample_mean_matches_upstream_predict(tmp_path: Path, max_context, top_k, top_p, use_cache):
    torch.manual_seed(0)
    up_tok, up_model = upstream.KronosTokenizer(**TOK).eval(), upstream.Kronos(**MOD).eval()
    up_tok.save_pretrained(tmp_path / "tok")
    up_model.save_pretrained(tmp_path / "model")
    tok, model = load_tokenizer(tmp_path / "tok"), load_model(tmp_path / "model")

    rng = np.random.default_rng(0)
    L, H, S = 40, 12, 5
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, L + H)))
    df = pd.DataFrame(
        {"open": c, "high": c * 1.01, "low": c * 0.99, "close": c * 1.001, "volume": rng.uniform(1e3, 2e3, L + H)}
    )
    ts = pd.Series(pd.date_range("2024-01-01", periods=L + H, freq="h"))
    pred = upstream.KronosPredictor(up_model, up_tok, device="cpu", max_context=max_context)
    torch.manual_seed(7)
    ref = pred.predict(
        df.iloc[:L],
        ts.iloc[:L],
        ts.iloc[L:].reset_index(drop=True),
        pred_len=H,
        T=1.0,
        top_k=top_k,
        top_p=top_p,
        sample_count=S,
        verbose=False,
    ).to_numpy()

    s = SamplingSettings(sample_count=S, top_k=top_k, top_p=top_p, max_context=max_context, use_cache=use_cache)
    ours = sample_paths(
        model,
        tok,
        df.iloc[:L].to_numpy()[None],
        calendar_stamps(ts.iloc[:L].to_numpy())[None],
        calendar_stamps(ts.iloc[L:].to_numpy())[None],
        s,
        make_generator(7),
    )
    assert ours.shape == (1, S, H, 6)
    np.testing.assert_allclose(ours.mean(axis=1)[0], ref, rtol=2e-5, atol=1e-3)
