"""FastGRU: nn.GRU's equations and parameters with a hand-written backward (mqc.core.policy.gru)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from mqc.core.policy import gru as gru_module
from mqc.core.policy.gru import FastGRU, flush_denormals, flushing_denormals, gru_sequence
from mqc.core.policy.networks import DirichletGRUPolicy, ModelConfig


def _pair(layers: int, dtype: torch.dtype = torch.float32, inp: int = 7, hid: int = 5) -> tuple[FastGRU, torch.nn.GRU]:
    torch.manual_seed(layers)
    fast = FastGRU(inp, hid, layers).to(dtype)
    ref = torch.nn.GRU(inp, hid, layers, batch_first=True).double()
    ref.load_state_dict(fast.state_dict())
    return fast, ref


@pytest.mark.parametrize("layers", [1, 2])
def test_forward_matches_nn_gru(layers: int) -> None:
    fast, ref = _pair(layers)
    x = torch.randn(4, 13, 7)
    out, h_n = fast(x)
    ref_out, ref_h = ref(x.double())
    assert out.shape == ref_out.shape and h_n.shape == ref_h.shape == (layers, 4, 5)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(h_n.double(), ref_h, atol=1e-6, rtol=0)
    with torch.inference_mode():  # the no-grad path keeps one step of scratch only
        torch.testing.assert_close(fast(x)[0].double(), ref_out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("last_only", [True, False])
def test_gradients_match_nn_gru(layers: int, last_only: bool) -> None:
    fast, ref = _pair(layers)
    x = torch.randn(3, 17, 7, requires_grad=True)
    xd = x.detach().double().requires_grad_()
    w = torch.randn(3, 17, 5)

    def loss(out: torch.Tensor) -> torch.Tensor:
        return out[:, -1].pow(2).sum() if last_only else (out * w.to(out.dtype)).sum()

    loss(fast(x)[0]).backward()
    loss(ref(xd)[0]).backward()
    torch.testing.assert_close(x.grad.double(), xd.grad, atol=2e-6, rtol=0)
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad.double(), q.grad, atol=5e-6, rtol=0, msg=name)


def test_gradient_matches_finite_differences_in_float64() -> None:
    # torch.autograd.gradcheck backpropagates through one graph many times, which this backward
    # (it consumes its buffers) refuses; a directional central difference checks every input at once.
    torch.manual_seed(0)
    params = [torch.randn(s, dtype=torch.float64) * 0.5 for s in ((9, 4), (9, 3), (9,), (9,))]
    x = torch.randn(6, 2, 4, dtype=torch.float64)
    w_out = torch.randn(6, 2, 3, dtype=torch.float64)

    def f(x: torch.Tensor, ps: list[torch.Tensor]) -> torch.Tensor:
        return (gru_sequence(x, [tuple(ps)])[0] * w_out).sum()

    leaves = [t.clone().requires_grad_() for t in (x, *params)]
    f(leaves[0], leaves[1:]).backward()
    dirs = [torch.randn_like(t) for t in leaves]
    analytic = sum(float((t.grad * d).sum()) for t, d in zip(leaves, dirs, strict=True))
    eps = 1e-6
    with torch.no_grad():
        plus = [t.detach() + eps * d for t, d in zip(leaves, dirs, strict=True)]
        minus = [t.detach() - eps * d for t, d in zip(leaves, dirs, strict=True)]
        numeric = float(f(plus[0], plus[1:]) - f(minus[0], minus[1:])) / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_second_backward_through_same_graph_is_an_error_not_a_wrong_answer() -> None:
    fast, _ = _pair(1)
    out, _ = fast(torch.randn(2, 5, 7))
    loss = out[:, -1].sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_explicit_state_and_non_cpu_float_types_use_nn_gru() -> None:
    fast, ref = _pair(1)
    x, h0 = torch.randn(2, 5, 7), torch.randn(1, 2, 5)
    torch.testing.assert_close(fast(x, h0)[0].double(), ref(x.double(), h0.double())[0], atol=1e-6, rtol=0)
    assert not fast.fused_ok(x.half())


def test_state_dict_is_nn_grus() -> None:
    fast, ref = _pair(2)
    assert list(fast.state_dict()) == list(torch.nn.GRU(7, 5, 2, batch_first=True).state_dict())


def test_policy_gradient_checkpointing_gives_the_same_gradients() -> None:
    cfg = ModelConfig(
        type="dirichlet_gru", n_assets=3, n_features=4, lookback=6, hidden_size=8, layers=2, mode="long", cap=1.0
    )
    torch.manual_seed(0)
    model = DirichletGRUPolicy(cfg)
    inputs, t0 = torch.randn(40, 3, 4), torch.tensor([10, 20])
    grads = []
    for ckpt in (False, True):
        model.zero_grad()
        model.gradient_checkpointing = ckpt
        model.forward_span(inputs, t0, 5).log().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_higher_order_gradients_are_refused() -> None:
    # create_graph=True would differentiate the hand-written backward, which autograd cannot see into.
    fast, _ = _pair(1)
    for p in fast.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 5, 7, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable"):
        torch.autograd.grad(fast(x)[0].sum(), x, create_graph=True)


def test_empty_batch_and_single_step() -> None:
    fast, ref = _pair(1)
    assert fast(torch.zeros(0, 5, 7))[0].shape == (0, 5, 5)
    x = torch.randn(3, 1, 7)
    torch.testing.assert_close(fast(x)[0].double(), ref(x.double())[0], atol=1e-6, rtol=0)


def _subnormal(t: torch.Tensor) -> bool:
    return bool(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).any())


def test_backward_flushes_a_gradient_decayed_into_subnormals() -> None:
    # Over a long lookback the gradient reaching early steps falls below float32's smallest normal
    # number; arithmetic on such values is several times slower on Intel cores. The backward flushes
    # them to zero, which changes nothing above that scale.
    fast, ref = _pair(1, hid=8)
    x = torch.randn(6, 400, 7, requires_grad=True)
    xd = x.detach().double().requires_grad_()
    fast(x)[0][:, -1].sum().backward()
    ref(xd)[0][:, -1].sum().backward()
    assert float(xd.grad[:, 0].abs().max()) < 1e-38  # the exact gradient does underflow float32
    grads = [(x.grad, xd.grad)] + [(p.grad, q.grad) for p, q in zip(fast.parameters(), ref.parameters(), strict=True)]
    for g, g_ref in grads:
        assert not _subnormal(g)
        torch.testing.assert_close(g.double(), g_ref, atol=5e-6, rtol=0)


@pytest.mark.parametrize("before", [False, True])
def test_flush_mode_is_restored_after_backward(before: bool) -> None:
    if not torch.set_flush_denormal(before):
        pytest.skip("this CPU cannot flush subnormals")
    try:
        fast, _ = _pair(1)
        fast(torch.randn(2, 5, 7))[0].sum().backward()
        assert flushing_denormals() is before
        with pytest.raises(ZeroDivisionError), flush_denormals():
            assert flushing_denormals()
            raise ZeroDivisionError
        assert flushing_denormals() is before
    finally:
        torch.set_flush_denormal(False)


def test_flushing_leaves_the_policy_gradients_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default lookback: at initialisation the gradient shrinks ~0.7x per step back through the window.
    cfg = ModelConfig(
        type="dirichlet_gru", n_assets=5, n_features=4, lookback=192, hidden_size=16, layers=1, mode="long", cap=1.0
    )
    torch.manual_seed(0)
    model = DirichletGRUPolicy(cfg)
    inputs, t0 = torch.randn(400, 5, 4, requires_grad=True), torch.tensor([200, 300])
    grads = []
    for flush in (True, False):
        if not flush:
            monkeypatch.setattr(gru_module, "flush_denormals", contextlib.nullcontext)
        model.zero_grad()
        inputs.grad = None
        model.forward_span(inputs, t0, 8).log().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        if not flush:
            assert _subnormal(inputs.grad)  # the unflushed backward did meet subnormals ...
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)  # ... and flushing them changed no gradient bit
