"""The strategy interface: anything that turns a panel into causal target weights.

``mqc backtest`` and ``mqc trade`` only ever talk to a ``Strategy``; each checkpoint kind
(``dm``, ``sharpe``, ``kronos``, ...) registers a loader that rebuilds one from its checkpoint.

Checkpoint file (``torch.save`` of a plain dict, loadable with ``torch.load(weights_only=True)``):

    format="mqc-checkpoint", format_version=1, mqc_version, kind, state_dict, model_config (dict),
    feature_config (dict), market_config (dict), symbols (list), asset_classes (list), timeframe,
    lookback, data_fingerprint, feature_stats ({"mean": list, "std": list}), step, metrics (dict)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mqc.core.errors import ArtifactNotFound, CheckpointError
from mqc.core.market.config import MarketConfig
from mqc.core.registry import Registry

CHECKPOINT_FORMAT = "mqc-checkpoint"
CHECKPOINT_VERSION = 1


class Strategy(Protocol):
    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    lookback: int  # bars of history the first decision needs

    def target_weights(self, panel: Any) -> np.ndarray:
        """``[T, A]`` float64 target weights for ``panel`` (same symbols, in order); row t uses
        bars <= t only. Rows before the first decidable bar are 0 (all cash)."""
        ...


# Checkpoint kinds register a loader ``(checkpoint dict, path) -> Strategy``; the built-in kinds
# (dm, sharpe) register themselves when ``mqc.core.train.checkpoint_kinds`` is first imported.
_LOADERS = Registry("checkpoint kind", builtins=("mqc.core.train.checkpoint_kinds",))


def register_loader(kind: str, loader: Callable[[dict[str, Any], Path], Strategy]) -> None:
    _LOADERS.register(kind, loader)


def resolve_checkpoint_path(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """A checkpoint file, a run directory (its ``checkpoints/best.pt``), or ``latest`` (newest run).

    See ``resolve_checkpoint`` (this drops its note)."""
    return resolve_checkpoint(ref, runs_dir)[0]


# checkpoint names every run directory holds: a bare one that is not a file here names the run's own
RUN_CHECKPOINTS = ("best.pt", "latest.pt")


def run_dir_of(path: Path) -> Path | None:
    """The run directory holding ``path`` (itself, or the nearest parent with config.json and checkpoints/)."""
    for cand in (path, *path.parents):
        if (cand / "config.json").is_file() and (cand / "checkpoints").is_dir():
            return cand
    return None


def run_id(path: Path) -> str:
    """The run id of a checkpoint (its run directory's name), else the file's stem."""
    run = run_dir_of(Path(path).resolve().parent)
    return run.name if run is not None else Path(path).stem


def resolve_checkpoint(ref: str | Path, runs_dir: Path | None = None) -> tuple[Path, str | None]:
    """Resolve ``ref`` to an absolute checkpoint path, with a note when the file was looked up.

    ``ref`` is a checkpoint file, a run directory (its ``checkpoints/best.pt``), ``latest`` (the
    newest run's best.pt), or a bare ``best.pt`` / ``latest.pt`` that is not a file here: then the
    checkpoint of the run directory the working directory is in (or below, e.g. ``checkpoints/``),
    else the newest run's. The note says which file that was (None when ``ref`` named it directly).

    Raises:
        ArtifactNotFound: nothing matches.
    """
    from mqc.core import paths

    root = runs_dir or paths.runs_dir()
    if str(ref) == "latest":
        found = _newest(root, "best.pt")
        if found is None:
            raise ArtifactNotFound(f"no training runs under {root}", hint="train one first: mqc train dm")
        return found, f"latest: using {found} (the newest run under {root})"
    p = Path(ref).expanduser()
    if p.is_dir():
        for cand in (p / "checkpoints" / "best.pt", p / "best.pt", p / "checkpoints" / "latest.pt"):
            if cand.is_file():
                return cand.resolve(), None
        raise ArtifactNotFound(f"{p}: no checkpoints/best.pt in this run directory")
    if p.is_file():
        return p.resolve(), None
    if str(ref) in RUN_CHECKPOINTS:
        run = run_dir_of(Path.cwd().resolve())
        if run is not None:
            cand = run / "checkpoints" / str(ref)
            if not cand.is_file():
                raise ArtifactNotFound(f"{cand} not found (the run in the working directory has no {ref} yet)",
                                       hint="wait for its first evaluation, or pass another run directory")
            return cand, f"{ref}: using {cand} (the run in the working directory)"
        found = _newest(root, str(ref))
        if found is not None:
            return found, f"{ref}: using {found} (the newest run under {root}; the working directory is not a run directory)"
        raise ArtifactNotFound(f"checkpoint {ref} not found here, and no training runs under {root}", hint="train one first: mqc train dm")
    raise ArtifactNotFound(f"checkpoint {p} not found", hint="pass a .pt file, a run directory, 'latest' or 'best.pt'")


def _newest(root: Path, name: str) -> Path | None:
    """The newest ``<run>/checkpoints/<name>`` under ``root`` (by modification time)."""
    runs = sorted(root.glob(f"**/checkpoints/{name}"), key=lambda q: q.stat().st_mtime) if root.exists() else []
    return runs[-1].resolve() if runs else None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint dict (format, version) with ``weights_only=True``."""
    import torch

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message suggests weights_only=False, i.e. running arbitrary pickled code from
        # the file: never the right advice for a file that failed to load, so show only its first line.
        text = str(exc).strip()
        if "Weights only load failed" in text:
            reason = "not a safely loadable torch file (weights_only=True)"
        else:
            reason = text.splitlines()[0][:160] if text else "unreadable"
        raise CheckpointError(
            f"{path}: not a readable mqc checkpoint ({type(exc).__name__}: {reason})",
            hint="the file is corrupted or not written by mqc; use the run's checkpoints/best.pt or retrain",
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an mqc checkpoint (no format marker)")
    if ckpt.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {ckpt.get('format_version')!r} (mqc {ckpt.get('mqc_version')}) "
            f"is not supported by this mqc (format {CHECKPOINT_VERSION})",
            hint="retrain with this mqc version, or install the mqc version that wrote it",
        )
    return ckpt


def load_strategy(ref: str | Path) -> Strategy:
    """Rebuild the strategy stored in a checkpoint (path, run directory or ``latest``)."""
    path = resolve_checkpoint_path(ref)
    ckpt = read_checkpoint(path)
    kind = ckpt.get("kind")
    loader = _LOADERS.get(kind) if isinstance(kind, str) else None
    if loader is None:
        raise CheckpointError(f"{path}: unknown checkpoint kind {kind!r}; known: {', '.join(_LOADERS.names()) or 'none'}")
    return loader(ckpt, path)
