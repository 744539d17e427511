"""``mqc train dm``: the Dirichlet GRU portfolio policy (GRPO / pathwise / hybrid)."""

from __future__ import annotations

from enum import StrEnum

from mqc.commands._options import JsonOpt
from mqc.commands.train import _common as c


class Objective(StrEnum):
    """Values of ``--objective``."""

    grpo = "grpo"
    pathwise = "pathwise"
    hybrid = "hybrid"


class Reward(StrEnum):
    """Values of ``--reward``."""

    log_wealth = "log_wealth"
    sharpe = "sharpe"


def dm(
    data_root: str = c.DataRootOpt,
    symbols: str = c.SymbolsOpt,
    timeframe: str = c.TimeframeOpt,
    start: str = c.StartOpt,
    end: str = c.EndOpt,
    max_assets: int = c.MaxAssetsOpt,
    exclude: str = c.ExcludeOpt,
    allow_altered: bool = c.AllowAlteredOpt,
    cost_bps: float = c.CostOpt,
    slippage_bps: float = c.SlippageOpt,
    enable_shorting: bool = c.ShortOpt,
    include_cash: bool = c.CashOpt,
    lookback: int = c.LookbackOpt,
    horizon: int = c.HorizonOpt,
    batch_windows: int = c.BatchOpt,
    rollout_groups: int = c.RolloutGroupsOpt,
    objective: Objective = c.ObjectiveOpt,
    reward: Reward = c.RewardOpt,
    kl_coef: float = c.KlCoefOpt,
    ema_decay: float = c.EmaDecayOpt,
    entropy_coef: float = c.EntropyCoefOpt,
    hidden_size: int = c.HiddenOpt,
    layers: int = c.LayersOpt,
    lr: float = c.LrOpt,
    steps: int = c.StepsOpt,
    epochs: float = c.EpochsOpt,
    eval_interval: int = c.EvalOpt,
    risk_aversion: float = c.RiskOpt,
    drawdown_lambda: float = c.DrawdownOpt,
    muon: bool = c.MuonOpt,
    compile_: bool = c.CompileOpt,
    device: str = c.DeviceOpt,
    dtype: c.DtypeChoice = c.DtypeOpt,
    microbatch_windows: int = c.MicroOpt,
    gradient_checkpointing: bool = c.CkptOpt,
    threads: int = c.ThreadsOpt,
    seed: int = c.SeedOpt,
    init_checkpoint: str = c.InitOpt,
    save_dir: str = c.SaveDirOpt,
    resume: str = c.ResumeOpt,
    quiet: bool = c.QuietOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Train a Dirichlet GRU policy; writes <save-dir>/<UTC timestamp>/ with config, metrics, checkpoints, report.

    Example: mqc train dm --symbols SPY,QQQ,TLT,GLD --lookback 192 --steps 300
    """
    params = dict(locals())
    from mqc.core.train.config import DMTrainConfig

    data_flags, market_flags, flags = c.command_flags(DMTrainConfig, params)
    c.run_training("dm", data_flags, market_flags, cost_bps, flags, resume, quiet, json_out)
