"""Metric sinks beside metrics.jsonl, fed from the trainer harness (``harness.metrics_listener``).

``tensorboard_sink(logdir)`` writes every train and eval row of the runs trained inside it as
TensorBoard scalars (``train/<stat>``, ``val/<metric>``) in ``logdir`` (the ``tensorboard`` extra:
tensorboardX writes the event files, TensorBoard reads them). ``wandb_sink`` logs the same values as
one W&B run (the ``wandb`` extra; offline unless the user is logged in). ``metric_sinks(cfg, name)``
opens the sinks a ``[log]`` table asks for, one TensorBoard subfolder and one W&B run per training
run: named after its run directory (``harness.run_listener``), or ``name`` (a sweep's trial key), so
``tensorboard --logdir DIR`` shows the runs side by side and a sweep's trials share one W&B group.
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
from mqc.core.train.harness import metrics_listener, run_listener

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


class _Sinks:
    """The open TensorBoard writer and W&B run of the current training run (either may be absent)."""

    def __init__(self, cfg: LogConfig, config: dict | None) -> None:
        self.cfg, self.config = cfg, config or {}
        self.writer: Any = None
        self.run: Any = None

    def start(self, name: str, run_dir: Path | None = None) -> None:
        """Close the previous run's sinks and open this one's."""
        self.close(ok=True)
        cfg = self.cfg
        if cfg.tensorboard is not None:
            tbx = require("tensorboardX", "tensorboard")
            self.writer = tbx.SummaryWriter(logdir=str(Path(cfg.tensorboard).expanduser() / name))
        if cfg.wandb is not None:
            wandb = require("wandb", "wandb")
            config = {**self.config, **({"run_dir": str(run_dir)} if run_dir is not None else {})}
            self.run = wandb.init(
                project=cfg.wandb,
                name=name,
                group=cfg.wandb_group,
                mode=wandb_mode(cfg.wandb_mode),
                config=config,
                reinit="create_new",
            )

    def write(self, kind: str, row: dict[str, Any]) -> None:
        values = scalars(row)
        if not values:
            return
        step = int(row["step"])
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
        if self.run is not None:
            self.run.log({**values, "step": step})

    def close(self, *, ok: bool) -> None:
        writer, run, self.writer, self.run = self.writer, self.run, None, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if run is not None:
                run.finish(exit_code=0 if ok else 1)


@contextlib.contextmanager
def _open(cfg: LogConfig, name: str | None, config: dict | None) -> Iterator[None]:
    sinks = _Sinks(cfg, config)

    seen: dict[str, Path] = {}  # run name -> its run directory (two runs in one second: a suffix)

    def announced(kind: str, run_dir: Path) -> None:
        if name is not None:
            return
        run_name, n = run_dir.name, 1  # one TensorBoard folder / W&B run per run directory
        while seen.get(run_name, run_dir) != run_dir:
            n += 1
            run_name = f"{run_dir.name}-{n}"
        seen[run_name] = run_dir
        sinks.start(run_name, run_dir)

    ok = False
    try:
        if name is not None:
            sinks.start(name)
        with run_listener(announced), metrics_listener(sinks.write):
            yield
        ok = True
    finally:
        sinks.close(ok=ok)


def tensorboard_sink(logdir: str | Path | None) -> contextlib.AbstractContextManager[None]:
    """Write the metrics of the runs trained in this context to TensorBoard event files in ``logdir``
    (nothing when ``logdir`` is None).

    Raises:
        DependencyMissing: tensorboardX is not installed.
    """
    if logdir is None:
        return contextlib.nullcontext()
    path = Path(logdir).expanduser()
    return _open(LogConfig(tensorboard=str(path.parent)), path.name, None)


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


def metric_sinks(
    cfg: LogConfig | None, name: str | None = None, config: dict | None = None
) -> contextlib.AbstractContextManager[None]:
    """Open the sinks ``cfg`` asks for around training: for each run started in the context, TensorBoard
    event files in ``<cfg.tensorboard>/<run>`` and a W&B run ``<run>`` in project ``cfg.wandb``, group
    ``cfg.wandb_group`` (``<run>``: the run directory's name, or ``name`` when given: one sink for
    everything trained inside). Closed on exit, error or Ctrl-C (W&B marks the run failed then).

    Raises:
        DependencyMissing: a sink asked for is not installed (checked before anything trains).
    """
    if cfg is None or not cfg.active:
        return contextlib.nullcontext()
    check_installed(cfg)
    return _open(cfg, name, config)


def check_installed(cfg: LogConfig | None) -> None:
    """Fail before training when a sink ``cfg`` asks for is not installed.

    Raises:
        DependencyMissing: with the ``pip install`` that fixes it.
    """
    if cfg is not None and cfg.tensorboard is not None:
        require("tensorboardX", "tensorboard")
    if cfg is not None and cfg.wandb is not None:
        require("wandb", "wandb")
