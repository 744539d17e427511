"""``run_sweep``: validate a sweep file, run its trials on a backend, record them, choose on val,
report the choice's test figures once.

The sweep directory holds ``sweep.toml`` (the file as given), ``sweep.json`` (kind, base tables,
settings), ``trials.jsonl`` (one row per finished trial; the latest row of a trial wins),
``optuna.journal`` (the study, unless ``storage`` names a database), ``trials/<trial>/<run>/``
(ordinary run directories), ``summary.json`` / ``summary.md`` and ``test.json``. Re-running the
same sweep skips trials whose row says ok or pruned; failed trials run again.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mqc.core import atomic, config
from mqc.core.errors import ConfigError
from mqc.core.progress import NULL, Progress
from mqc.core.sweep import summary as S
from mqc.core.sweep.space import SweepSpace, config_key, parse_space, read_sweep_file, tables_of
from mqc.core.sweep.study import Study
from mqc.core.sweep.trial import FAILED, OK, PRUNED, TrialSpec
from mqc.core.train.config import LogConfig

TRIALS, SWEEP_TOML, SWEEP_JSON = "trials.jsonl", "sweep.toml", "sweep.json"
PRUNERS = ("none", "median", "asha")
SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class SweepRequest:
    """What ``mqc sweep train KIND`` asks for (base tables already resolved from the profile)."""

    kind: str
    grid_file: Path
    sweep_dir: Path
    base: dict[str, dict[str, Any]]  # table -> resolved values (data, market, features, split, trainer, extras)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    samples: int | None = None  # None: the grid; N: N configurations from the sampler
    sampler: str = "tpe"
    pruner: str = "none"
    storage: str | None = None  # an Optuna database URL; None: optuna.journal in the sweep directory
    backend: str = "local"
    address: str | None = None
    max_concurrent: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    metric: str | None = None  # val metric to select on (default: the trainer's select_metric)
    test: bool = True
    bootstrap_samples: int = 2000
    save_best: bool = False  # forecast: write the choice as each symbol's <model>/<SYMBOL>.<tf>.json (forecast tune's)
    command_line: str | None = None
    # metric sinks ([log]): one TensorBoard folder for the sweep (a subfolder per trial), one W&B group
    log: LogConfig | None = None


def _trial_log(req: SweepRequest) -> dict[str, Any] | None:
    """The ``[log]`` values every trial gets: the TensorBoard folder absolute, the W&B group the sweep's
    name unless one was set."""
    if req.log is None or not req.log.active:
        return None
    log = req.log
    if log.tensorboard is not None:
        log = replace(log, tensorboard=str(Path(log.tensorboard).expanduser().resolve()))
    if log.wandb is not None and log.wandb_group is None:
        log = replace(log, wandb_group=req.sweep_dir.name)
    return config.to_dict(log)


@dataclass
class SweepResult:
    sweep_dir: Path
    metric: str
    configs: list[dict[str, Any]]
    chosen: dict[str, Any] | None
    n_configs: int
    counts: dict[str, int]
    test: dict[str, Any] | None = None
    interrupted: bool = False
    seconds: float = 0.0
    lower: bool = False  # the metric is an error: the lowest mean was chosen
    saved: list[str] = field(default_factory=list)  # hyperparams files written (--save-best)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_dir": str(self.sweep_dir),
            "metric": self.metric,
            "n_configs": self.n_configs,
            "counts": self.counts,
            "chosen": self.chosen,
            "test": self.test,
            "interrupted": self.interrupted,
            "lower_is_better": self.lower,
            "saved": self.saved,
            "configs": self.configs,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Plan:
    space: SweepSpace
    train_table: str
    extra_tables: tuple[str, ...]
    metric: str
    lower: bool = False  # lower is better (a forecast error)
    shown: tuple[str, ...] = S.SHOWN


def plan(req: SweepRequest) -> _Plan:
    """Validate the request and its sweep file (nothing runs, nothing is written).

    Raises:
        ConfigError: unknown trainer, key, table, sampler or pruner; a bad value; an empty sweep.
    """
    from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.sweep.evals import EVALS, no_prune
    from mqc.core.train.harness import trainer_spec

    if req.save_best and req.kind != "forecast":
        raise ConfigError("save_best writes a forecaster's tuned settings: only a forecast sweep has it")
    if req.kind in EVALS:  # an evaluation sweep (backtest, forecast): its tables, no trainer
        ek = EVALS[req.kind]
        no_prune(req.kind, req.pruner)
        tables = tables_of(ek.tables())
        space = parse_space(read_sweep_file(req.grid_file), tables, req.base, str(req.grid_file), seed_table=ek.own)
        ek.check_axes([*space.axes, *space.ranges], str(req.grid_file))
        _check_samples(req, space)
        metric = ek.default_metric(req.base, space) if ek.default_metric else ek.metric
        if ek.default_metric and req.metric not in (None, metric):
            raise ConfigError(
                f"metric {req.metric!r} differs from the evaluation's metric {metric!r}",
                hint="set forecast_eval.metric (--metric of mqc sweep forecast), which the trials score",
            )
        metric = req.metric or metric
        lower = ek.lower(metric) if ek.lower else False
        return _Plan(space, ek.own, (), metric, lower, ek.shown or S.SHOWN)
    spec = trainer_spec(req.kind)
    classes = [DataConfig, MarketConfig, FeatureConfig, SplitConfig, spec.config, *spec.extra_tables]
    tables = tables_of(classes)
    train_table = config.table_name(spec.config)
    space = parse_space(read_sweep_file(req.grid_file), tables, req.base, str(req.grid_file), seed_table=train_table)
    _check_samples(req, space)
    metric = req.metric or str(req.base.get(train_table, {}).get("select_metric", "sharpe"))
    if req.metric is not None and "select_metric" in config.field_types(spec.config):
        # higher is better for every metric a trainer may select on: the same choices here
        metric = config.coerce(req.metric, config.field_types(spec.config)["select_metric"], "--metric")
    return _Plan(space, train_table, tuple(config.table_name(c) for c in spec.extra_tables), metric)


def _check_samples(req: SweepRequest, space: SweepSpace) -> None:
    if req.samples is None:
        space.grid()  # a range without --samples is an error now, not later
    elif req.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {req.samples}")
    if req.pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {req.pruner!r}; known: {', '.join(PRUNERS)}")
    if req.sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {req.sampler!r}; known: {', '.join(SAMPLERS)}")
    if req.max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be >= 1, got {req.max_concurrent}")


def read_trials(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The latest row of each trial in ``trials.jsonl`` (a torn last line is skipped)."""
    out: dict[str, dict[str, Any]] = {}
    path = sweep_dir / TRIALS
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "trial" in row:
            out[row["trial"]] = row
    return out


