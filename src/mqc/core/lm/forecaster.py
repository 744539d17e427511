"""``mqc-lm``: the candle LM as a forecaster. ``--model-path`` names a stage run (default: the newest
stage-3 run); the forecaster samples horizon paths, decodes them to prices and returns quantiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mqc.core import paths, runs
from mqc.core.errors import ArtifactNotFound
from mqc.core.forecast.base import sort_quantiles
from mqc.core.forecast.config import DEFAULT_CHRONOS_ID, ForecastConfig
from mqc.core.forecast.model import ArrayForecaster, stack_context
from mqc.core.lm.predict import LMPredictor


class LMForecaster(ArrayForecaster):
    """Quantiles of ``num_samples`` sampled paths per series (seeded per series by ``seed`` and its key)."""

    name = "mqc-lm"
    has_samples = True

    def __init__(self, config: ForecastConfig | None = None, **overrides: object) -> None:
        super().__init__(config, **overrides)
        ref = self.config.model_id
        if ref in (DEFAULT_CHRONOS_ID, "", None):
            root = paths.runs_dir() / "stage3"
            try:
                ref = str(runs.resolve_checkpoint_path("latest", runs_dir=root))
            except ArtifactNotFound as exc:
                raise ArtifactNotFound(
                    f"mqc-lm needs a trained stage run (none under {root})",
                    hint="pass --model-path RUN (a run of mqc stage3 or stage4), or run mqc stage1..3 first",
                ) from exc
        self.lm = LMPredictor.load(ref)

    @property
    def context_bars(self) -> int:
        return self.lm.context_len + 1

    def predict_arrays(
        self,
        context: Sequence[np.ndarray] | np.ndarray,
        prediction_length: int,
        quantile_levels: tuple[float, ...],
        keys: Sequence[tuple[int, ...]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        torch.set_num_threads(self.config.threads)
        x = stack_context(context, self.context_bars)
        out_q = np.empty((len(x), len(quantile_levels), prediction_length, 4))
        samples = np.empty((len(x), self.config.num_samples, prediction_length, 4))
        for b in range(len(x)):
            ohlc = x[b, :, :4]
            ohlc = ohlc[~np.isnan(ohlc).any(axis=1)]  # the left padding of short series
            key = keys[b] if keys is not None else (int(np.nan_to_num(ohlc).sum() * 1e6) & 0xFFFFFFFF,)
            seed = _mix(self.config.seed, key)
            samples[b] = self.lm.sample(ohlc[None], prediction_length, self.config.num_samples, seed)[0]
            out_q[b] = np.quantile(samples[b], quantile_levels, axis=0)
        return sort_quantiles(out_q), (samples if self.want_samples else None)


def _mix(seed: int, key: tuple[int, ...]) -> int:
    """A stable 31-bit seed from the config seed and a series key (no salted ``hash``)."""
    import hashlib

    raw = ",".join(str(int(k)) for k in (seed, *key)).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=4).digest(), "little") & 0x7FFFFFFF


def create(config: Any = None, **settings: Any) -> LMForecaster:
    """Factory registered as ``mqc-lm``."""
    return LMForecaster(config, **settings)
