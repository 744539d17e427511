"""``mqc train kronos``: ``train dm`` with Kronos Monte-Carlo path features appended."""

from __future__ import annotations

import typer

from mqc.commands import _options as o
from mqc.commands.train import _common as c
from mqc.commands.train.dm import Objective, Reward

# the [kronos] table (TrainerSpec.extra_tables of the kronos trainer); resumed runs keep theirs
KRONOS_MODEL = o.Flag(
    ("--kronos-model",),
    "Kronos predictor dir (config.json + model.safetensors) or a cached HF id.",
    sets="kronos.model_path",
)
KRONOS_TOKENIZER = o.Flag(
    ("--kronos-tokenizer",), "Kronos tokenizer dir or a cached HF id.", sets="kronos.tokenizer_path"
)
KRONOS_CONTEXT = o.Flag(
    ("--kronos-context",), "Context bars per feature origin (origin included).", sets="kronos.context"
)
KRONOS_HORIZONS = o.Flag(
    ("--kronos-horizons",),
    "Comma-separated path horizons in bars, e.g. 1,12,48.",
    sets="kronos.horizons",
    convert=o.split_list,
)
KRONOS_SAMPLES = o.Flag(("--kronos-sample-count",), "Sample paths per asset and bar.", sets="kronos.sample_count")
KRONOS_TEMPERATURE = o.Flag(("--kronos-temperature",), "Sampling temperature.", sets="kronos.temperature")
KRONOS_TOP_P = o.Flag(("--kronos-top-p",), "Nucleus threshold (ignored when --kronos-top-k > 0).", sets="kronos.top_p")
KRONOS_TOP_K = o.Flag(("--kronos-top-k",), "Top-k sampling (0 = off).", sets="kronos.top_k")
KRONOS_CLIP = o.Flag(("--kronos-clip",), "Clip of the z-scored inputs.", sets="kronos.clip")


@o.tables(trainer="dm")
def kronos(
    ctx: typer.Context,
    kronos_model: str = KRONOS_MODEL(),
    kronos_tokenizer: str = KRONOS_TOKENIZER(),
    kronos_context: int = KRONOS_CONTEXT(),
    kronos_horizons: str = KRONOS_HORIZONS(),
    kronos_sample_count: int = KRONOS_SAMPLES(),
    kronos_temperature: float = KRONOS_TEMPERATURE(),
    kronos_top_p: float = KRONOS_TOP_P(),
    kronos_top_k: int = KRONOS_TOP_K(),
    kronos_clip: float = KRONOS_CLIP(),
    data_root: str = o.DATA_ROOT(),
    symbols: str = o.SYMBOLS(),
    timeframe: str = o.TIMEFRAME(),
    start: str = o.START(),
    end: str = o.END(),
    max_assets: int = o.MAX_ASSETS(),
    exclude: str = o.EXCLUDE(),
    allow_altered: bool = o.ALLOW_ALTERED(),
    cost_bps: float = o.COST_BPS(),
    slippage_bps: float = o.SLIPPAGE_BPS(),
    enable_shorting: bool = o.SHORTING(),
    include_cash: bool = o.CASH(),
    lookback: int = c.LOOKBACK(),
    horizon: int = o.HORIZON(),
    batch_windows: int = c.BATCH(),
    rollout_groups: int = c.ROLLOUT_GROUPS(),
    objective: Objective = c.OBJECTIVE(),
    reward: Reward = c.REWARD(),
    kl_coef: float = c.KL_COEF(),
    ema_decay: float = c.EMA_DECAY(),
    entropy_coef: float = c.ENTROPY_COEF(),
    hidden_size: int = c.HIDDEN(),
    layers: int = c.LAYERS(),
    lr: float = c.LR(),
    steps: int = o.STEPS(),
    epochs: float = c.EPOCHS(),
    eval_interval: int = c.EVAL(),
    risk_aversion: float = c.RISK(),
    drawdown_lambda: float = c.DRAWDOWN(),
    muon: bool = c.MUON(),
    compile_: bool = o.COMPILE(),
    device: str = o.DEVICE(),
    dtype: c.DtypeChoice = o.DTYPE(),
    microbatch_windows: int = c.MICRO(),
    gradient_checkpointing: bool = c.CKPT(),
    threads: int = o.THREADS(),
    seed: int = o.SEED(),
    init_checkpoint: str = c.INIT(),
    save_dir: str = o.SAVE_DIR(),
    tensorboard: str = o.TENSORBOARD(),
    wandb: str = o.WANDB(),
    resume: str = o.RESUME(),
    quiet: bool = o.QUIET(),
    json_out: bool = o.JSON(),
) -> None:
    """Train a dm policy on candle + Kronos path features; every train dm option applies, same run directory and
    checkpoint.

    Example: mqc train kronos --symbols SPY,TLT --kronos-model ~/kronos/small --kronos-tokenizer ~/kronos/tok-base
    --kronos-horizons 1,12,48 --objective pathwise
    """
    c.run_training(ctx, "kronos", resume, quiet, json_out)
