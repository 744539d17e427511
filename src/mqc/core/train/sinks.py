"""Metric sinks beside metrics.jsonl, fed from the trainer harness (``harness.metrics_listener``).

``tensorboard_sink(logdir)`` writes every train and eval row of the runs trained inside it as
TensorBoard scalars (``train/<stat>``, ``val/<metric>``) in ``logdir`` (the ``tensorboard`` extra:
tensorboardX writes the event files, TensorBoard reads them). ``wandb_sink`` logs the same values as
one W&B run (the ``wandb`` extra; offline unless the user is logged in). ``metric_sinks(cfg, name)``
opens the sinks a ``[log]`` table asks for: ``mqc train`` names the run ``<kind>-<UTC time>``, a
sweep names each trial by its key, so ``tensorboard --logdir DIR`` shows them side by side and a
sweep's trials share one W&B group.
"""

from __future__ import annotations

import contextlib
import math
import netrc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mqc.core.errors import require
from mqc.core.train.config import LogConfig
from mqc.core.train.harness import metrics_listener

_SKIP = {"kind", "step", "best", "microbatch", "windows"}


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The TensorBoard tags and values of one metrics.jsonl row (finite numbers only)."""
    kind = str(row.get("kind", "train"))
    prefix = "val" if kind == "eval" else kind
    out = {}
    for k, v in row.items():
        if k in _SKIP or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        out[f"{prefix}/{k.removeprefix('eval_')}"] = float(v)
    return out


@contextlib.contextmanager
def tensorboard_sink(logdir: str | Path | None) -> Iterator[None]:
    """Write the metrics of the runs trained in this context to TensorBoard event files in ``logdir``
    (nothing when ``logdir`` is None).

    Raises:
        DependencyMissing: tensorboardX is not installed.
    """
    if logdir is None:
        yield
        return
    writer = require("tensorboardX", "tensorboard").SummaryWriter(logdir=str(Path(logdir).expanduser()))

    def write(kind: str, row: dict[str, Any]) -> None:
        for tag, value in scalars(row).items():
            writer.add_scalar(tag, value, int(row["step"]))

    try:
        with metrics_listener(write):
            yield
    finally:
        writer.close()


def wandb_logged_in() -> bool:
    """Whether W&B credentials are present (``WANDB_API_KEY`` or an api.wandb.ai entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(mode: str) -> str:
    """The W&B mode a ``[log] wandb_mode`` means: ``auto`` follows ``WANDB_MODE`` when set, else online
    when logged in, offline otherwise (never a login prompt)."""
    if mode != "auto":
        return mode
    return os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")


@contextlib.contextmanager
def wandb_sink(
    project: str | None, *, name: str, group: str | None = None, mode: str = "auto", config: dict | None = None
) -> Iterator[None]:
    """Log the metrics of the runs trained in this context as one W&B run ``name`` of ``project``
    (nothing when ``project`` is None); finished (even on Ctrl-C or an error) when the context closes.

    Raises:
        DependencyMissing: wandb is not installed.
    """
    if project is None:
        yield
        return
    wandb = require("wandb", "wandb")
    run = wandb.init(
        project=project, name=name, group=group, mode=wandb_mode(mode), config=config or {}, reinit="create_new"
    )

    def write(kind: str, row: dict[str, Any]) -> None:
        values = scalars(row)
        if values:
            run.log({**values, "step": int(row["step"])})

    ok = False
    try:
        with metrics_listener(write):
            yield
        ok = True
    finally:
        run.finish(exit_code=0 if ok else 1)


@contextlib.contextmanager
def metric_sinks(cfg: LogConfig | None, name: str, config: dict | None = None) -> Iterator[None]:
    """Open the sinks ``cfg`` asks for around a training run named ``name`` (TensorBoard in
    ``<cfg.tensorboard>/<name>``, a W&B run ``name`` in project ``cfg.wandb``, group ``cfg.wandb_group``).

    Raises:
        DependencyMissing: a sink asked for is not installed (checked before anything trains).
    """
    if cfg is None or not cfg.active:
        yield
        return
    check_installed(cfg)
    logdir = Path(cfg.tensorboard).expanduser() / name if cfg.tensorboard is not None else None
    with (
        tensorboard_sink(logdir),
        wandb_sink(cfg.wandb, name=name, group=cfg.wandb_group, mode=cfg.wandb_mode, config=config),
    ):
        yield


def check_installed(cfg: LogConfig | None) -> None:
    """Fail before training when a sink ``cfg`` asks for is not installed.

    Raises:
        DependencyMissing: with the ``pip install`` that fixes it.
    """
    if cfg is not None and cfg.tensorboard is not None:
        require("tensorboardX", "tensorboard")
    if cfg is not None and cfg.wandb is not None:
        require("wandb", "wandb")
