"""The run directory and checkpoint format: the one place that writes, finds and reads them.

Every trainer (``dm``, ``sharpe``, ``kronos``; ``ppo`` and the LM stages next) writes through this
module, and ``mqc backtest``, ``--resume`` and ``--init-checkpoint`` read through it.

Run directory (``<runs dir>/<kind>/<UTC timestamp>/``, or ``<--save-dir>/<UTC timestamp>/``)::

    config.json          the resolved settings (``write_run_config``), written once at the start
    metrics.jsonl        one JSON row per log/eval step (``append_metrics``)
    checkpoints/best.pt  the checkpoint selected on val (weights only)
    checkpoints/latest.pt  the last evaluated step, with ``train_state`` for ``--resume``
    report.json          the test report, computed once at the end

Checkpoint (``torch.save`` of a plain dict, loadable with ``torch.load(weights_only=True)``),
``format="mqc-checkpoint"``, ``format_version=1``:

    format, format_version, mqc_version, kind ("dm", "sharpe"; the loader registered for it
    rebuilds the strategy), step, metrics (val metrics at that step),
    state_dict, model_config (dict, includes ``lookback``),
    feature_config (FeatureConfig fields + ``providers`` (specs) + ``names``), feature_stats
    ({"mean": list, "std": list} of the train split), market_config, train_config (the trainer's
    table), symbols, asset_classes, timeframe,
    lookback (the same value as model_config/train_config: read it with ``checkpoint_lookback``),
    data_fingerprint, data_range ([first, last] bar of the fingerprinted bars),
    split ({"train": [a, b], "val": .., "test": .., "embargo": n} bar indices),
    split_times ({segment: [first bar, last bar]} ISO timestamps),
    train_state (latest.pt only: optimizers, torch_rng, cuda_rng, best_score, best_step,
    best_metrics, last_val, plus the trainer's extra state).

Older checkpoints may lack ``train_config``, ``data_range``, ``split`` and ``split_times``; readers
fall back (``stored_split`` takes the split from config.json then).

config.json (``format="mqc-run"``, ``format_version=1``; files written before the marker have
neither key and read the same): kind, mqc_version, command_line, configs ({table: {field:
{"value", "source"}}}), symbols, asset_classes, timeframe, data_fingerprint, panel (its
``describe()``, with ``first``), split, feature_names, feature_providers, model_config, device,
total_steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

from mqc.core import atomic, paths
from mqc.core.errors import ArtifactNotFound, CheckpointError

CHECKPOINT_FORMAT = "mqc-checkpoint"
CHECKPOINT_VERSION = 1
RUN_CONFIG_FORMAT = "mqc-run"
RUN_CONFIG_VERSION = 1

CHECKPOINTS = "checkpoints"
BEST = "best.pt"
LATEST = "latest.pt"
# checkpoint names every run directory holds: a bare one that is not a file here names the run's own
RUN_CHECKPOINTS = (BEST, LATEST)
CONFIG = "config.json"
METRICS = "metrics.jsonl"
REPORT = "report.json"


# ----- layout -------------------------------------------------------------------------------------
def new_run_dir(kind: str, save_dir: str | None) -> Path:
    """Create and return a fresh ``<save_dir or runs_dir/kind>/<UTC timestamp>`` folder."""
    run = paths.new_dir(Path(save_dir).expanduser() if save_dir else paths.runs_dir() / kind)
    (run / CHECKPOINTS).mkdir()
    return run


def checkpoint_path(run_dir: Path, name: str = BEST) -> Path:
    """``<run_dir>/checkpoints/<name>``."""
    return Path(run_dir) / CHECKPOINTS / name


def run_dir_of(path: Path) -> Path | None:
    """The run directory holding ``path`` (itself, or the nearest parent with config.json and checkpoints/)."""
    for cand in (path, *path.parents):
        if (cand / CONFIG).is_file() and (cand / CHECKPOINTS).is_dir():
            return cand
    return None


def owner_dir(checkpoint: Path) -> Path:
    """The folder whose config.json belongs to ``checkpoint``: ``<run>`` for ``<run>/checkpoints/x.pt``,
    else the checkpoint's own folder (a checkpoint copied beside its config.json)."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint.parent


def run_id(path: Path) -> str:
    """The run id of a checkpoint (its run directory's name), else the file's stem."""
    run = run_dir_of(Path(path).resolve().parent)
    return run.name if run is not None else Path(path).stem


