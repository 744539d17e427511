"""One trial: an ordinary training run of any registered trainer with a sweep's overrides.

``run_trial`` is the one trial function both backends call (a local process pool, Ray); nothing
about a trial differs except where it runs. It builds the trainer's tables from the base values and
the overrides, trains through ``mqc.core.train.api.train`` (so the run directory is an ordinary one:
``mqc backtest --checkpoint`` works on it), reports each val evaluation to the Optuna trial for
pruning (``harness.eval_listener``), and returns a ``trials.jsonl`` row. It never raises for a trial
that fails: the row says so, and the sweep goes on.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OK, PRUNED, FAILED = "ok", "pruned", "failed"


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial (picklable, no panel)."""

    kind: str  # a registered trainer
    key: str  # <config key>-s<seed>: the trial's id in trials.jsonl
    config_key: str
    number: int  # order of submission (the Optuna trial number when a study is used)
    overrides: dict[str, Any]  # table.field -> value, seed included
    base: dict[str, dict[str, Any]]  # resolved table values the overrides replace
    save_dir: str  # parent of the run directory
    train_table: str = "dm"  # the trainer's own table (its seed, threads and save_dir)
    metric: str = "sharpe"  # val metric reported for pruning and selection
    study: dict[str, Any] | None = None  # {"storage", "name", "trial_id"}: report to Optuna for pruning
    command_line: str | None = None
    extra_tables: tuple[str, ...] = ()
    log: dict[str, Any] | None = None  # the sweep's [log] values (metric sinks; the trial key names its run)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)


class _Pruned(Exception):
    """Raised from the eval listener when the pruner stops the trial."""


def build_tables(spec: TrialSpec) -> dict[str, Any]:
    """The trial's config objects by table name (the trainer's tables with the overrides applied)."""
    from mqc.core import config
    from mqc.core.sweep.space import apply_overrides

    tables = config.known_tables()
    values = apply_overrides(spec.base, spec.overrides)
    if "save_dir" in config.field_types(tables[spec.train_table]):  # a trainer's table (an evaluation has none)
        values.setdefault(spec.train_table, {})["save_dir"] = spec.save_dir
    return {t: config.from_dict(tables[t], v, f"trial {spec.key} [{t}]") for t, v in values.items()}


def new_row(spec: TrialSpec, **fields: Any) -> dict[str, Any]:
    """A ``trials.jsonl`` row of ``spec`` (failed, no figures, until ``fields`` or the trial say otherwise)."""
    row: dict[str, Any] = {
        "trial": spec.key,
        "number": spec.number,
        "config": spec.config_key,
        "overrides": spec.overrides,
        "seed": spec.overrides.get(f"{spec.train_table}.seed"),
        "run_dir": None,
        "status": FAILED,
        "val": {},
        "best_step": None,
        "steps": None,
        "error": None,
    }
    row.update(fields)
    return row


def run_trial(
    spec: TrialSpec, panel: Any = None, report: Callable[[int, dict[str, float]], None] | None = None
) -> dict[str, Any]:
    """Train one trial and return its ``trials.jsonl`` row (status ok / pruned / failed).

    Args:
        spec: the trial.
        panel: the sweep's loaded panel (None: the trainer loads the data its config names).
        report: called with (step, val metrics) after every val evaluation, before the Optuna
            pruner is asked (Ray Tune's ``tune.report``: Tune's scheduler may stop the trial there).
    """
    import torch

    from mqc.core.sweep.evals import EVALS
    from mqc.core.train import api
    from mqc.core.train.config import LogConfig
    from mqc.core.train.harness import eval_listener
    from mqc.core.train.sinks import metric_sinks

    torch.set_num_threads(1)
    started = time.perf_counter()
    row = new_row(spec)
    reported: dict[str, Any] = {}
    trial = _optuna_trial(spec.study)

    def listen(kind: str, step: int, val: dict[str, float]) -> None:
        reported.update(step=step, val=val)
        if report is not None:
            report(step, val)
        if trial is not None:
            trial.report(float(val.get(spec.metric, float("nan"))), step)
            if trial.should_prune():
                raise _Pruned

    try:
        tables = build_tables(spec)
        if spec.kind in EVALS:  # an evaluation (mqc sweep backtest): no training, its val figures
            row.update(status=OK, **EVALS[spec.kind].run(spec, tables, panel))
            row["seconds"] = round(time.perf_counter() - started, 3)
            return row
        log = LogConfig(**spec.log) if spec.log else None
        with metric_sinks(log, spec.key, config=spec.overrides), eval_listener(listen):
            result = api.train(
                spec.kind,
                tables["data"],
                tables["market"],
                tables[spec.train_table],
                feature_cfg=tables.get("features"),
                split_cfg=tables.get("split"),
                extra={t: tables[t] for t in spec.extra_tables},
                panel=panel,
                command_line=spec.command_line,
                sources=spec.sources,
            )
        row.update(
            status=OK,
            run_dir=str(result.run_dir),
            val=dict(result.val_metrics),
            best_step=result.best_step,
            steps=result.steps,
        )
    except _Pruned:
        row.update(status=PRUNED, val=dict(reported.get("val", {})), steps=reported.get("step"))
    except Exception as exc:  # a trial that raises is recorded, the sweep continues
        lines = str(exc).splitlines()
        row["error"] = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]
        row["traceback"] = traceback.format_exc(limit=-6)[-4000:]
    if row["run_dir"] is None:
        row["run_dir"] = _newest_run(spec.save_dir)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def _newest_run(save_dir: str) -> str | None:
    from pathlib import Path

    d = Path(save_dir)
    runs = sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
    return str(runs[-1]) if runs else None


def _optuna_trial(study: dict[str, Any] | None) -> Any:
    """The running Optuna trial to report to (None when the sweep prunes nothing)."""
    if not study:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.load_study(
        study_name=study["name"], storage=open_storage(study["storage"]), pruner=make_pruner(study.get("pruner"))
    )
    return optuna.trial.Trial(s, study["trial_id"])


def open_storage(url: str) -> Any:
    """An Optuna storage: a ``journal:PATH`` file (the sweep directory's, safe across processes) or
    a database URL (``postgresql://...``, ``mysql://...``, ``sqlite:///...``)."""
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:") :]))
    return url


def make_pruner(name: str | None) -> Any:
    """The Optuna pruner for ``--pruner`` (none, median, asha)."""
    import optuna

    if name in (None, "none"):
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner()
    raise ValueError(f"unknown pruner {name!r}")
