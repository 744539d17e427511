"""Trainers (``dm``: Dirichlet GRU via GRPO/pathwise; ``sharpe``: differentiable Sharpe), their run
directories and checkpoint loaders.

``from mqc.core.train import train_dm, train_sharpe, resume_run, TrainResult, DMTrainer, SharpeTrainer``
works; torch is imported on first use of those names, so ``mqc.core.train.config`` stays light.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "train_dm": "mqc.core.train.api",
    "train_sharpe": "mqc.core.train.api",
    "resume_run": "mqc.core.train.api",
    "TrainResult": "mqc.core.train.harness",
    "DMTrainer": "mqc.core.train.dm",
    "SharpeTrainer": "mqc.core.train.sharpe",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mqc.core.train' has no attribute {name!r}")
