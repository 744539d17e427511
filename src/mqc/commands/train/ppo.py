"""``mqc train ppo``: Stable-Baselines3 PPO in the portfolio env on forecast features (needs the [rl] extra)."""

from __future__ import annotations

from enum import StrEnum

import typer

from mqc.commands._options import JsonOpt, split_list
from mqc.commands.train import _common as c


class VecEnvChoice(StrEnum):
    """Values of ``--vec-env``."""

    batched = "batched"
    dummy = "dummy"
    subproc = "subproc"


class ActionMode(StrEnum):
    """Values of ``--action-mode``."""

    long = "long"
    leverage = "leverage"
    long_short = "long_short"


def _opt(flag: str, text: str) -> typer.models.OptionInfo:
    return typer.Option(None, flag, help=text)


def ppo(
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
    forecaster: str = _opt("--forecaster", "Forecaster of the feature cube (bootstrap, ewma-vol, chronos2, ...)."),
    num_samples: int = _opt("--num-samples", "Sample paths of sampling forecasters."),
    prediction_length: int = _opt("--prediction-length", "Bars ahead each forecast covers."),
    action_mode: ActionMode = _opt("--action-mode", "long, leverage or long_short (default: by --enable-shorting)."),
    episode_length: int = _opt("--episode-length", "Decisions per training episode."),
    turnover_penalty: float = _opt("--turnover-penalty", "Reward penalty per unit of turnover."),
    drawdown_penalty: float = _opt("--drawdown-penalty", "Reward penalty per unit of drawdown."),
    cvar_penalty: float = _opt("--cvar-penalty", "Penalty on forecast CVaR(5%) times exposure."),
    uncertainty_penalty: float = _opt("--uncertainty-penalty", "Penalty on forecast std times exposure."),
    num_timesteps: int = _opt("--num-timesteps", "Environment steps to train."),
    n_envs: int = _opt("--n-envs", "Parallel environments."),
    vec_env: VecEnvChoice = _opt("--vec-env", "batched (numpy, default), dummy or subproc."),
    n_steps: int = _opt("--n-steps", "Steps per env per rollout."),
    batch_size: int = _opt("--batch-size", "Minibatch size."),
    n_epochs: int = _opt("--n-epochs", "Epochs per rollout."),
    learning_rate: float = _opt("--learning-rate", "Adam learning rate."),
    gamma: float = _opt("--gamma", "Discount."),
    gae_lambda: float = _opt("--gae-lambda", "GAE lambda."),
    clip_range: float = _opt("--clip-range", "PPO clip range."),
    ent_coef: float = _opt("--ent-coef", "Entropy coefficient (start)."),
    ent_coef_final: float = _opt("--ent-coef-final", "Entropy coefficient at the end (linear anneal)."),
    vf_coef: float = _opt("--vf-coef", "Value loss coefficient."),
    max_grad_norm: float = _opt("--max-grad-norm", "Gradient clipping norm."),
    target_kl: float = _opt("--target-kl", "Stop an update's epochs past this KL."),
    net_arch: str = _opt("--net-arch", "Hidden sizes, comma-separated (e.g. 64,64)."),
    eval_freq: int = _opt("--eval-freq", "Evaluate on val every N timesteps."),
    bc_warmstart: str = _opt("--bc-warmstart", "Offline dataset (mqc data offline) to clone before PPO."),
    seed: int = c.SeedOpt,
    device: str = c.DeviceOpt,
    threads: int = c.ThreadsOpt,
    save_dir: str = c.SaveDirOpt,
    resume: str = c.ResumeOpt,
    quiet: bool = c.QuietOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Train a PPO portfolio policy on forecast features; writes <save-dir>/<UTC timestamp>/ (config, metrics,
    checkpoints, report).

    Example: mqc train ppo --symbols SP500,NASDAQ,GOOG --forecaster bootstrap --num-timesteps 20000
    """
    params = dict(locals())
    from mqc.core.gym.config import CubeConfig, EnvConfig, PPOTrainConfig

    if net_arch is not None:
        try:
            params["net_arch"] = tuple(int(v) for v in split_list(net_arch) or ())
        except ValueError as exc:
            raise typer.BadParameter(f"--net-arch takes comma-separated integers, got {net_arch!r}") from exc
    data_flags, market_flags, flags = c.command_flags(PPOTrainConfig, params)
    env_flags = c.flags_for(EnvConfig, params)
    cube_flags = {k: v for k, v in c.flags_for(CubeConfig, params).items() if k != "seed"}  # --seed is PPO's
    extra = {"env": env_flags, "cube": cube_flags}
    c.run_training(
        "ppo",
        data_flags,
        market_flags,
        cost_bps,
        flags,
        resume,
        quiet,
        json_out,
        extra_flags=extra,
        extra_options={**env_flags, **cube_flags},
    )
