"""The Python API of training: ``train`` (any registered trainer), ``train_dm``, ``train_sharpe`` and
``resume_run``.

``mqc train dm|sharpe|kronos`` and ``mqc quickstart`` call these; each loads the panel once through
``load_panel``, builds the trainer its ``TrainerSpec`` names (``mqc.core.train.harness``) and returns
its ``TrainResult``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mqc.core import config
from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.data.panel import Panel, load_panel
from mqc.core.errors import CheckpointError, ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.progress import Progress
from mqc.core.runs import CONFIG, LATEST, checkpoint_path, read_run_config, stored_table
from mqc.core.train.config import DMTrainConfig, SharpeTrainConfig
from mqc.core.train.harness import TrainResult, trainer_spec
from mqc.core.train.providers import FeatureProvider, build_feature_provider


def train(
    kind: str,
    data_cfg: DataConfig,
    market_cfg: MarketConfig,
    train_cfg: Any,
    *,
    feature_cfg: FeatureConfig | None = None,
    split_cfg: SplitConfig | None = None,
    extra: Mapping[str, Any] | None = None,
    providers: Sequence[FeatureProvider] = (),
    panel: Panel | None = None,
    progress: Progress | None = None,
    command_line: str | None = None,
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> TrainResult:
    """Train the registered trainer ``kind`` and write its run directory.

    Args:
        kind: a registered trainer (``dm``, ``sharpe``, ``kronos``; see ``trainer_kinds``).
        train_cfg: its training table (``TrainerSpec.config``).
        extra: its extra tables by table name (``TrainerSpec.extra_tables``, e.g. ``{"kronos": ...}``).
        feature_cfg, split_cfg: candle features and the time split (defaults when None).
        providers: extra causal feature columns (see ``mqc.core.policy.inputs.FeatureProvider``).
        panel: an already loaded panel (skips ``load_panel``).
        progress: a progress sink; command_line and sources are recorded in config.json.
    Raises:
        ConfigError: unknown ``kind``; otherwise as ``train_dm``.
    """
    spec = trainer_spec(kind)
    if spec.providers is not None:
        providers = [*providers, *spec.providers(dict(extra or {}), progress)]
    data_cfg = absolute_data_root(data_cfg)
    panel = panel if panel is not None else load_panel(config=data_cfg)
    trainer = spec.trainer(
        panel,
        market_cfg,
        train_cfg,
        data_cfg=data_cfg,
        feature_cfg=feature_cfg,
        split_cfg=split_cfg,
        providers=providers,
        progress=progress,
        command_line=command_line,
        sources={k: dict(v) for k, v in (sources or {}).items()},
        **({"extra": dict(extra or {})} if spec.takes_extra else {}),
    )
    return trainer.fit()


def absolute_data_root(data_cfg: DataConfig) -> DataConfig:
    """``data_cfg`` with ``data_root`` user-expanded and absolute, so the run's config.json works from any directory."""
    if data_cfg.data_root is None:
        return data_cfg
    import dataclasses

    return dataclasses.replace(data_cfg, data_root=str(Path(data_cfg.data_root).expanduser().resolve()))


def train_dm(data_cfg: DataConfig, market_cfg: MarketConfig, train_cfg: DMTrainConfig, **kwargs: Any) -> TrainResult:
    """Train a Dirichlet GRU portfolio policy (``mqc train dm``) and write its run directory.

    Args:
        data_cfg: which bars (catalog symbols or ``data_root``); ignored for loading when ``panel``
            is given, but stored in config.json.
        market_cfg: costs and constraints (``allow_short``, ``include_cash``, leverage caps).
        train_cfg: the ``[dm]`` table.
        kwargs: ``train``'s keywords: ``feature_cfg``, ``split_cfg`` (candle features and the time
            split; defaults when None), ``providers`` (extra causal feature columns, see
            ``mqc.core.policy.inputs.FeatureProvider``), ``panel`` (an already loaded panel: skips
            ``load_panel``), ``progress`` (a progress sink), ``command_line`` and ``sources``
            (recorded in config.json).
    Returns:
        TrainResult (run_dir, best checkpoint, val metrics of best.pt, test metrics computed once).
    Raises:
        DataError / ArtifactNotFound: bad or missing bars; ConfigError: invalid settings.
    """
    return train("dm", data_cfg, market_cfg, train_cfg, **kwargs)


