"""``mqc stage1..4``: each stage reads the previous stage's checkpoint (``--in``, default its latest
run), trains on the shared harness and writes a run directory of its own (``core/runs.py``).

Every stage checkpoint holds the model, its config, the tokenizer (weights and train-split
normalisation) and the data config it was trained on, so any stage's run can forecast or trade alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mqc.core import config, paths, runs
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.errors import ArtifactNotFound, CheckpointError, ConfigError, DataError
from mqc.core.lm.config import Stage1Config, Stage2Config, Stage3Config, Stage4Config
from mqc.core.lm.data import LMData, load_lm_data, windows
from mqc.core.lm.gpt import GPTConfig
from mqc.core.lm.tokenizer import CandleTokenizer, TokenizerSpec, fit_tokenizer, tokenizer_report
from mqc.core.market.config import MarketConfig
from mqc.core.progress import Progress
from mqc.core.train.harness import TrainResult

STAGES = ("stage1", "stage2", "stage3", "stage4")
QUANTIZERS = ("vq", "bsq", "fsq")
TOKENS = "tokens.npz"
# which runs each stage's --in accepts, the default (its latest run) first
PREVIOUS = {"stage2": ("stage1",), "stage3": ("stage2", "stage1"), "stage4": ("stage3",)}


@dataclass
class StageResult:
    """A finished stage: the harness's result plus the stage's own reports."""

    train: TrainResult
    reports: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.train.to_dict(), "reports": self.reports, "source": self.source}


def read_input(stage: str, ref: str | None) -> tuple[dict[str, Any], Path]:
    """The checkpoint ``--in`` names (default: the newest run of the previous stage, see ``PREVIOUS``).

    Raises:
        ArtifactNotFound: no such run. CheckpointError: a run of a stage this one cannot start from.
    """
    accepted = PREVIOUS[stage]
    if ref is None:
        path = None
        for prev in accepted:  # stage 3 falls back to stage 1 when no stage-2 run exists
            try:
                path, _ = runs.resolve_checkpoint("latest", runs_dir=paths.runs_dir() / prev)
                break
            except ArtifactNotFound:
                continue
        if path is None:
            raise ArtifactNotFound(
                f"no {' or '.join(accepted)} run under {paths.runs_dir()}",
                hint=f"run mqc {accepted[0]} first, or pass --in RUN",
            )
    else:
        path = runs.resolve_checkpoint_path(ref)
    ckpt = runs.read_checkpoint(path)
    if ckpt.get("kind") not in accepted:
        raise CheckpointError(
            f"{path}: a {ckpt.get('kind')!r} checkpoint; mqc {stage} --in takes a {' or '.join(accepted)} run",
            hint=f"pass --in with a run of mqc {accepted[0]}",
        )
    return ckpt, path


def _threads(cfg: Any) -> None:
    """Set the torch CPU threads before any work (the tokenizer fit and evaluations run outside the harness)."""
    import torch

    torch.set_num_threads(cfg.threads)


def _stored(resume: str, cls: type, table: str) -> Any:
    """Table ``table`` of the resumed run's config.json as ``cls``: a resumed run keeps its settings."""
    where = Path(resume).expanduser()
    value = runs.stored_config(runs.config_tables(runs.read_run_config(where)), table, cls, where)
    if value is None:
        raise CheckpointError(f"{where}: config.json has no [{table}] table", hint="start a new run")
    return value


def _start(stage: str, cfg: Any, resume: str | None) -> tuple[dict[str, Any], Path | None, GPTConfig, Any, Any, Any]:
    """What stages 2-4 begin with: threads set, the input checkpoint (``--in``, or the resumed run's
    latest.pt), its model config, tokenizer, data and split."""
    _threads(cfg)
    if resume is None:
        ckpt, path = read_input(stage, cfg.in_run)
    else:
        ckpt, path = _resume_checkpoint(resume), None
    gpt_cfg, tok = _model_of(ckpt)
    data_cfg, split_cfg = _data_of(ckpt)
    return ckpt, path, gpt_cfg, tok, data_cfg, split_cfg


def _resume_checkpoint(resume: str | None) -> dict[str, Any] | None:
    return runs.read_checkpoint(runs.checkpoint_path(Path(resume).expanduser(), runs.LATEST)) if resume else None


def _gpt_config(cfg: Stage1Config) -> GPTConfig:
    vocab = cfg.vocab + 1  # + the separator
    if cfg.depth:
        return GPTConfig.from_depth(cfg.depth, cfg.seq_len, vocab)
    return GPTConfig(cfg.seq_len, vocab, cfg.layers, cfg.heads, cfg.kv_heads, cfg.embd)


def _tables(data_cfg: DataConfig, split_cfg: SplitConfig, cfg: Any, market: MarketConfig | None = None) -> dict:
    out = {"data": data_cfg, "split": split_cfg, config.table_name(type(cfg)): cfg}
    if market is not None:
        out["market"] = market
    return out