def _prepare_dir(req: SweepRequest, plan_: _Plan) -> None:
    """Create the sweep directory, or check that it holds this same sweep."""
    d = req.sweep_dir
    text = req.grid_file.expanduser().read_text(encoding="utf-8")
    meta = {"kind": req.kind, "base": req.base, "metric": plan_.metric, "samples": req.samples}
    stored = d / SWEEP_TOML
    if stored.is_file():
        old_meta = json.loads((d / SWEEP_JSON).read_text(encoding="utf-8")) if (d / SWEEP_JSON).is_file() else {}
        same_base = json.dumps(old_meta.get("base"), sort_keys=True, default=str) == json.dumps(
            json.loads(json.dumps(req.base, default=str)), sort_keys=True
        )
        if stored.read_text(encoding="utf-8") != text or old_meta.get("kind") != req.kind or not same_base:
            raise ConfigError(
                f"{d} holds another sweep (its sweep file, trainer or base settings differ)",
                hint="pass another --sweep-dir, or re-run the stored sweep unchanged to resume it",
            )
    d.mkdir(parents=True, exist_ok=True)
    atomic.write_text(stored, text)
    atomic.write_json(d / SWEEP_JSON, {**meta, "settings": _settings(req)})


def _settings(req: SweepRequest) -> dict[str, Any]:
    return {
        "backend": req.backend,
        "max_concurrent": req.max_concurrent,
        "sampler": req.sampler if req.samples else "grid",
        "pruner": req.pruner,
        "storage": "journal" if req.storage is None else "database",
        "command_line": req.command_line,
    }


