"""``mqc train kronos``: the ``train dm`` trainer with Kronos path features appended.

The run directory and checkpoint are those of ``train dm`` (kind ``dm``); the checkpoint stores the
provider's settings, so ``mqc backtest --checkpoint RUN_DIR`` rebuilds the Kronos features (from the disk cache
when the bars are the same) and replays the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.forecast.kronos.config import KronosFeatureConfig
from mqc.core.forecast.kronos.features import KronosFeatureProvider
from mqc.core.market.config import MarketConfig
from mqc.core.progress import Progress
from mqc.core.train.api import train
from mqc.core.train.base import TrainResult
from mqc.core.train.config import DMTrainConfig
from mqc.core.train.dm import DMTrainer
from mqc.core.train.harness import TrainerSpec


@dataclass
class KronosTrainer:
    """A ``dm`` policy trained on candle features plus Kronos path features.

    Example:
        >>> KronosTrainer(KronosFeatureConfig(model_path="~/kronos/small", tokenizer_path="~/kronos/tok"),
        ...               DataConfig(symbols=("SPY", "TLT")), MarketConfig(), DMTrainConfig(steps=200)).fit()
    """

    kronos: KronosFeatureConfig
    data: DataConfig
    market: MarketConfig
    train: DMTrainConfig
    features: FeatureConfig | None = None
    split: SplitConfig | None = None
    panel: Any = None
    progress: Progress | None = None
    command_line: str | None = None
    sources: Mapping[str, Mapping[str, str]] | None = None

    def provider(self) -> KronosFeatureProvider:
        return KronosFeatureProvider(self.kronos, self.progress)

    def fit(self) -> TrainResult:
        """Precompute (or reuse) the Kronos features, then train exactly like ``train dm``.

        Returns:
            TrainResult of the run.

        Raises:
            ArtifactNotFound / CheckpointError: Kronos weights missing or unusable (hint: ``hf download``).
            DataError / ConfigError: as ``train_dm``.
        """
        return train(
            "kronos",
            self.data,
            self.market,
            self.train,
            feature_cfg=self.features,
            split_cfg=self.split,
            extra={"kronos": self.kronos},
            panel=self.panel,
            progress=self.progress,
            command_line=self.command_line,
            sources=self.sources,
        )


def train_kronos(
    kronos: KronosFeatureConfig, data: DataConfig, market: MarketConfig, train: DMTrainConfig, **kwargs: Any
) -> TrainResult:
    """Functional form of ``KronosTrainer(...).fit()`` (keyword arguments as its fields)."""
    return KronosTrainer(kronos, data, market, train, **kwargs).fit()


def kronos_trainer_spec() -> TrainerSpec:
    """``mqc train kronos``: the dm trainer with the Kronos provider built from the ``[kronos]`` table."""
    return TrainerSpec(
        "kronos",
        DMTrainConfig,
        DMTrainer,
        run_kind="dm",
        extra_tables=(KronosFeatureConfig,),
        providers=lambda extra, progress: [KronosFeatureProvider(extra["kronos"], progress)],
    )