def _data_of(ckpt: dict[str, Any]) -> tuple[DataConfig, SplitConfig]:
    try:
        return DataConfig(**_tuples(ckpt["data_config"])), SplitConfig(**ckpt["split_config"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError("the checkpoint has no data config (not written by mqc stage1..4)") from exc


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _data_extra(data_cfg: DataConfig, split_cfg: SplitConfig) -> dict[str, Any]:
    return {"data_config": config.to_dict(data_cfg), "split_config": config.to_dict(split_cfg)}


def _fit_tokenizers(data: LMData, cfg: Stage1Config) -> tuple[CandleTokenizer, dict[str, Any]]:
    """Fit the chosen quantiser and the others, and report them side by side on val."""
    from mqc.core.nn.fsq import levels_for

    train = data.features("train", range(len(data.symbols)))
    val = data.features("val", range(len(data.symbols)))
    fitted, report = {}, {}
    for q in (cfg.quantizer, *(q for q in QUANTIZERS if q != cfg.quantizer)):
        if q == "bsq" and cfg.vocab & (cfg.vocab - 1):
            continue  # bsq needs 2**bits codes (Stage1Config refuses it as the chosen quantizer)
        if q == "fsq":
            try:
                levels_for(cfg.vocab)
            except ConfigError:
                continue  # no grid of small levels for this vocab (refused as the chosen quantizer)
        spec = TokenizerSpec(q, cfg.vocab, cfg.code_dim, 64, cfg.commitment, cfg.decay)
        fitted[q] = fit_tokenizer(train, spec, steps=cfg.tokenizer_steps, seed=cfg.seed)
        report[q] = tokenizer_report(fitted[q], val if len(val) else train)
    return fitted[cfg.quantizer], report


def run_stage1(
    data_cfg: DataConfig,
    split_cfg: SplitConfig,
    cfg: Stage1Config,
    *,
    progress: Progress | None = None,
    resume: str | None = None,
    command_line: str = "",
) -> StageResult:
    """Fit (or reuse) the tokenizer, then pretrain on every selected asset's train stream."""
    from mqc.core.lm.trainer import NextTokenTrainer
    from mqc.core.train.api import absolute_data_root

    if resume:  # a resumed run keeps its stored settings
        data_cfg, split_cfg = _stored(resume, DataConfig, "data"), _stored(resume, SplitConfig, "split")
        cfg = _stored(resume, Stage1Config, "stage1")
    _threads(cfg)
    data_cfg = absolute_data_root(data_cfg)  # stored in the checkpoint: later stages run from anywhere
    data = load_lm_data(data_cfg, split_cfg)
    reports: dict[str, Any] = {}
    prior = _resume_checkpoint(resume)
    if prior is not None:
        tok = CandleTokenizer.from_state(prior["tokenizer"])
    elif cfg.tokenizer:
        src = runs.read_checkpoint(runs.resolve_checkpoint_path(cfg.tokenizer))
        tok = CandleTokenizer.from_state(src["tokenizer"])
        if tok.spec.codes != cfg.vocab:
            raise CheckpointError(
                f"--tokenizer {cfg.tokenizer} has {tok.spec.codes} codes, --vocab is {cfg.vocab}",
                hint=f"pass --vocab {tok.spec.codes}, or fit a new tokenizer (drop --tokenizer)",
            )
    else:
        tok, reports["tokenizer"] = _fit_tokenizers(data, cfg)
    trainer = NextTokenTrainer(
        cfg,
        kind="stage1",
        data=data,
        tok=tok,
        gpt_config=_gpt_config(cfg),
        init_state=None,
        assets=list(range(len(data.symbols))),
        tables=_tables(data_cfg, split_cfg, cfg),
        extra={**_data_extra(data_cfg, split_cfg), "tokenizer_report": reports.get("tokenizer", {})},
        progress=progress,
        resume_dir=resume,
        command_line=command_line,
    )
    result = trainer.fit()
    if trainer.writes:
        _save_streams(result.run_dir, trainer)
    return StageResult(result, reports)


def _save_streams(run_dir: Path, trainer: Any) -> None:
    """``tokens.npz``: the train / val / test token streams (separator = vocab) beside the checkpoint
    that holds the tokenizer's config and normalisation."""
    import numpy as np

    from mqc.core import atomic

    with atomic.atomic_path(Path(run_dir) / TOKENS) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: v.numpy() for k, v in trainer.streams.items()}, symbols=np.array(trainer.data.symbols))


