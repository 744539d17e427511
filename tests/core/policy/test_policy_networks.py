"""Policy networks, leg maps and inputs: positivity, caps, windows, standardisation, providers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mqc.core.data.config import FeatureConfig
from mqc.core.errors import CheckpointError, DataError
from mqc.core.policy.inputs import (
    build_feature_provider,
    build_inputs,
    check_finite,
    register_feature_provider,
)
from mqc.core.policy.networks import (
    DirichletGRUPolicy,
    ModelConfig,
    SharpeMLP,
    decide,
    gather_windows,
    leg_mode,
    legs_to_weights,
    n_legs,
)


def _cfg(mode: str, type_: str = "dirichlet_gru") -> ModelConfig:
    return ModelConfig(type=type_, n_assets=3, n_features=4, lookback=5, hidden_size=8, layers=1, mode=mode, cap=1.5)


@pytest.mark.parametrize("mode", ["long", "long_cash", "long_short"])
def test_alpha_strictly_positive_even_for_extreme_inputs(mode: str) -> None:
    torch.manual_seed(0)
    model = DirichletGRUPolicy(_cfg(mode))
    with torch.no_grad():
        model.head.weight.mul_(1e4)
    x = torch.randn(16, 5, 3, 4) * 1e3
    alpha = model(x)
    span = model.forward_span(x.reshape(-1, 3, 4), torch.tensor([4, 9]), 3, stride=2)
    assert span.shape == (2, 2, n_legs(mode, 3)) and (span > 0).all()
    assert alpha.shape == (16, n_legs(mode, 3))
    assert (alpha >= model.cfg.alpha_min).all() and torch.isfinite(alpha).all()
    p = model.mean_legs(x)
    torch.testing.assert_close(p.sum(-1), torch.ones(16))


def test_leg_maps_respect_caps() -> None:
    p = torch.distributions.Dirichlet(torch.ones(7)).sample((200,))
    w = legs_to_weights(p, "long_short", 3, 2.0)
    assert (w.abs().sum(-1) <= 2.0 + 1e-6).all() and (w < 0).any()
    w = legs_to_weights(p[:, :3] / p[:, :3].sum(-1, keepdim=True), "long", 3, 1.0)
    torch.testing.assert_close(w.sum(-1), torch.ones(200))
    w = legs_to_weights(p[:, :4] / p[:, :4].sum(-1, keepdim=True), "long_cash", 3, 1.0)
    assert (w >= 0).all() and (w.sum(-1) < 1).all()
    assert leg_mode(False, False, 1.0) == "long" and leg_mode(False, True, 1.0) == "long_cash"
    assert leg_mode(False, False, 2.0) == "long_cash" and leg_mode(True, False, 1.0) == "long_short"


def test_gather_windows_and_decide_shapes() -> None:
    inputs = torch.arange(20 * 3 * 4, dtype=torch.float32).view(20, 3, 4)
    win = gather_windows(inputs, torch.tensor([4, 10]), 5)
    assert win.shape == (2, 5, 3, 4)
    torch.testing.assert_close(win[1], inputs[6:11])
    for type_ in ("dirichlet_gru", "sharpe_mlp"):
        model = (DirichletGRUPolicy if type_ == "dirichlet_gru" else SharpeMLP)(_cfg("long_short", type_))
        w = decide(model, inputs, 4, 20, chunk=5)
        assert w.shape == (16, 3) and (w.abs().sum(-1) <= 1.5 + 1e-6).all()
        # the span path (project once, unfold windows) equals running every window on its own
        per_window = legs_to_weights(
            model.mean_legs(gather_windows(inputs, torch.arange(4, 20), 5)), "long_short", 3, 1.5
        )
        torch.testing.assert_close(w, per_window, rtol=1e-5, atol=1e-5)
        assert bool(model.hidden_matrices()) == (type_ == "dirichlet_gru")  # a 1-layer MLP has no hidden matrix


def test_standardisation_uses_only_the_fit_range(synth_panel) -> None:
    panel = synth_panel(n_assets=2, n_bars=300, seed=3)
    cfg = FeatureConfig(momentum_windows=(5,), vol_windows=(5,))
    a, stats_a = build_inputs(panel, cfg, fit_stop=150)
    panel.values[200:, :, :4] *= 3.0  # later bars change: the statistics must not
    b, stats_b = build_inputs(panel, cfg, fit_stop=150)
    assert stats_a == stats_b
    np.testing.assert_array_equal(a.values[:200], b.values[:200])
    valid = a.values[cfg.warmup : 150]
    assert abs(valid.mean()) < 0.2


def test_nan_bars_raise_a_clear_error(synth_panel) -> None:
    panel = synth_panel(n_assets=2, n_bars=50, seed=1)
    panel.values[10, 1, 3] = np.nan
    with pytest.raises(DataError, match="SYN1: NaN/inf"):
        check_finite(panel)


class _Const:
    name = "const-test"

    def __init__(self, value: float = 1.0) -> None:
        self.value = value

    def to_dict(self) -> dict:
        return {"value": self.value}

    def compute(self, panel):
        T, A = len(panel), panel.n_assets
        return np.full((T, A, 1), self.value, np.float32), np.ones((T, A), bool)


def test_feature_provider_registry_round_trip(synth_panel) -> None:
    register_feature_provider("const-test", lambda s: _Const(**s))
    p = build_feature_provider({"name": "const-test", "settings": {"value": 2.0}})
    assert p.value == 2.0
    inputs, _ = build_inputs(synth_panel(n_assets=2, n_bars=100), FeatureConfig(), [p], fit_stop=80)
    assert inputs.names[-1] == "const-test:0"
    with pytest.raises(CheckpointError, match="not registered"):
        build_feature_provider({"name": "no-such-provider"})


def test_lazy_feature_provider_is_imported_on_demand(tmp_path, monkeypatch) -> None:
    from mqc.core.policy.inputs import register_lazy_feature_provider

    (tmp_path / "mqc_lazy_provider_mod.py").write_text(
        "class P:\n    name = 'lazy-test'\n    def __init__(self, k=1):\n        self.k = k\n"
        "    def to_dict(self):\n        return {'k': self.k}\n"
        "    def compute(self, panel):\n        raise RuntimeError\n"
        "def make(settings):\n    return P(**settings)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    register_lazy_feature_provider("lazy-test", "mqc_lazy_provider_mod:make")
    assert build_feature_provider({"name": "lazy-test", "settings": {"k": 3}}).to_dict() == {"k": 3}
