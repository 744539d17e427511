"""``mqc train``: train portfolio policies (``dm``: Dirichlet GRU via GRPO/pathwise; ``sharpe``: differentiable
Sharpe; ``ppo``: SB3 PPO in the gym env)."""

from __future__ import annotations

import typer

from mqc.commands.train.dm import dm
from mqc.commands.train.kronos import kronos
from mqc.commands.train.ppo import ppo
from mqc.commands.train.sharpe import sharpe

app = typer.Typer(help="Train portfolio policies on your bars through the differentiable market.", no_args_is_help=True)
app.command("dm")(dm)
app.command("sharpe")(sharpe)
app.command("kronos")(kronos)
app.command("ppo")(ppo)
