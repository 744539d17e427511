"""Shared-prefix decoding: one prefill per window serves its sample paths, with unchanged results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mqc.core.forecast.kronos.layers import LayerCache, attend_shared
from mqc.core.forecast.kronos.model import Kronos, KronosTokenizer
from mqc.core.forecast.kronos.presets import MODELS, TOKENIZERS


def _grouped_ids(n_win: int, group: int, prefix: int, tail: int, vocab: int, g: torch.Generator) -> torch.Tensor:
    shared = torch.randint(0, vocab, (n_win, prefix), generator=g).repeat_interleave(group, 0)
    return torch.cat([shared, torch.randint(0, vocab, (n_win * group, tail), generator=g)], dim=1)


@pytest.mark.parametrize("n", [1, 4])
def test_attend_shared_equals_one_softmax_over_all_keys(n):
    g = torch.Generator().manual_seed(0)
    w, group, h, p, m, hd = 3, 5, 2, 7, 6, 8
    q = torch.randn(w * group, h, n, hd, generator=g)
    sk, sv = torch.randn(w, h, p, hd, generator=g), torch.randn(w, h, p, hd, generator=g)
    k, v = torch.randn(w * group, h, m, hd, generator=g), torch.randn(w * group, h, m, hd, generator=g)
    full_k = torch.cat([sk.repeat_interleave(group, 0), k], dim=2)
    full_v = torch.cat([sv.repeat_interleave(group, 0), v], dim=2)
    # query i sits at position p + m - n + i and sees every position up to its own
    mask = torch.arange(p + m)[None, :] <= (p + m - n + torch.arange(n))[:, None]
    ref = F.scaled_dot_product_attention(q, full_k, full_v, attn_mask=mask)
    torch.testing.assert_close(attend_shared(q, sk, sv, k, v, group), ref, rtol=1e-5, atol=1e-6)
    # the sharing is real: another window's prefix changes nothing in this window's rows
    sk2 = sk.clone()
    sk2[1] += 1.0
    out2 = attend_shared(q, sk2, sv, k, v, group)
    torch.testing.assert_close(out2[:group], ref[:group], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out2[group : 2 * group], ref[group : 2 * group])


@pytest.mark.parametrize(("prefix", "tail"), [(9, 4), (0, 5), (12, 1)])
def test_decode_last_equals_full_decode(prefix, tail):
    torch.manual_seed(0)
    tok = KronosTokenizer(**{**TOKENIZERS["tiny"], "n_dec_layers": 3}).eval()
    g = torch.Generator().manual_seed(1)
    s1, s2 = (_grouped_ids(2, 3, prefix, tail, 16, g) for _ in range(2))
    with torch.no_grad():
        ref = tok.decode(s1, s2)[:, -tail:]
        got = tok.decode_last(s1, s2, tail, group=3)
    assert got.shape == (6, tail, 6)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_shared_cache_steps_match_the_uncached_window():
    torch.manual_seed(0)
    model = Kronos(**MODELS["tiny"]).eval()
    g = torch.Generator().manual_seed(2)
    n_win, group, ctx, steps = 2, 3, 10, 4
    s1, s2 = (_grouped_ids(n_win, group, ctx, steps, 16, g) for _ in range(2))
    # a window's paths share its calendar too (the future stamps are the same for every path)
    stamp = torch.randint(0, 7, (n_win, ctx + steps, 5), generator=g).float().repeat_interleave(group, 0)
    sibling = torch.randint(0, 16, (n_win * group, 1), generator=g)
    with torch.no_grad():
        cache = model.new_cache(n_win, ctx, torch.device("cpu"), torch.float32)
        src = slice(0, n_win * group, group)
        model.extend(s1[src, :ctx], s2[src, :ctx], stamp[src, :ctx], cache)
        cache = cache.share(group, steps)
        assert isinstance(cache.dep, LayerCache) and cache.dep.shared_k.shape[0] == n_win
        for i in range(1, steps + 1):
            cur = ctx + i
            got = model.extend(s1[:, cur - 1 : cur], s2[:, cur - 1 : cur], stamp[:, cur - 1 : cur], cache)
            ref, last, k, v = model.window(s1[:, :cur], s2[:, :cur], stamp[:, :cur])
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(
                model.s2_logits(sibling, cache.last_hidden, cache.dep),
                model.s2_logits(sibling, last, (k, v)),
                rtol=1e-5,
                atol=1e-5,
            )