# ----- resolving a checkpoint reference ------------------------------------------------------------
def resolve_checkpoint(ref: str | Path, runs_dir: Path | None = None) -> tuple[Path, str | None]:
    """Resolve ``ref`` to an absolute checkpoint path, with a note when the file was looked up.

    ``ref`` is a checkpoint file, a run directory (its ``checkpoints/best.pt``), ``latest`` (the
    newest run's best.pt), or a bare ``best.pt`` / ``latest.pt`` that is not a file here: then the
    checkpoint of the run directory the working directory is in (or below, e.g. ``checkpoints/``),
    else the newest run's. The note says which file that was (None when ``ref`` named it directly).

    Raises:
        ArtifactNotFound: nothing matches.
    """
    root = runs_dir or paths.runs_dir()
    if str(ref) == "latest":
        found = _newest(root, BEST)
        if found is None:
            raise ArtifactNotFound(f"no training runs under {root}", hint="train one first: mqc train dm")
        return found, f"latest: using {found} (the newest run under {root})"
    p = Path(ref).expanduser()
    if p.is_dir():
        for cand in (checkpoint_path(p, BEST), p / BEST, checkpoint_path(p, LATEST)):
            if cand.is_file():
                return cand.resolve(), None
        raise ArtifactNotFound(f"{p}: no checkpoints/best.pt in this run directory")
    if p.is_file():
        return p.resolve(), None
    if str(ref) in RUN_CHECKPOINTS:
        run = run_dir_of(Path.cwd().resolve())
        if run is not None:
            cand = checkpoint_path(run, str(ref))
            if not cand.is_file():
                raise ArtifactNotFound(
                    f"{cand} not found (the run in the working directory has no {ref} yet)",
                    hint="wait for its first evaluation, or pass another run directory",
                )
            return cand, f"{ref}: using {cand} (the run in the working directory)"
        found = _newest(root, str(ref))
        if found is not None:
            return (
                found,
                f"{ref}: using {found} (the newest run under {root}; the working directory is not a run directory)",
            )
        raise ArtifactNotFound(
            f"checkpoint {ref} not found here, and no training runs under {root}",
            hint="train one first: mqc train dm",
        )
    raise ArtifactNotFound(f"checkpoint {p} not found", hint="pass a .pt file, a run directory, 'latest' or 'best.pt'")


def resolve_checkpoint_path(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """``resolve_checkpoint`` without its note."""
    return resolve_checkpoint(ref, runs_dir)[0]


def _newest(root: Path, name: str) -> Path | None:
    """The newest ``<run>/checkpoints/<name>`` under ``root`` (by modification time)."""
    runs = sorted(root.glob(f"**/{CHECKPOINTS}/{name}"), key=lambda q: q.stat().st_mtime) if root.exists() else []
    return runs[-1].resolve() if runs else None


# ----- checkpoints ---------------------------------------------------------------------------------
def make_checkpoint(kind: str, mqc_version: str, **fields: Any) -> dict[str, Any]:
    """A checkpoint dict of the documented schema: the format marker first, then ``fields``."""
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "mqc_version": mqc_version,
        "kind": kind,
        **fields,
    }


def save_checkpoint(path: Path, ckpt: dict[str, Any]) -> None:
    """``torch.save`` through a temp file + rename, so a kill never leaves a torn checkpoint."""
    import torch

    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("save_checkpoint takes a dict built by make_checkpoint")
    with atomic.atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint dict (format, version) with ``weights_only=True``.

    Raises:
        CheckpointError: unreadable, not an mqc checkpoint, or a format version this mqc cannot read.
    """
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


def checkpoint_lookback(ckpt: dict[str, Any]) -> int:
    """Bars of history per decision: the top-level ``lookback`` (every checkpoint so far), else the model's."""
    if "lookback" in ckpt:
        return int(ckpt["lookback"])
    return int(ckpt["model_config"]["lookback"])


