"""Tiny random Kronos checkpoints saved in the published layout (config.json + model.safetensors)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tiny_kronos(tmp_path: Path) -> tuple[Path, Path]:
    """(model dir, tokenizer dir) of a tiny randomly initialised Kronos."""
    from mqc.core.forecast.kronos.presets import save_random

    return save_random(tmp_path / "kronos", "tiny", seed=3)
