"""Sampling horizon paths from a stage checkpoint, for the ``mqc-lm`` forecaster and the strategy.

A window of ``context_len + 1`` candles is turned into ``context_len`` tokens (each candle's
features read the previous close, so one extra bar comes first), ``samples`` horizons are drawn
with the KV cache, and each is decoded to features and then to OHLC prices from the last close.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mqc.core import runs
from mqc.core.errors import CheckpointError, DataError
from mqc.core.lm.engine import generate
from mqc.core.lm.gpt import GPT, GPTConfig
from mqc.core.lm.tokenizer import CandleTokenizer, candle_features, candles_from_features

KINDS = ("stage1", "stage2", "stage3", "stage4")


@dataclass
class LMPredictor:
    """A stage checkpoint ready to sample: model, tokenizer, context length and trained horizon."""

    model: GPT
    tok: CandleTokenizer
    context_len: int
    horizon: int
    ckpt: dict[str, Any]
    path: Path

    @classmethod
    def load(cls, ref: str | Path) -> LMPredictor:
        """From a run directory, a checkpoint file or ``latest``.

        Raises:
            CheckpointError: not a checkpoint of mqc stage1..4.
        """
        path = runs.resolve_checkpoint_path(ref)
        return cls.from_checkpoint(runs.read_checkpoint(path), path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], path: Path) -> LMPredictor:
        if ckpt.get("kind") not in KINDS:
            raise CheckpointError(
                f"{path}: a {ckpt.get('kind')!r} checkpoint, not a candle LM (mqc stage1..4)",
                hint="pass the run directory of mqc stage3 or mqc stage4",
            )
        try:
            model = GPT(GPTConfig(**ckpt["gpt_config"]))
            model.load_state_dict(ckpt["state_dict"])
            tok = CandleTokenizer.from_state(ckpt["tokenizer"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: damaged candle-LM checkpoint ({exc})", hint="retrain the stage") from exc
        seq = model.config.sequence_len
        horizon = int(ckpt.get("horizon", max(1, seq // 8)))
        context = int(ckpt.get("context_len", seq - horizon))
        return cls(model.eval(), tok, context, horizon, ckpt, path)

    @torch.no_grad()
    def sample(
        self, ohlc: np.ndarray, horizon: int, samples: int, seed: int, temperature: float = 1.0, top_k: int = 0
    ) -> np.ndarray:
        """Sampled future candles ``[B, samples, horizon, 4]`` (OHLC) after windows ``[B, T, 4]`` (T >= 2).

        Each window's last ``context_len`` candles are the prompt; row ``b`` draws from its own
        generator seeded ``(seed, b)``, so a window's paths do not depend on the others in the batch.
        """
        ohlc = np.asarray(ohlc, dtype=np.float64)
        if ohlc.shape[1] < 2:
            raise DataError("the LM needs at least 2 context candles")
        if ohlc.shape[1] - 1 + horizon > 4 * self.model.config.sequence_len:
            raise DataError(f"context + horizon {ohlc.shape[1] - 1 + horizon} exceeds the model's positions")
        window = ohlc[:, -(self.context_len + 1) :]
        out = np.empty((len(ohlc), samples, horizon, 4))
        for b in range(len(ohlc)):
            ids = self.tok.encode(candle_features(window[b])[1:])
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + b)
            drawn = generate(
                self.model,
                torch.from_numpy(ids[None]),
                horizon,
                group=samples,
                generator=gen,
                temperature=temperature,
                top_k=top_k,
                allowed=self.tok.spec.codes,
            )
            feats = self.tok.decode(drawn)
            out[b] = candles_from_features(feats, np.full(samples, window[b, -1, 3]))
        return out
