"""A GRU for small recurrent policies on CPU: the same equations and parameters as ``nn.GRU``, with a
hand-written backward pass.

On CPU, ``nn.GRU`` runs a C++ loop over time whose backward is recorded op by op: about 14 autograd
nodes per time step, two small matrix products among them. Here the forward takes six ops per step
and keeps what the backward needs in three buffers; the backward takes four ops per step: every term
that does not depend on the incoming gradient is computed for all steps at once, over the forward's
buffers (fresh multi-megabyte temporaries cost page faults that would eat the gain), and the weight
gradients are two large matrix products after the loop. The backward flushes subnormal floats to
zero (see ``flush_denormals``): the gradient decays into them over a long lookback, and on Intel
cores arithmetic on them is several times slower. At the policy's sizes (hidden 32, ~128 windows,
192 steps) forward + backward takes ~28 ms against ~38 ms for ``nn.GRU`` on an AMD EPYC, and
~25 ms against ~35-40 ms (subnormals flushed) or 80-120 ms (torch's defaults) for ``nn.GRU`` on an
Intel Xeon (bench/bench_train.py).

Equations (PyTorch's, gate order r, z, n in ``weight_ih`` / ``weight_hh``)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

``FastGRU`` subclasses ``nn.GRU``, so its state dict is ``nn.GRU``'s and checkpoints load either way.
It takes the fused path for fp32 (or fp64) CPU tensors with a zero initial state and no active
dropout; anything else (CUDA, where cuDNN is the fast path; autocast; an explicit ``hx``) goes to
``nn.GRU.forward``. Unlike ``nn.GRU`` it refuses, with an error, a second backward through one graph,
higher-order gradients, and in-place edits of its output before the backward.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# A float32 subnormal: below float32's smallest normal number (1.18e-38), above zero.
_SUBNORMAL = 1e-40


def flushing_denormals() -> bool:
    """Whether this thread flushes subnormal floats to zero (``torch.set_flush_denormal`` has no getter)."""
    return float(torch.tensor(_SUBNORMAL, dtype=torch.float32) * 2.0) == 0.0


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush subnormal floats to zero in this thread for the block, then restore the previous mode.

    The recurrence's backward multiplies the incoming gradient by a gate derivative < 1 at every
    step, so over a long lookback it decays below float32's smallest normal number. On Intel
    cores every operation on such a subnormal takes a microcode assist: at the policy's shape the
    backward ran 4-7x slower (bench/bench_train.py). Values that small are below the rounding of
    every sum they enter, so flushing them to zero leaves the gradients as they were. Threads other
    than the caller's (intra-op workers with ``threads > 1``) keep their own mode.
    """
    if flushing_denormals() or not torch.set_flush_denormal(True):
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _forward_layer(
    x_tb: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor, keep: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run one layer over time-major input ``x_tb [T, B, I]`` from a zero state.

    Returns ``(hs [T + 1, B, H], rzn [T, B, 3H], gh [T, B, 3H])``: the states (``hs[0] = 0``), the
    gates ``r | z | n`` and the recurrent pre-activations ``W_h h + b_h``. With ``keep=False`` only
    ``hs`` is meaningful (``gh`` is one step's scratch).
    """
    t_len, batch, _ = x_tb.shape
    hid = w_hh.shape[1]
    # The input projections of all steps at once; each step then turns its slice into r | z | n in
    # place, so the gates cost no memory beyond this buffer.
    rzn = torch.addmm(b_ih, x_tb.reshape(t_len * batch, x_tb.shape[-1]), w_ih.t()).view(t_len, batch, 3 * hid)
    hs = x_tb.new_zeros(t_len + 1, batch, hid)
    gh = x_tb.new_empty(t_len if keep else 1, batch, 3 * hid)
    w_hh_t = w_hh.t()
    # Every per-step view is cut up front (one unbind per buffer): at these sizes a step's kernels
    # take a few microseconds each, and Python-level slicing inside the loop cost as much again.
    h_t = hs.unbind(0)
    rz_t, r_t, z_t, n_t = (
        rzn[..., a:b].unbind(0) for a, b in ((0, 2 * hid), (0, hid), (hid, 2 * hid), (2 * hid, 3 * hid))
    )
    steps = gh if keep else gh.expand(t_len, batch, 3 * hid)
    g_t, g_rz_t, g_n_t = steps.unbind(0), steps[..., : 2 * hid].unbind(0), steps[..., 2 * hid :].unbind(0)
    for t in range(t_len):
        torch.addmm(b_hh, h_t[t], w_hh_t, out=g_t[t])
        rz_t[t].add_(g_rz_t[t]).sigmoid_()
        n_t[t].addcmul_(r_t[t], g_n_t[t]).tanh_()
        # h' = n + z * (h - n) = (1 - z) * n + z * h
        torch.lerp(n_t[t], h_t[t], z_t[t], out=h_t[t + 1])
    return hs, rzn, gh


class _GRULayerFn(torch.autograd.Function):
    """One GRU layer from a zero state; returns the hidden states ``[T, B, H]`` (time-major).

    The backward overwrites the saved buffers with gradients (large temporaries cost page faults
    that dominate at these sizes); autograd's version check turns a second backward through the
    same graph into an error instead of a wrong answer.
    """

    @staticmethod
    def forward(
        ctx: Any, x_tb: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor
    ) -> torch.Tensor:
        hs, rzn, gh = _forward_layer(x_tb, w_ih, w_hh, b_ih, b_hh, keep=True)
        ctx.save_for_backward(x_tb, w_ih, w_hh, hs, rzn, gh)
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: higher-order gradients would be silently wrong
            raise RuntimeError(
                "FastGRU's backward is not differentiable (create_graph=True); use torch.nn.GRU for higher-order"
                " gradients"
            )
        with flush_denormals():
            return _backward_layer(ctx, grad_out)


def _backward_layer(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    """The body of ``_GRULayerFn.backward`` (see there)."""
    x_tb, w_ih, w_hh, hs, rzn, gh = ctx.saved_tensors
    t_len, batch, three_h = gh.shape
    hid = three_h // 3
    r, z, n = rzn[..., :hid], rzn[..., hid : 2 * hid], rzn[..., 2 * hid :]
    gh_r, gh_z, gh_n = gh[..., :hid], gh[..., hid : 2 * hid], gh[..., 2 * hid :]
    h_prev = hs[:-1]
    # d pre-activation / d h' for every step at once, written over buffers no longer needed;
    # only the products with the incoming gradient stay in the sequential loop.
    # x * (1 - y) is computed as x - x * y (addcmul) to avoid a temporary.
    torch.sub(h_prev, n, out=gh_z).mul_(z).addcmul_(gh_z, z, value=-1.0)  # d pre_z = (h - n) z (1 - z)
    n.mul_(n).neg_().add_(1.0).addcmul_(n, z, value=-1.0)  # d pre_n = (1 - n^2)(1 - z)
    torch.mul(n, gh_n, out=gh_r).mul_(r).addcmul_(gh_r, r, value=-1.0)  # d pre_r = d_n gh_n r (1 - r)
    torch.mul(n, r, out=gh_n)  # d gh_n = d_n r
    # gh now holds d(W_h h + b_h) / d h' and n holds d(W_in x + b_in) / d h', per step.
    grad_out = grad_out.contiguous()
    # The gradient usually reaches only the last state (the policy reads out[:, -1]).
    only_last = not bool(grad_out[:-1].any())
    dh = grad_out[-1].clone()
    g_t, g3_t, n_t, z_t = gh.unbind(0), gh.view(t_len, batch, 3, hid).unbind(0), n.unbind(0), z.unbind(0)
    for t in range(t_len - 1, -1, -1):
        if t < t_len - 1 and not only_last:
            dh = dh + grad_out[t]
        g3_t[t].mul_(dh.unsqueeze(1))
        n_t[t].mul_(dh)
        dh = torch.addmm(dh * z_t[t], g_t[t], w_hh)
    # r | z parts of the input gradient equal the recurrent ones; n's is already in place.
    rzn[..., : 2 * hid].copy_(gh[..., : 2 * hid])
    dgh = gh.view(t_len * batch, three_h)
    dgi = rzn.view(t_len * batch, three_h)
    grad_x = (dgi @ w_ih).view_as(x_tb) if ctx.needs_input_grad[0] else None
    grad_w_ih = dgi.t() @ x_tb.reshape(t_len * batch, x_tb.shape[-1]) if ctx.needs_input_grad[1] else None
    grad_w_hh = dgh.t() @ h_prev.reshape(t_len * batch, hid) if ctx.needs_input_grad[2] else None
    grad_b_ih = dgi.sum(0) if ctx.needs_input_grad[3] else None
    grad_b_hh = dgh.sum(0) if ctx.needs_input_grad[4] else None
    return grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


def gru_sequence(x_tb: torch.Tensor, weights: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked GRU layers over time-major ``x_tb [T, B, I]`` from zero states.

    Args:
        x_tb: time-major input (any strides; copied once if not contiguous).
        weights: ``(w_ih, w_hh, b_ih, b_hh)`` per layer, in ``nn.GRU``'s layout.
    Returns:
        (outputs of the last layer ``[T, B, H]``, final state of every layer ``[layers, B, H]``).
    """
    seq = x_tb.contiguous()
    needs_grad = torch.is_grad_enabled() and (seq.requires_grad or any(w.requires_grad for ws in weights for w in ws))
    finals = []
    for w_ih, w_hh, b_ih, b_hh in weights:
        if needs_grad:
            seq = _GRULayerFn.apply(seq, w_ih, w_hh, b_ih, b_hh)
        else:
            seq = _forward_layer(seq, w_ih, w_hh, b_ih, b_hh, keep=False)[0][1:]
        finals.append(seq[-1])
    return seq, torch.stack(finals)


class FastGRU(nn.GRU):
    """``nn.GRU`` (batch-first, biased, unidirectional) with the fused CPU path of this module."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, batch_first=True)

    def fused_ok(self, x: torch.Tensor) -> bool:
        """Whether ``x`` takes the fused path (fp32/fp64 on CPU, no autocast, no active dropout)."""
        return (
            x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
            and x.dim() == 3
            and not torch.is_autocast_enabled("cpu")
            and (self.dropout == 0.0 or not self.training)
        )

    def _weights(self) -> list[tuple[torch.Tensor, ...]]:
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return [tuple(getattr(self, f"{k}_l{i}") for k in names) for i in range(self.num_layers)]

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: A002 - nn.GRU's name
        if hx is not None or not self.fused_ok(input):
            return super().forward(input, hx)
        out, h_n = gru_sequence(input.transpose(0, 1), self._weights())
        return out.transpose(0, 1), h_n

    def last_state(self, x_tb: torch.Tensor) -> torch.Tensor:
        """The last layer's final state ``[B, H]`` for time-major input ``x_tb [T, B, I]``."""
        if self.fused_ok(x_tb):
            return gru_sequence(x_tb, self._weights())[0][-1]
        out, _ = super().forward(x_tb.transpose(0, 1))
        return out[:, -1]