# ----- config.json -------------------------------------------------------------------------------
def write_run_config(run_dir: Path, doc: dict[str, Any]) -> None:
    """Write ``<run_dir>/config.json`` (atomically) with the format marker first."""
    atomic.write_json(
        Path(run_dir) / CONFIG, {"format": RUN_CONFIG_FORMAT, "format_version": RUN_CONFIG_VERSION, **doc}
    )


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.json as a dict (strict: ``--resume`` needs every stored setting).

    Raises:
        ArtifactNotFound: no config.json. CheckpointError: it is not UTF-8 JSON holding an object
            with a ``configs`` table (edited or damaged), or of a newer format version.
    """
    path = Path(run_dir).expanduser() / CONFIG
    if not path.is_file():
        raise ArtifactNotFound(
            f"{path.parent}: not a training run directory (no config.json)",
            hint="pass the folder mqc train printed",
        )
    hint = (
        "restore config.json from a copy (mqc wrote it at the run's start); without it the run cannot be resumed: "
        "start a new run, optionally with --init-checkpoint " + str(checkpoint_path(path.parent, BEST))
    )
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text (byte {exc.start + 1})", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})", hint=hint
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("configs"), dict):
        raise CheckpointError(f"{path}: not an mqc run config (no 'configs' table)", hint=hint)
    if doc.get("format_version", RUN_CONFIG_VERSION) != RUN_CONFIG_VERSION:
        raise CheckpointError(
            f"{path}: run config format version {doc.get('format_version')!r} is not supported by this mqc "
            f"(format {RUN_CONFIG_VERSION})",
            hint="install the mqc version that wrote it",
        )
    return doc


def stored_table(doc: dict[str, Any], table: str, where: Path) -> dict[str, Any]:
    """The stored values of one config table of a run's config.json (strict).

    Raises:
        CheckpointError: the table is missing or damaged.
    """
    from mqc.core.config import old_names_of

    try:
        configs = doc["configs"]
        # a run written before its table was renamed stores it under the old name ([train] for [dm])
        name = next((n for n in (table, *old_names_of(table)) if n in configs), table)
        return {k: v["value"] for k, v in configs[name].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{where}: the [{table}] table is missing or damaged",
            hint="restore config.json from a copy, or start a new run",
        ) from exc


def checkpoint_run_config(checkpoint: Path) -> dict[str, Any]:
    """The config.json beside a checkpoint (see ``owner_dir``), lenient: ``{}`` when absent or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads((owner_dir(checkpoint) / CONFIG).read_text(encoding="utf-8"))
        if isinstance(doc, dict):
            return doc
    return {}


def config_tables(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A config.json's tables as plain values (lenient: ``{}`` when damaged)."""
    try:
        tables = doc["configs"]
        return {
            t: {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in vals.items()}
            for t, vals in tables.items()
        }
    except (KeyError, TypeError, AttributeError):
        return {}


def stored_config(tables: dict[str, dict[str, Any]], name: str, cls: type, where: Path) -> Any:
    """Table ``name`` rebuilt as ``cls`` (fields this version does not know are dropped); None when absent.

    Raises:
        CheckpointError: the stored values do not make a valid ``cls``.
    """
    from mqc.core.config import from_dict

    raw = tables.get(name)
    if not isinstance(raw, dict):
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return from_dict(cls, {k: v for k, v in raw.items() if k in names}, where=f"{where} [{name}]")
    except Exception as exc:  # a stored config this version cannot read
        raise CheckpointError(
            f"{where}: unreadable [{name}] config ({exc})", hint="retrain with this mqc version"
        ) from exc


def stored_split(ckpt: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's split (plus ``times``: segment timestamps, ``first``: the first bar, when
    recorded), else the one in its run's config.json ``doc``; None when neither has one."""
    split = ckpt.get("split")
    if not isinstance(split, dict):
        split = doc.get("split") if isinstance(doc.get("split"), dict) else None
    if split is None:
        return None
    split = dict(split)
    if isinstance(ckpt.get("split_times"), dict):
        split.setdefault("times", ckpt["split_times"])
    first = (doc.get("panel") or {}).get("first") if isinstance(doc.get("panel"), dict) else None
    if first:
        split.setdefault("first", first)
    return split


# ----- metrics.jsonl -----------------------------------------------------------------------------
def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """Append one row to the run's metrics.jsonl."""
    atomic.append_line(Path(run_dir) / METRICS, atomic.dumps(row))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of metrics.jsonl; a torn last line (from a kill) is skipped.

    Raises:
        CheckpointError: a line before the last one is not UTF-8 or not JSON (the file was edited
            or damaged): it names the line, since resuming rewrites the file.
    """
    path = Path(run_dir) / METRICS
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    lines = path.read_bytes().split(b"\n")
    hint = "delete or fix that line (metrics.jsonl is the run's log; --resume rewrites it up to the checkpoint's step)"
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
                hint=hint,
            ) from exc
        except json.JSONDecodeError as exc:
            if last:
                continue
            raise CheckpointError(f"{path}: line {n} is not a JSON row ({exc.msg})", hint=hint) from exc
        if isinstance(row, dict):
            rows.append(row)
    return rows


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop rows logged after ``step`` (a killed run logs past its last checkpoint)."""
    rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    atomic.write_text(Path(run_dir) / METRICS, "".join(atomic.dumps(r) + "\n" for r in rows))
