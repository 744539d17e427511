"""Checkpoint loaders for ``dm`` and ``sharpe``: rebuild a ``Strategy`` that replays the policy.

``load_strategy(path)`` (mqc.core.policy.strategy) imports this module and calls the loader for the
checkpoint's ``kind``. The strategy recomputes features from the panel it is given, standardises them
with the stored train-split statistics, decodes deterministically and applies the market's
constraints, so a backtest sees exactly what training evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mqc.core import config
from mqc.core.data.config import FeatureConfig
from mqc.core.data.split import first_decision
from mqc.core.errors import CheckpointError, DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import constrain_weights
from mqc.core.market.simulator import overnight_mask
from mqc.core.policy.inputs import build_inputs
from mqc.core.policy.networks import ModelConfig, build_model, decide
from mqc.core.policy.strategy import register_loader
from mqc.core.runs import checkpoint_lookback
from mqc.core.train.providers import FeatureProvider, build_feature_provider


@dataclass
class PolicyStrategy:
    """A trained ``dm`` or ``sharpe`` policy as a ``Strategy`` (causal ``target_weights``)."""

    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    lookback: int
    model: torch.nn.Module
    feature_config: FeatureConfig
    providers: list[FeatureProvider]
    feature_stats: dict[str, list[float]]
    asset_classes: tuple[str, ...]
    path: Path | None = None
    step: int = 0
    metrics: dict[str, Any] | None = None
    data_fingerprint: str | None = None

    def _aligned(self, panel: Any) -> Any:
        if getattr(panel, "timeframe", self.timeframe) != self.timeframe:
            raise DataError(
                f"this {self.kind} policy was trained on {self.timeframe} bars, the panel holds {panel.timeframe} bars",
                hint=f"load {self.timeframe} bars (--timeframe {self.timeframe})",
            )
        if tuple(panel.symbols) == self.symbols:
            return panel
        missing = [s for s in self.symbols if s not in panel.symbols]
        if missing:
            raise DataError(
                f"the panel lacks symbol(s) {', '.join(missing)} this {self.kind} policy was trained on",
                hint=f"load exactly {','.join(self.symbols)}",
            )
        return panel.select(self.symbols)

    @property
    def warmup(self) -> int:
        """First bar at which every candle feature is defined (the backtest's embargo covers it)."""
        return self.feature_config.warmup

    def target_weights(self, panel: Any) -> np.ndarray:
        """``[T, A]`` float64 weights in the panel's column order; row t uses bars <= t only; rows
        before the first decision are 0. Extra panel symbols the policy does not know get 0."""
        own = self._aligned(panel)
        inputs, _ = build_inputs(own, self.feature_config, self.providers, stats=self.feature_stats)
        T = len(own)
        w_own = policy_target_weights(
            self.model,
            torch.as_tensor(inputs.values),
            own.timestamps,
            own.asset_classes,
            self.market,
            first_decision(inputs.warmup, self.lookback),
            T,
        )
        if tuple(panel.symbols) == self.symbols:
            return w_own
        out = np.zeros((T, len(panel.symbols)), dtype=np.float64)
        for j, sym in enumerate(self.symbols):
            out[:, list(panel.symbols).index(sym)] = w_own[:, j]
        return out


def policy_target_weights(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    timestamps: np.ndarray,
    asset_classes: tuple[str, ...],
    market: MarketConfig,
    start: int,
    stop: int,
    origin: int | None = None,
) -> np.ndarray:
    """Constrained deterministic decisions of ``model`` for bars ``start .. stop - 1``.

    The one decode both a backtest (``PolicyStrategy.target_weights``) and training's val/test
    evaluation use. The overnight caps follow ``overnight_mask(timestamps[:stop])``: the bars a
    backtest ending at ``stop`` sees (the last one always counts as overnight).

    Args:
        inputs: standardised ``[T, A, F]`` inputs (rows up to ``stop - 1`` are read).
        start: first decision bar (>= warm-up + lookback - 1).
        origin: the policy's first decidable bar (default ``start``); rows are decoded in chunks
            anchored there (see ``decide``), so any ``start`` reproduces a full replay bit for bit.
    Returns:
        float64 ``[stop, A]``; rows before ``start`` are 0 (cash).
    """
    n_assets = len(asset_classes)
    out = np.zeros((stop, n_assets), dtype=np.float64)
    if start < stop:
        was_training = model.training
        model.eval()
        w = decide(model, inputs, start, stop, origin=origin).double().cpu().numpy()
        model.train(was_training)
        out[start:] = constrain_weights(
            w, asset_classes, market, overnight_mask(np.asarray(timestamps)[:stop])[start:stop]
        )
    return out


def _load_policy(ckpt: dict[str, Any], path: Path) -> PolicyStrategy:
    try:
        mc = ModelConfig(
            **{f.name: ckpt["model_config"][f.name] for f in fields(ModelConfig) if f.name in ckpt["model_config"]}
        )
        model = build_model(mc)
        model.load_state_dict(ckpt["state_dict"])
        fc_raw = dict(ckpt["feature_config"])
        specs = fc_raw.pop("providers", [])
        fc_raw.pop("names", None)
        feature_cfg = config.from_dict(FeatureConfig, fc_raw, f"{path}: feature_config")
        market = config.from_dict(MarketConfig, ckpt["market_config"], f"{path}: market_config")
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: incomplete or mismatched {ckpt.get('kind')} checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    return PolicyStrategy(
        kind=ckpt["kind"],
        symbols=tuple(ckpt["symbols"]),
        timeframe=ckpt["timeframe"],
        market=market,
        lookback=checkpoint_lookback(ckpt),
        model=model.eval(),
        feature_config=feature_cfg,
        providers=[build_feature_provider(s) for s in specs],
        feature_stats=ckpt["feature_stats"],
        asset_classes=tuple(ckpt["asset_classes"]),
        path=path,
        step=int(ckpt.get("step", 0)),
        metrics=ckpt.get("metrics"),
        data_fingerprint=ckpt.get("data_fingerprint"),
    )


register_loader("dm", _load_policy)
register_loader("sharpe", _load_policy)


def _load_ppo(ckpt: dict[str, Any], path: Path) -> Any:
    # SB3 and gymnasium are imported only when a ppo checkpoint is loaded (the [rl] extra)
    from mqc.core.gym.replay import load_ppo_strategy

    return load_ppo_strategy(ckpt, path)


register_loader("ppo", _load_ppo)
