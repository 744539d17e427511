"""``mqc train kronos``: ``train dm`` with Kronos Monte-Carlo path features appended."""

from __future__ import annotations

import typer

from mqc.commands._options import JsonOpt, split_list
from mqc.commands.train import _common as c
from mqc.commands.train.dm import Objective, Reward


def kronos(
    kronos_model: str = typer.Option(
        None, "--kronos-model", help="Kronos predictor dir (config.json + model.safetensors) or a cached HF id."
    ),
    kronos_tokenizer: str = typer.Option(None, "--kronos-tokenizer", help="Kronos tokenizer dir or a cached HF id."),
    kronos_context: int = typer.Option(
        None, "--kronos-context", help="Context bars per feature origin (origin included)."
    ),
    kronos_horizons: str = typer.Option(
        None, "--kronos-horizons", help="Comma-separated path horizons in bars, e.g. 1,12,48."
    ),
    kronos_sample_count: int = typer.Option(None, "--kronos-sample-count", help="Sample paths per asset and bar."),
    kronos_temperature: float = typer.Option(None, "--kronos-temperature", help="Sampling temperature."),
    kronos_top_p: float = typer.Option(
        None, "--kronos-top-p", help="Nucleus threshold (ignored when --kronos-top-k > 0)."
    ),
    kronos_top_k: int = typer.Option(None, "--kronos-top-k", help="Top-k sampling (0 = off)."),
    kronos_clip: float = typer.Option(None, "--kronos-clip", help="Clip of the z-scored inputs."),
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
    """Train a dm policy on candle + Kronos path features; every train dm option applies, same run directory and
    checkpoint.

    Example: mqc train kronos --symbols SPY,TLT --kronos-model ~/kronos/small --kronos-tokenizer ~/kronos/tok-base
    --kronos-horizons 1,12,48 --objective pathwise
    """
    params = dict(locals())
    from mqc.core.train.config import DMTrainConfig

    data_flags, market_flags, flags = c.command_flags(DMTrainConfig, params)
    kronos_options = dict(
        kronos_model=kronos_model,
        kronos_tokenizer=kronos_tokenizer,
        kronos_context=kronos_context,
        kronos_horizons=kronos_horizons,
        kronos_sample_count=kronos_sample_count,
        kronos_temperature=kronos_temperature,
        kronos_top_p=kronos_top_p,
        kronos_top_k=kronos_top_k,
        kronos_clip=kronos_clip,
    )
    kronos_flags = dict(
        model_path=kronos_model,
        tokenizer_path=kronos_tokenizer,
        context=kronos_context,
        horizons=split_list(kronos_horizons),
        sample_count=kronos_sample_count,
        temperature=kronos_temperature,
        top_p=kronos_top_p,
        top_k=kronos_top_k,
        clip=kronos_clip,
    )
    # resumed like any dm run: its config.json stores the Kronos provider settings
    c.run_training(
        "kronos",
        data_flags,
        market_flags,
        cost_bps,
        flags,
        resume,
        quiet,
        json_out,
        extra_flags={"kronos": kronos_flags},
        extra_options=kronos_options,
    )
