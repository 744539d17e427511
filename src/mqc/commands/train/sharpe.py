"""``mqc train sharpe``: the differentiable-Sharpe baseline (no RL)."""

from __future__ import annotations

from mqc.commands._options import JsonOpt
from mqc.commands.train import _common as c


def sharpe(
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
    """Train a per-asset network to maximise Sharpe net of costs; same run directory as train dm.

    Example: mqc train sharpe --symbols SPY,QQQ,TLT,GLD --cost-bps 10
    """
    params = dict(locals())
    from mqc.core.train.config import SharpeTrainConfig

    data_flags, market_flags, flags = c.command_flags(SharpeTrainConfig, params)
    c.run_training("sharpe", data_flags, market_flags, cost_bps, flags, resume, quiet, json_out)