def train_sharpe(
    data_cfg: DataConfig, market_cfg: MarketConfig, train_cfg: SharpeTrainConfig, **kwargs: Any
) -> TrainResult:
    """Train the differentiable-Sharpe baseline (``mqc train sharpe``); arguments as ``train_dm``."""
    return train("sharpe", data_cfg, market_cfg, train_cfg, **kwargs)


def resume_run(
    run_dir: str | Path, *, progress: Progress | None = None, panel: Panel | None = None, expect_kind: str | None = None
) -> TrainResult:
    """Continue a killed run from its ``checkpoints/latest.pt`` with the configs it stored.

    On CPU with the same seed, the resumed run reproduces the uninterrupted run's metrics. Every
    setting comes from the run's config.json (nothing can be changed on resume).

    Args:
        run_dir: the run directory.
        expect_kind: the trainer the caller asked for (``dm``/``sharpe``); another kind is an error.
    Raises:
        ArtifactNotFound: not a run directory; CheckpointError: no latest.pt or the data changed;
        ConfigError: the run is of another kind than ``expect_kind``.
    """
    run_dir = Path(run_dir).expanduser()
    doc = read_run_config(run_dir)
    kind = doc.get("kind")
    try:
        spec = trainer_spec(kind) if isinstance(kind, str) else None
    except ConfigError:
        spec = None
    if spec is None:
        raise CheckpointError(f"{run_dir}: unknown run kind {kind!r}")
    if expect_kind is not None and kind != expect_kind:
        raise ConfigError(
            f"{run_dir} is a {kind} run, it cannot be resumed by 'mqc train {expect_kind}'",
            hint=f"mqc train {kind} --resume {run_dir}",
        )
    if not checkpoint_path(run_dir, LATEST).is_file():
        raise CheckpointError(
            f"{run_dir}: no checkpoints/latest.pt yet (killed before the first eval)", hint="start a new run"
        )
    tcls = spec.config
    where = run_dir / CONFIG
    data_cfg = config.from_dict(DataConfig, stored_table(doc, "data", where), f"{where} [data]")
    market = config.from_dict(MarketConfig, stored_table(doc, "market", where), f"{where} [market]")
    # a trainer without candle features (ppo: the feature cube is its [cube] table) stores no [features]
    features = (
        config.from_dict(FeatureConfig, stored_table(doc, "features", where), f"{where} [features]")
        if "features" in doc["configs"]
        else None
    )
    split = config.from_dict(SplitConfig, stored_table(doc, "split", where), f"{where} [split]")
    cfg = config.from_dict(
        tcls, stored_table(doc, config.table_name(tcls), where), f"{where} [{config.table_name(tcls)}]"
    )
    panel = panel if panel is not None else load_panel(config=data_cfg)
    providers = [build_feature_provider(s) for s in doc.get("feature_providers", [])]
    extra = {}
    if spec.takes_extra:
        for cls in spec.extra_tables:
            name = config.table_name(cls)
            extra[name] = config.from_dict(cls, stored_table(doc, name, where), f"{where} [{name}]")
    trainer = spec.trainer(
        panel,
        market,
        cfg,
        data_cfg=data_cfg,
        feature_cfg=features,
        split_cfg=split,
        providers=providers,
        progress=progress,
        command_line=doc.get("command_line"),
        resume_dir=run_dir,
        **({"extra": extra} if spec.takes_extra else {}),
    )
    return trainer.fit()