def _model_of(ckpt: dict[str, Any]) -> tuple[GPTConfig, CandleTokenizer]:
    try:
        return GPTConfig(**ckpt["gpt_config"]), CandleTokenizer.from_state(ckpt["tokenizer"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"not an mqc stage checkpoint ({exc})", hint="pass a run of mqc stage1..4") from exc


def run_stage2(
    cfg: Stage2Config,
    *,
    symbols: Sequence[str] = (),
    data_root: str | None = None,
    progress: Progress | None = None,
    resume: str | None = None,
    command_line: str = "",
) -> StageResult:
    """Midtrain the stage-1 model on ``symbols`` (of the stage-1 data) or on the files at ``data_root``."""
    from mqc.core.lm.trainer import NextTokenTrainer

    if resume:
        cfg = _stored(resume, Stage2Config, "stage2")
    ckpt, path, gpt_cfg, tok, data_cfg, split_cfg = _start("stage2", cfg, resume)
    syms = tuple(s.upper() for s in symbols) or tuple(ckpt.get("symbols", ()))
    if resume is None and not symbols and not data_root:
        raise ConfigError("stage 2 specialises on a subset: pass --symbols (e.g. --symbols GOOG) or --csv FILE")
    if data_root:
        data_cfg = replace(data_cfg, data_root=data_root, symbols=tuple(symbols))
    data = load_lm_data(data_cfg, split_cfg)
    assets = data.index(syms if not data_root else ())
    trainer = NextTokenTrainer(
        cfg,
        kind="stage2",
        data=data,
        tok=tok,
        gpt_config=gpt_cfg,
        init_state=ckpt["state_dict"],
        assets=assets,
        tables=_tables(data_cfg, split_cfg, cfg),
        source=str(path) if path else ckpt.get("source"),
        extra={**_data_extra(data_cfg, split_cfg)},
        progress=progress,
        resume_dir=resume,
        command_line=command_line,
    )
    before = ckpt.get("before_report") if resume else trainer.evaluate("val")
    trainer.extra["before_report"] = before
    result = trainer.fit()
    return StageResult(result, {"before": before, "after": result.val_metrics}, trainer.source)


def run_stage3(
    cfg: Stage3Config, *, progress: Progress | None = None, resume: str | None = None, command_line: str = ""
) -> StageResult:
    """Horizon-only SFT of the stage-2 (or stage-1) model on its assets' windows."""
    from mqc.core.lm.trainer import SFTTrainer, evaluate_horizon

    if resume:
        cfg = _stored(resume, Stage3Config, "stage3")
    ckpt, path, gpt_cfg, tok, data_cfg, split_cfg = _start("stage3", cfg, resume)
    data = load_lm_data(data_cfg, split_cfg)
    assets = data.index(ckpt.get("symbols"))
    wins = {s: windows(tok, data, s, assets, cfg.context_len, cfg.horizon) for s in ("train", "val", "test")}
    trainer = SFTTrainer(
        cfg,
        windows=wins,
        kind="stage3",
        data=data,
        tok=tok,
        gpt_config=gpt_cfg,
        init_state=ckpt["state_dict"],
        assets=assets,
        tables=_tables(data_cfg, split_cfg, cfg),
        source=str(path) if path else ckpt.get("source"),
        extra={**_data_extra(data_cfg, split_cfg), "context_len": cfg.context_len, "horizon": cfg.horizon},
        progress=progress,
        resume_dir=resume,
        command_line=command_line,
    )
    before = evaluate_horizon(trainer.model, tok, wins["val"], trainer.device, cfg.seed)
    result = trainer.fit()
    return StageResult(result, {"before": before, "after": result.val_metrics}, trainer.source)


def run_stage4(
    cfg: Stage4Config,
    market: MarketConfig,
    *,
    progress: Progress | None = None,
    resume: str | None = None,
    command_line: str = "",
) -> StageResult:
    """GRPO-style fine-tuning of the stage-3 model on sampled horizons from the train split."""
    from mqc.core.lm.rl import RLTrainer

    if resume:
        cfg = _stored(resume, Stage4Config, "stage4")
        market = _stored(resume, MarketConfig, "market")
    ckpt, path, gpt_cfg, tok, data_cfg, split_cfg = _start("stage4", cfg, resume)
    try:
        context_len, horizon = int(ckpt["context_len"]), int(ckpt["horizon"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: no context_len/horizon (not a stage-3 run)", hint="run mqc stage3") from exc
    data = load_lm_data(data_cfg, split_cfg)
    assets = data.index(ckpt.get("symbols"))
    wins = {s: windows(tok, data, s, assets, context_len, horizon) for s in ("train", "val", "test")}
    if len(wins["train"]) < 1:
        raise DataError("no train episodes", hint="lower --context-len/--horizon in stage 3")
    trainer = RLTrainer(
        cfg,
        windows=wins,
        market=market,
        kind="stage4",
        data=data,
        tok=tok,
        gpt_config=gpt_cfg,
        init_state=ckpt["state_dict"],
        assets=assets,
        tables=_tables(data_cfg, split_cfg, cfg, market),
        source=str(path) if path else ckpt.get("source"),
        extra={
            **_data_extra(data_cfg, split_cfg),
            "context_len": context_len,
            "horizon": horizon,
            "market": config.to_dict(market),
        },
        progress=progress,
        resume_dir=resume,
        command_line=command_line,
    )
    before = trainer.evaluate("val")
    result = trainer.fit()
    return StageResult(result, {"before": before, "after": result.val_metrics}, trainer.source)
