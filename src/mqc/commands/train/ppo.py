"""``mqc train ppo``: Stable-Baselines3 PPO in the portfolio env on forecast features (needs the [rl] extra)."""

from __future__ import annotations

from enum import StrEnum

import typer

from mqc.commands import _options as o
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


def _net_arch(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in o.split_list(value) or ())
    except ValueError as exc:
        raise typer.BadParameter(f"--net-arch takes comma-separated integers, got {value!r}") from exc


def _flag(decl: str, text: str, sets: str, **kw) -> o.Flag:
    return o.Flag((decl,), text, sets=sets, **kw)


# The [cube] table (forecast features) shared with `mqc data features` / `data offline` / `backtest --policy`
# lives in _options (FORECASTER, NUM_SAMPLES, PREDICTION_LENGTH); the [env] and [ppo] tables are this command's.
ACTION_MODE = _flag("--action-mode", "long, leverage or long_short (default: by --enable-shorting).", "env.action_mode")
EPISODE = o.EPISODE_LENGTH
TURNOVER = _flag("--turnover-penalty", "Reward penalty per unit of turnover.", "env.turnover_penalty")
DRAWDOWN = _flag("--drawdown-penalty", "Reward penalty per unit of drawdown.", "env.drawdown_penalty")
CVAR = _flag("--cvar-penalty", "Penalty on forecast CVaR(5%) times exposure.", "env.cvar_penalty")
UNCERTAINTY = _flag("--uncertainty-penalty", "Penalty on forecast std times exposure.", "env.uncertainty_penalty")
TIMESTEPS = _flag("--num-timesteps", "Environment steps to train.", "trainer.num_timesteps")
N_ENVS = _flag("--n-envs", "Parallel environments.", "trainer.n_envs")
VEC_ENV = _flag("--vec-env", "batched (numpy, default), dummy or subproc.", "trainer.vec_env")
N_STEPS = _flag("--n-steps", "Steps per env per rollout.", "trainer.n_steps")
BATCH = _flag("--batch-size", "Minibatch size.", "trainer.batch_size")
N_EPOCHS = _flag("--n-epochs", "Epochs per rollout.", "trainer.n_epochs")
LR = _flag("--learning-rate", "Adam learning rate.", "trainer.learning_rate")
GAMMA = _flag("--gamma", "Discount.", "trainer.gamma")
GAE = _flag("--gae-lambda", "GAE lambda.", "trainer.gae_lambda")
CLIP = _flag("--clip-range", "PPO clip range.", "trainer.clip_range")
ENT = _flag("--ent-coef", "Entropy coefficient (start).", "trainer.ent_coef")
ENT_FINAL = _flag("--ent-coef-final", "Entropy coefficient at the end (linear anneal).", "trainer.ent_coef_final")
VF = _flag("--vf-coef", "Value loss coefficient.", "trainer.vf_coef")
GRAD = _flag("--max-grad-norm", "Gradient clipping norm.", "trainer.max_grad_norm")
KL = _flag("--target-kl", "Stop an update's epochs past this KL.", "trainer.target_kl")
NET = _flag("--net-arch", "Hidden sizes, comma-separated (e.g. 64,64).", "trainer.net_arch", convert=_net_arch)
EVAL_FREQ = _flag("--eval-freq", "Evaluate on val every N timesteps.", "trainer.eval_freq")
BC = _flag("--bc-warmstart", "Offline dataset (mqc data offline) to clone before PPO.", "trainer.bc_warmstart")


@o.tables(trainer="ppo")
def ppo(
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
    forecaster: str = o.FORECASTER(),
    num_samples: int = o.NUM_SAMPLES(),
    prediction_length: int = o.PREDICTION_LENGTH(),
    action_mode: ActionMode = ACTION_MODE(),
    episode_length: int = EPISODE(),
    turnover_penalty: float = TURNOVER(),
    drawdown_penalty: float = DRAWDOWN(),
    cvar_penalty: float = CVAR(),
    uncertainty_penalty: float = UNCERTAINTY(),
    num_timesteps: int = TIMESTEPS(),
    n_envs: int = N_ENVS(),
    vec_env: VecEnvChoice = VEC_ENV(),
    n_steps: int = N_STEPS(),
    batch_size: int = BATCH(),
    n_epochs: int = N_EPOCHS(),
    learning_rate: float = LR(),
    gamma: float = GAMMA(),
    gae_lambda: float = GAE(),
    clip_range: float = CLIP(),
    ent_coef: float = ENT(),
    ent_coef_final: float = ENT_FINAL(),
    vf_coef: float = VF(),
    max_grad_norm: float = GRAD(),
    target_kl: float = KL(),
    net_arch: str = NET(),
    eval_freq: int = EVAL_FREQ(),
    bc_warmstart: str = BC(),
    seed: int = o.SEED(),
    device: str = o.DEVICE(),
    threads: int = o.THREADS(),
    save_dir: str = o.SAVE_DIR(),
    tensorboard: str = o.TENSORBOARD(),
    wandb: str = o.WANDB(),
    resume: str = o.RESUME(),
    quiet: bool = o.QUIET(),
    json_out: bool = o.JSON(),
) -> None:
    """Train a PPO portfolio policy on forecast features; writes <save-dir>/<UTC timestamp>/ (config, metrics,
    checkpoints, report).

    Example: mqc train ppo --symbols SP500,NASDAQ,GOOG --forecaster bootstrap --num-timesteps 20000
    """
    c.run_training(ctx, "ppo", resume, quiet, json_out)
