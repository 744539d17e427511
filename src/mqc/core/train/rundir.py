"""Run directories: ``<parent>/<UTC timestamp>/`` with config.json, metrics.jsonl, checkpoints/ and
report.json. Checkpoints are plain dicts saved atomically and loadable with ``weights_only=True``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqc.core import atomic, paths
from mqc.core.errors import ArtifactNotFound, CheckpointError


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
    atomic.append_line(run_dir / "metrics.jsonl", atomic.dumps(row))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of metrics.jsonl; a torn last line (from a kill) is skipped.

    Raises:
        CheckpointError: a line before the last one is not UTF-8 or not JSON (the file was edited
            or damaged): it names the line, since resuming rewrites the file.
    """
    path = Path(run_dir) / "metrics.jsonl"
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    lines = path.read_bytes().split(b"\n")
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = n == len(lines)  # no newline after it: possibly torn by a kill
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            if last:
                continue
            raise CheckpointError(
                f"{path}: line {n} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                hint="delete or fix that line (metrics.jsonl is the run's log; --resume rewrites it up to the checkpoint's step)",
            ) from exc
        except json.JSONDecodeError as exc:
            if last:
                continue
            raise CheckpointError(
                f"{path}: line {n} is not a JSON row ({exc.msg})",
                hint="delete or fix that line (metrics.jsonl is the run's log; --resume rewrites it up to the checkpoint's step)",
            ) from exc
        if isinstance(row, dict):
            rows.append(row)
    return rows


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop rows logged after ``step`` (a killed run logs past its last checkpoint)."""
    rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    atomic.write_text(Path(run_dir) / "metrics.jsonl", "".join(atomic.dumps(r) + "\n" for r in rows))


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.json as a dict.

    Raises:
        ArtifactNotFound: no config.json. CheckpointError: it is not UTF-8 JSON holding an object
            with a ``configs`` table (edited or damaged): resuming needs every stored setting.
    """
    path = Path(run_dir).expanduser() / "config.json"
    if not path.is_file():
        raise ArtifactNotFound(f"{path.parent}: not a training run directory (no config.json)", hint="pass the folder mqc train printed")
    hint = ("restore config.json from a copy (mqc wrote it at the run's start); without it the run cannot be resumed: "
            "start a new run, optionally with --init-checkpoint " + str(path.parent / "checkpoints" / "best.pt"))
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text (byte {exc.start + 1})", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})", hint=hint) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("configs"), dict):
        raise CheckpointError(f"{path}: not an mqc run config (no 'configs' table)", hint=hint)
    return doc
