"""The GPT, its KV cache, the horizon-only SFT loss and the stage-4 policy-gradient loss."""

from __future__ import annotations

import pytest
import torch

from mqc.core.errors import ConfigError
from mqc.core.lm.engine import generate
from mqc.core.lm.gpt import GPT, GPTConfig
from mqc.core.lm.rl import group_advantages, grpo_loss
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
