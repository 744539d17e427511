"""The GPT, its KV cache, the horizon-only SFT loss and the stage-4 policy-gradient loss."""

from __future__ import annotations

import pytest
import torch

from mqc.core.errors import ConfigError
from mqc.core.lm.engine import generate
from mqc.core.lm.gpt import GPT, GPTConfig
from mqc.core.lm.rl import episode_loss, group_advantages, grpo_loss
from mqc.core.lm.trainer import horizon_loss


def _model(seed: int = 0, kv: int = 2) -> GPT:
    torch.manual_seed(seed)
    m = GPT(GPTConfig(sequence_len=32, vocab_size=17, n_layer=2, n_head=4, n_kv_head=kv, n_embd=32))
    for p in m.parameters():  # the zero-init head would make every logit equal
        torch.nn.init.normal_(p, std=0.2)
    return m.eval()


def test_model_is_causal() -> None:
    m = _model()
    x = torch.randint(0, 17, (2, 20))
    y = x.clone()
    y[:, 12:] = (y[:, 12:] + 5) % 17
    torch.testing.assert_close(m(x)[:, :12], m(y)[:, :12])
    assert not torch.allclose(m(x)[:, 12:], m(y)[:, 12:])


@pytest.mark.parametrize("kv", [4, 2, 1])
def test_kv_cache_matches_the_full_pass(kv: int) -> None:
    m = _model(kv=kv)
    x = torch.randint(0, 17, (3, 16))
    cache = m.new_cache(3, 16)
    parts = [m(x[:, :5], cache), m(x[:, 5:6], cache), m(x[:, 6:16], cache)]
    torch.testing.assert_close(torch.cat(parts, 1), m(x), atol=1e-5, rtol=1e-5)


def test_generation_with_and_without_cache_draws_the_same() -> None:
    m = _model()
    prompt = torch.randint(0, 17, (4, 8))
    a = generate(m, prompt, 10, generator=torch.Generator().manual_seed(3), top_k=5)
    b = generate(m, prompt, 10, generator=torch.Generator().manual_seed(3), top_k=5, use_cache=False)
    torch.testing.assert_close(a, b)
    assert int(generate(m, prompt, 10, allowed=16, generator=torch.Generator().manual_seed(0)).max()) < 16


@pytest.mark.parametrize("use_cache", [True, False])
def test_group_sampling_draws_what_the_repeated_prompt_draws(use_cache: bool) -> None:
    """``group=g`` prefills each prompt once and copies its cache to the g rows: the same tokens as
    sampling the prompt repeated g times (the old path of stage 4 and the SFT evaluation), same seed."""
    m = _model()
    prompt = torch.randint(0, 16, (3, 9))
    kw = {"allowed": 16, "top_k": 0, "use_cache": use_cache}
    old = generate(m, prompt.repeat_interleave(4, dim=0), 7, generator=torch.Generator().manual_seed(5), **kw)
    new = generate(m, prompt, 7, group=4, generator=torch.Generator().manual_seed(5), **kw)
    torch.testing.assert_close(new, old, atol=0, rtol=0)
    assert len({tuple(r) for r in new.tolist()}) > 3  # the group's rows are distinct samples
    torch.manual_seed(2)  # stage 4 draws from the global generator
    a = generate(m, prompt.repeat_interleave(4, dim=0), 7, **kw)
    torch.manual_seed(2)
    torch.testing.assert_close(generate(m, prompt, 7, group=4, **kw), a, atol=0, rtol=0)
    noise = torch.rand(12, 7, 16)
    torch.testing.assert_close(
        generate(m, prompt, 7, group=4, noise=noise, **kw),
        generate(m, prompt.repeat_interleave(4, 0), 7, noise=noise, **kw),
        atol=0,
        rtol=0,
    )


def test_grouped_forward_equals_the_full_pass_with_gradients() -> None:
    """``forward(ctx, suffix=)`` runs each context once for its group; logits and parameter gradients
    equal the full pass over the repeated context + suffix at the positions from the context's last."""
    m = _model(kv=1).train()
    ctx, suffix = torch.randint(0, 17, (3, 10)), torch.randint(0, 16, (6, 5))
    full = torch.cat([ctx.repeat_interleave(2, dim=0), suffix], dim=1)
    w = torch.randn(6, 6, 17)

    def grads(out: torch.Tensor) -> list[torch.Tensor]:
        m.zero_grad()
        (out * w).sum().backward()
        return [p.grad.clone() for p in m.parameters()]

    a, b = m(full)[:, 9:], m(ctx, suffix=suffix)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    for ga, gb in zip(grads(a), grads(b), strict=True):
        torch.testing.assert_close(gb, ga, atol=1e-5, rtol=1e-4)
    assert m(ctx, suffix=suffix[:, :0]).shape == (6, 1, 17)  # a horizon of one token
    with pytest.raises(ConfigError, match="groups"):
        m(ctx, suffix=suffix[:5])


