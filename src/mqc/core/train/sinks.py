"""Metric sinks beside metrics.jsonl, fed from the trainer harness (``harness.metrics_listener``).

``tensorboard_sink(logdir)`` writes every train and eval row of the runs trained inside it as
TensorBoard scalars (``train/<stat>``, ``val/<metric>``) in ``logdir`` (the ``tensorboard`` extra:
tensorboardX writes the event files, TensorBoard reads them). A sweep gives each trial its own
subdirectory of one folder, so ``tensorboard --logdir DIR`` shows the trials side by side.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mqc.core.errors import require
from mqc.core.train.harness import metrics_listener

_SKIP = {"kind", "step", "best", "microbatch", "windows"}


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The TensorBoard tags and values of one metrics.jsonl row (finite numbers only)."""
    prefix = "val" if row.get("kind") == "eval" else "train"
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
