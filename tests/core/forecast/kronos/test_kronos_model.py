"""Checkpoint layout, strict loading, error messages and the BSQ code round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mqc.core.errors import ArtifactNotFound, CheckpointError
from mqc.core.forecast.kronos.checkpoint import load_model, load_tokenizer, save_pretrained, weights_hash
from mqc.core.forecast.kronos.model import Kronos, KronosTokenizer
from mqc.core.forecast.kronos.presets import MODELS, TOKENIZERS


def test_saved_modules_load_back_strictly_with_equal_weights(tiny_kronos):
    model_dir, tok_dir = tiny_kronos
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.safetensors"]
    m, t = load_model(model_dir), load_tokenizer(tok_dir)
    torch.manual_seed(3)
    KronosTokenizer(**TOKENIZERS["tiny"])  # save_random builds the tokenizer first
    ref = Kronos(**MODELS["tiny"])
    for k, v in ref.state_dict().items():
        assert torch.equal(v, m.state_dict()[k]), k
    assert not m.training and not t.training
    assert json.loads((model_dir / "config.json").read_text())["n_layers"] == MODELS["tiny"]["n_layers"]


def test_state_dict_names_follow_the_published_layout():
    m = Kronos(**MODELS["tiny"])
    t = KronosTokenizer(**TOKENIZERS["tiny"])
    mk, tk = set(m.state_dict()), set(t.state_dict())
    for name in (
        "embedding.emb_s1.weight", "embedding.fusion_proj.bias", "time_emb.minute_embed.weight",
        "transformer.0.self_attn.rotary.inv_freq", "transformer.1.ffn.w3.weight", "norm.weight",
        "dep_layer.cross_attn.q_proj.weight", "dep_layer.cross_attn.rotary.inv_freq", "dep_layer.norm.weight",
        "head.proj_s1.weight", "head.proj_s2.bias",
    ):  # fmt: skip
        assert name in mk, name
    for name in (
        "embed.weight",
        "encoder.0.norm1.weight",
        "decoder.0.self_attn.out_proj.bias",
        "quant_embed.weight",
        "post_quant_embed_pre.weight",
        "post_quant_embed.bias",
        "tokenizer.bsq.basis",
        "tokenizer.bsq.group_basis",
    ):
        assert name in tk, name
    # n_enc_layers counts the embedding: n - 1 transformer blocks
    assert not any(k.startswith(f"encoder.{TOKENIZERS['tiny']['n_enc_layers'] - 1}.") for k in tk)
    # the dependency layer has 4 heads whatever n_heads is
    assert m.dep_layer.cross_attn.n_heads == 4


def test_fixed_temporal_embedding_variant_roundtrips(tmp_path: Path):
    cfg = {**MODELS["tiny"], "learn_te": False, "d_model": 16}
    model = Kronos(**cfg)
    save_pretrained(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert "time_emb.hour_embed.emb.weight" in loaded.state_dict()


def test_missing_and_wrong_checkpoints_fail_with_a_fix(tmp_path: Path, tiny_kronos):
    with pytest.raises(ArtifactNotFound) as err:
        load_model("NeoQuasar/Kronos-small")
    assert "hf download NeoQuasar/Kronos-small --local-dir" in err.value.hint
    assert "--model-path" in err.value.hint
    with pytest.raises(ArtifactNotFound) as err:
        load_tokenizer("NeoQuasar/Kronos-Tokenizer-base")
    assert "--tokenizer-path" in err.value.hint
    with pytest.raises(ArtifactNotFound):
        load_model(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ArtifactNotFound, match="model.safetensors"):
        load_model(tmp_path / "half")
    model_dir, tok_dir = tiny_kronos
    with pytest.raises(CheckpointError):
        load_model(tok_dir)  # a tokenizer is not a predictor


def test_weights_hash_changes_with_the_weights(tmp_path: Path, tiny_kronos):
    model_dir, _ = tiny_kronos
    h1 = weights_hash(model_dir)
    assert h1 == weights_hash(model_dir)
    torch.manual_seed(99)
    save_pretrained(Kronos(**MODELS["tiny"]), tmp_path / "other")
    assert weights_hash(tmp_path / "other") != h1


def test_bsq_codes_roundtrip_and_decode_shapes(tiny_kronos):
    _, tok_dir = tiny_kronos
    tok = load_tokenizer(tok_dir)
    g = torch.Generator().manual_seed(0)
    s1 = torch.randint(0, 16, (3, 7), generator=g)
    s2 = torch.randint(0, 16, (3, 7), generator=g)
    back1, back2 = tok.tokenizer.indices(tok.tokenizer.codes(s1, s2))
    assert torch.equal(back1, s1) and torch.equal(back2, s2)
    x = torch.randn(3, 7, 6, generator=g)
    e1, e2 = tok.encode(x)
    assert e1.shape == (3, 7) and int(e1.max()) < 16 and int(e2.max()) < 16
    assert tok.decode(e1, e2).shape == (3, 7, 6)
    # the encoder is causal: changing the last bar leaves earlier tokens unchanged
    x2 = x.clone()
    x2[:, -1] += 3.0
    f1, f2 = tok.encode(x2)
    assert torch.equal(f1[:, :-1], e1[:, :-1]) and torch.equal(f2[:, :-1], e2[:, :-1])