def test_stage4_gradient_reaches_the_model_through_sampled_tokens_and_the_kl_only() -> None:
    """``episode_loss`` (context run once per group) = ``grpo_loss`` on the full pass, gradients
    included; with zero advantages and no KL the model gets no gradient at all, and the KL alone
    gives none while the policy equals the frozen reference."""
    import copy

    torch.manual_seed(1)
    m = _model().train()
    ref = copy.deepcopy(m).eval()
    ctx = torch.randint(0, 16, (2, 8))
    drawn = generate(m, ctx, 4, group=3, allowed=16, generator=torch.Generator().manual_seed(0))
    adv = torch.tensor([1.0, -1.0, 0.0, 0.5, -0.5, 0.0])
    seq = torch.cat([ctx.repeat_interleave(3, dim=0), drawn], dim=1)

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        m.zero_grad()
        loss.backward()
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in m.parameters()]

    new, st = episode_loss(m, ref, ctx, drawn, adv, 0.3, 16)
    with torch.no_grad():
        ref_full = ref(seq[:, :-1])
    old, st_old = grpo_loss(m(seq[:, :-1]), ref_full, seq, 4, adv, 0.3, 16)
    torch.testing.assert_close(new, old, atol=1e-6, rtol=1e-5)
    assert st["entropy"] == pytest.approx(st_old["entropy"], rel=1e-5)
    for a, b in zip(grads(new), grads(old), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    assert all(float(g.abs().sum()) == 0 for g in grads(episode_loss(m, ref, ctx, drawn, 0 * adv, 0.0, 16)[0]))
    # the KL gradient is p * (1 - sum p) when policy == reference: zero up to float rounding
    assert max(float(g.abs().max()) for g in grads(episode_loss(m, ref, ctx, drawn, 0 * adv, 1.0, 16)[0])) < 1e-6
    assert sum(float(g.abs().sum()) for g in grads(episode_loss(m, ref, ctx, drawn, adv, 0.0, 16)[0])) > 0
    other = _model(seed=7).eval()  # a reference the policy differs from: the KL alone moves it
    assert max(float(g.abs().max()) for g in grads(episode_loss(m, other, ctx, drawn, 0 * adv, 1.0, 16)[0])) > 1e-3


def test_depth_dial_and_bad_sizes() -> None:
    c = GPTConfig.from_depth(2, 64, 17)
    assert (c.n_layer, c.n_embd, c.n_head, c.head_dim) == (2, 128, 2, 64)
    with pytest.raises(ConfigError, match="kv-heads"):
        GPTConfig(n_head=4, n_kv_head=3)
    assert set(GPT(c).hidden_matrices()) == {
        n for n, p in GPT(c).named_parameters() if p.ndim == 2 and n.startswith("blocks.")
    }


def test_sft_loss_sees_the_horizon_only() -> None:
    tokens = torch.randint(0, 17, (3, 12))
    logits = torch.randn(3, 11, 17, requires_grad=True)
    loss = horizon_loss(logits, tokens, 4)
    loss.backward()
    assert torch.all(logits.grad[:, :-4] == 0)
    assert torch.all(logits.grad[:, -4:].abs().sum(-1) > 0)
    expected = torch.nn.functional.cross_entropy(logits[:, -4:].reshape(-1, 17), tokens[:, -4:].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_rl_gradient_flows_through_sampled_tokens_and_the_kl_only() -> None:
    tokens = torch.randint(0, 16, (4, 10))
    ref = torch.randn(4, 9, 17)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    pol = torch.randn(4, 9, 17, requires_grad=True)
    grpo_loss(pol, ref, tokens, 3, adv, kl=0.0, codes=16)[0].backward()
    g = pol.grad
    assert torch.all(g[:, :-3] == 0)  # context positions: nothing
    assert torch.all(g[:, :, 16] == 0)  # the separator was never sampled
    # without the KL the gradient of a row is adv * (onehot(sampled) - p): zero exactly when adv is 0
    p = torch.softmax(pol.detach()[:, -3:, :16], -1)
    onehot = torch.nn.functional.one_hot(tokens[:, -3:], 16).float()
    torch.testing.assert_close(g[:, -3:, :16], -(adv[:, None, None] * (onehot - p)) / (4 * 3))
    # with zero advantages only the KL term moves the policy, and not at all when it equals the reference
    pol2 = pol.detach().clone().requires_grad_(True)
    grpo_loss(pol2, ref, tokens, 3, torch.zeros(4), kl=1.0, codes=16)[0].backward()
    assert pol2.grad[:, -3:].abs().sum() > 0
    same = ref.clone().requires_grad_(True)
    grpo_loss(same, ref, tokens, 3, torch.zeros(4), kl=1.0, codes=16)[0].backward()
    torch.testing.assert_close(same.grad, torch.zeros_like(same.grad))


def test_group_advantages_are_centred_per_group() -> None:
    adv = group_advantages(torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 10.0]).numpy(), 3)
    assert abs(adv[:3].sum()) < 1e-9 and abs(adv[:3][2] - 1.2247) < 1e-3
    assert (adv[3:] == 0).all()


def test_gumbel_draws_follow_the_softmax() -> None:
    from mqc.core.nn.sampling import gumbel_noise, sample_with_noise

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20000, 1)
    noise = gumbel_noise(torch.Generator().manual_seed(0), (20000, 4))
    freq = torch.bincount(sample_with_noise(logits, noise)[:, 0], minlength=4).float() / 20000
    torch.testing.assert_close(freq, torch.softmax(logits[0], -1), atol=0.01, rtol=0)
    top2 = sample_with_noise(logits, noise, top_k=2)
    assert set(top2[:, 0].tolist()) == {0, 1}
