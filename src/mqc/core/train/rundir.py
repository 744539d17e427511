"""Run directories: ``<parent>/<UTC timestamp>/`` with config.json, metrics.jsonl, checkpoints/ and
report.json. Checkpoints are plain dicts saved atomically and loadable with ``weights_only=True``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqc.core import atomic, paths
from mqc.core.errors import ArtifactNotFound


def new_run_dir(kind: str, save_dir: str | None) -> Path:
    """Create and return a fresh ``<save_dir or runs_dir/kind>/<UTC timestamp>`` folder."""
    run = paths.new_dir(Path(save_dir).expanduser() if save_dir else paths.runs_dir() / kind)
    (run / "checkpoints").mkdir()
    return run


def save_checkpoint(path: Path, ckpt: dict[str, Any]) -> None:
    """``torch.save`` through a temp file + rename, so a kill never leaves a torn checkpoint."""
    import torch

    with atomic.atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    atomic.append_line(run_dir / "metrics.jsonl", json.dumps(row, default=atomic._json_default))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of metrics.jsonl; a torn last line (from a kill) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop rows logged after ``step`` (a killed run logs past its last checkpoint)."""
    rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    atomic.write_text(Path(run_dir) / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir).expanduser() / "config.json"
    if not path.is_file():
        raise ArtifactNotFound(f"{path.parent}: not a training run directory (no config.json)", hint="pass the folder mqc train printed")
    return json.loads(path.read_text(encoding="utf-8"))
