"""The candle LM as a checkpoint kind: ``mqc backtest --checkpoint STAGE4_RUN``.

At each bar t the strategy tokenises each asset's last ``context_len`` real candles (bars <= t),
samples ``SAMPLES`` horizons, decodes their mean cumulative log return and holds
``clip(mean / position_scale, -1, 1) / n_assets`` (no shorts unless the market allows them): the
same rule stage 4's ``pnl`` reward trades. A replay is exact, and a decision does not depend on later bars.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mqc.core.errors import CheckpointError, DataError
from mqc.core.lm.engine import generate
from mqc.core.lm.predict import KINDS, LMPredictor
from mqc.core.lm.rl import positions
from mqc.core.lm.tokenizer import candle_features
from mqc.core.market.config import MarketConfig
from mqc.core.nn.sampling import gumbel_noise
from mqc.core.policy.strategy import register_loader

SAMPLES = 4
CHUNK = 256  # windows per generation batch


@dataclass
class LMStrategy:
    """A stage-3/4 checkpoint replayed as causal target weights."""

    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    lookback: int
    lm: LMPredictor
    scale: float
    seed: int = 0

    @property
    def warmup(self) -> int:
        return 1  # a candle's features read the previous close

    def target_weights(self, panel: Any) -> np.ndarray:
        return self.target_weights_from(panel, 0)

    def target_weights_from(self, panel: Any, start: int) -> np.ndarray:
        """``[T, A]`` weights; rows before ``start`` (and before ``lookback`` real candles) are 0."""
        if tuple(panel.symbols) != self.symbols:
            raise DataError(f"the LM trades {', '.join(self.symbols)}, the panel holds {', '.join(panel.symbols)}")
        ohlc = np.stack([panel.field(f) for f in ("open", "high", "low", "close")], axis=-1)
        real = ~np.asarray(panel.filled, dtype=bool)
        out = np.zeros((len(panel), len(self.symbols)))
        n, h, v = self.lm.context_len, self.lm.horizon, self.lm.tok.spec.codes
        stamps = np.asarray(panel.timestamps).astype("datetime64[ns]").astype(np.int64)
        for a in range(len(self.symbols)):
            rows = np.flatnonzero(real[:, a])
            ids = self.lm.tok.encode(candle_features(ohlc[rows, a])) if len(rows) else np.zeros(0, dtype=np.int64)
            ends = [i for i in range(n, len(rows)) if rows[i] >= start]  # ids[1..i] ends at bar rows[i]
            for c in range(0, len(ends), CHUNK):
                part = ends[c : c + CHUNK]
                prompt = torch.from_numpy(np.stack([ids[i - n + 1 : i + 1] for i in part]))
                # each decision draws from its own seed (asset, bar time): the same whatever else is in the panel
                noise = torch.cat([self._noise(a, int(stamps[rows[i]]), h, v) for i in part])
                drawn = generate(self.lm.model, prompt, h, allowed=v, noise=noise, group=SAMPLES)
                cum = self.lm.tok.decode(drawn)[..., 0].sum(-1).reshape(len(part), SAMPLES).mean(1)
                out[rows[part], a] = positions(cum, self.scale, self.market.allow_short) / len(self.symbols)
        return out

    def _noise(self, asset: int, stamp: int, horizon: int, codes: int) -> torch.Tensor:
        raw = f"{self.seed},{self.symbols[asset]},{stamp}".encode()
        seed = int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little") & 0x7FFF_FFFF_FFFF_FFFF
        return gumbel_noise(torch.Generator().manual_seed(seed), (SAMPLES, horizon, codes))


def _load(ckpt: dict[str, Any], path: Path) -> LMStrategy:
    lm = LMPredictor.from_checkpoint(ckpt, path)
    if "horizon" not in ckpt or "position_scale" not in ckpt:
        raise CheckpointError(
            f"{path}: a {ckpt.get('kind')} run has no horizon to trade on",
            hint="backtest a run of mqc stage3 or mqc stage4",
        )
    market = MarketConfig(**ckpt["market"]) if isinstance(ckpt.get("market"), dict) else MarketConfig()
    return LMStrategy(
        kind=str(ckpt["kind"]),
        symbols=tuple(ckpt["symbols"]),
        timeframe=str(ckpt["timeframe"]),
        market=market,
        lookback=lm.context_len + 1,
        lm=lm,
        scale=float(ckpt["position_scale"]),
    )


for _kind in KINDS:
    register_loader(_kind, _load)
