"""``mqc train sharpe``: the differentiable-Sharpe baseline (no RL)."""

from __future__ import annotations

import typer

from mqc.commands import _options as o
from mqc.commands.train import _common as c


@o.tables(trainer="sharpe")
def sharpe(
    ctx: typer.Context,
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
    """Train a per-asset network to maximise Sharpe net of costs; same run directory as train dm.

    Example: mqc train sharpe --symbols SPY,QQQ,TLT,GLD --cost-bps 10
    """
    c.run_training(ctx, "sharpe", resume, quiet, json_out)