def run_sweep(req: SweepRequest, *, progress: Progress | None = None, panel: Any = None) -> SweepResult:
    """Run (or resume) a sweep and write its directory.

    Args:
        req: the sweep.
        progress: a progress sink (trials done, running, failed, best so far).
        panel: an already loaded panel (default: loaded once here from ``[data]``, unless the sweep
            varies a ``data.*`` key, then each trial loads its own).
    Returns:
        SweepResult (the table, the choice on val, its test figures computed once).
    Raises:
        ConfigError: a bad sweep file or setting (before anything runs); DependencyMissing: optuna or
            ray not installed. ``KeyboardInterrupt`` carries the table so far as ``exc.sweep_result``.
    """
    started = time.perf_counter()
    progress = progress or NULL
    plan_ = plan(req)
    space = plan_.space
    from mqc.core.errors import require

    if req.samples is not None or req.pruner != "none" or req.storage:
        require("optuna", "sweep")
    from mqc.core.train.sinks import check_installed

    check_installed(req.log)
    log = _trial_log(req)
    _prepare_dir(req, plan_)
    rows = read_trials(req.sweep_dir)
    finished = {k for k, r in rows.items() if r.get("status") in (OK, PRUNED)}
    seed_key = space.seed_key

    def entries(overrides: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        ck = config_key(overrides)
        return [(f"{ck}-s{s}", ck, {**overrides, seed_key: s}) for s in space.seeds]

    queue: deque[tuple[str, str, dict[str, Any]]] = deque()
    if req.samples is None:
        for cfg in space.grid():
            queue.extend(e for e in entries(cfg) if e[0] not in finished)
    else:  # configurations sampled before: finish their seeds first
        known: dict[str, dict[str, Any]] = {}
        for r in rows.values():
            known.setdefault(r["config"], {k: v for k, v in r["overrides"].items() if k != seed_key})
        for cfg in known.values():
            queue.extend(e for e in entries(cfg) if e[0] not in finished)
    sampled = len({r["config"] for r in rows.values()}) if req.samples is not None else 0
    total = len(queue) + (max(0, req.samples - sampled) * len(space.seeds) if req.samples is not None else 0)

    # seeded by the trials so far, so a resumed search does not replay the samples it already ran
    study = (
        Study(req, plan_, seed=len(rows)) if (req.samples is not None or req.pruner != "none" or req.storage) else None
    )
    from mqc.core.sweep.evals import EVALS

    loader = EVALS[req.kind].load if req.kind in EVALS else None
    if panel is None and loader is not None:  # the kind's own data (forecast: each symbol's frame)
        panel = loader(req.base, space)
    elif panel is None and not any(k.startswith("data.") for k in (*space.axes, *space.ranges)):
        from mqc.core.data.config import DataConfig
        from mqc.core.data.panel import load_panel
        from mqc.core.train.api import absolute_data_root

        data = config.from_dict(DataConfig, {**req.base["data"], **_data_fixed(space)}, "sweep [data]")
        panel = load_panel(config=absolute_data_root(data))
    from mqc.core.sweep.backends import make_backend
    from mqc.core.sweep.ray_tune import tune_settings

    backend = make_backend(
        req.backend,
        req.max_concurrent,
        panel,
        address=req.address,
        cpus_per_trial=req.cpus_per_trial,
        gpus_per_trial=req.gpus_per_trial,
        **(tune_settings(req, plan_) if req.backend == "ray" else {}),
    )
    base = {t: dict(v) for t, v in req.base.items()}
    if "threads" in config.field_types(config.known_tables()[plan_.train_table]):  # 1 torch thread per trial
        base.setdefault(plan_.train_table, {})["threads"] = max(1, int(req.cpus_per_trial))
    counts = {"done": 0, "failed": 0, "pruned": 0, "running": 0, "skipped": len(finished)}
    best: list[float] = []
    number = len(rows)
    progress.start(total, f"sweep {req.kind} -> {req.sweep_dir} ({backend.name}, {req.max_concurrent} at a time)")
    if finished:
        progress.log(f"resuming: {len(finished)} finished trials skipped")

    def submit(key: str, ck: str, overrides: dict[str, Any], trial: Any = None) -> None:
        nonlocal number
        spec = TrialSpec(
            kind=req.kind,
            key=key,
            config_key=ck,
            number=number,
            overrides=overrides,
            base=base,
            save_dir=str(req.sweep_dir / "trials" / key),
            train_table=plan_.train_table,
            metric=plan_.metric,
            study=study.open(key, trial) if study is not None else None,
            command_line=req.command_line,
            extra_tables=plan_.extra_tables,
            log=log,
            sources=_sources(req.sources, overrides),
        )
        number += 1
        submitted.add(key)
        backend.submit(spec)

    interrupted = False
    submitted: set[str] = set()
    repeats = 0
    try:
        while queue or backend.running() or (req.samples is not None and sampled < req.samples):
            while backend.running() < req.max_concurrent:
                if queue:
                    submit(*queue.popleft())
                elif req.samples is not None and sampled < req.samples and study is not None:
                    trial, cfg = study.sample()
                    first, *rest = entries(cfg)
                    if first[0] in finished or first[0] in submitted:  # the sampler repeated a configuration
                        study.repeat(trial, rows.get(first[0]), plan_.metric)
                        repeats += 1
                        if repeats > 50:  # the space is exhausted (a small categorical search)
                            progress.log(f"the sampler keeps repeating configurations: stopping at {sampled}")
                            sampled = req.samples
                        continue
                    sampled += 1
                    submit(*first, trial=trial)
                    queue.extend(e for e in rest if e[0] not in finished)
                else:
                    break
            if backend.running() != counts["running"]:
                counts["running"] = backend.running()
                progress.advance(0, running=counts["running"])
            for spec, row in backend.wait(0.25):
                row["duration"] = row.get("seconds")
                atomic.append_line(
                    req.sweep_dir / TRIALS, atomic.dumps({k: v for k, v in row.items() if k != "traceback"})
                )
                if row.get("traceback"):
                    atomic.append_line(req.sweep_dir / "errors.log", f"== {row['trial']}\n{row['traceback']}")
                rows[row["trial"]] = row
                if study is not None:
                    study.tell(spec.key, row, plan_.metric)
                counts["done"] += 1
                counts["failed"] += row["status"] == FAILED
                counts["pruned"] += row["status"] == PRUNED
                if row["status"] == OK and plan_.metric in row["val"]:
                    best.append(float(row["val"][plan_.metric]))
                counts["running"] = backend.running()
                progress.advance(
                    1,
                    running=counts["running"],
                    failed=counts["failed"],
                    pruned=counts["pruned"],
                    best=(min(best) if plan_.lower else max(best)) if best else None,
                )
                if row["status"] == FAILED:
                    progress.log(f"trial {row['trial']} failed: {row.get('error')}")
    except KeyboardInterrupt as exc:
        interrupted = True
        backend.close(cancel=True)
        progress.finish()
        exc.sweep_result = _finish(req, plan_, rows, counts, started, interrupted=True, panel=panel)  # type: ignore[attr-defined]
        raise
    finally:
        if not interrupted:
            backend.close()
            progress.finish()
    return _finish(req, plan_, rows, counts, started, interrupted=False, panel=panel)


def _finish(
    req: SweepRequest,
    plan_: _Plan,
    rows: dict[str, dict[str, Any]],
    counts: dict[str, int],
    started: float,
    *,
    interrupted: bool,
    panel: Any = None,
) -> SweepResult:
    configs = S.summarize(rows.values(), plan_.metric, plan_.space.seed_key, lower=plan_.lower, shown=plan_.shown)
    chosen = S.select(configs, plan_.metric)
    n_configs = len(configs)
    result = SweepResult(
        sweep_dir=req.sweep_dir,
        metric=plan_.metric,
        configs=configs,
        chosen=chosen,
        n_configs=n_configs,
        counts=dict(counts),
        interrupted=interrupted,
        lower=plan_.lower,
    )
    best_key = chosen["config"] if chosen else None
    atomic.write_text(req.sweep_dir / S.SUMMARY_MD, S.markdown(configs, plan_.metric, best_key))
    # the table is on disk before the test report runs: a failing backtest loses no trial
    atomic.write_json(req.sweep_dir / S.SUMMARY_JSON, result.to_dict())
    if chosen is not None and req.test and not interrupted:
        from mqc.core.sweep.evals import EVALS, tester

        backtest = (
            tester(req.kind, req.base, chosen["overrides"], plan_.space.seed_key, panel, req.bootstrap_samples)
            if req.kind in EVALS
            else None
        )
        ek = EVALS.get(req.kind)
        result.test = S.test_once(
            chosen,
            n_configs,
            req.sweep_dir,
            bootstrap_samples=req.bootstrap_samples,
            backtest=backtest,
            shown=plan_.shown,
            **({"note": ek.note} if ek else {}),
        )
        if req.save_best:
            from mqc.core.sweep import forecast_kind

            result.saved = forecast_kind.save_best(
                req.base, plan_.space.seed_key, rows, result.test, plan_.metric, panel, req.sweep_dir
            )
    result.seconds = time.perf_counter() - started
    atomic.write_json(req.sweep_dir / S.SUMMARY_JSON, result.to_dict())
    return result


def _sources(base: dict[str, dict[str, str]], overrides: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Where each value of a trial came from (config.json): the base's sources, ``sweep`` for overrides."""
    out = {t: dict(v) for t, v in base.items()}
    for k in overrides:
        t, n = k.split(".", 1)
        out.setdefault(t, {})[n] = "sweep"
    return out


def _data_fixed(space: SweepSpace) -> dict[str, Any]:
    return {k.split(".", 1)[1]: v for k, v in space.fixed.items() if k.startswith("data.")}
