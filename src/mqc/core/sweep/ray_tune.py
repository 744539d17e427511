"""``--backend ray``: a sweep's trials as Ray Tune trials of one function trainable.

The driver's loop (``runner.py``) stays the source of configurations (the grid, or the sweep's
Optuna study, so a search draws the same configurations on both backends) and does the bookkeeping;
Tune runs the trials:

- the trainable is ``tune_trial``, a wrapper of ``trial.run_trial`` (the one trial function of both
  backends) that reports every val evaluation with ``tune.report``, so Tune's ASHA or median-stopping
  scheduler (``--pruner``) stops a bad trial from its reported val metrics;
- ``tune.with_parameters`` puts the panel into the object store once; ``tune.with_resources`` gives
  each trial ``cpus_per_trial`` / ``gpus_per_trial``; actors are reused between trials, so a slot
  imports torch once;
- a mailbox actor carries trial specs from the driver to a ``Searcher`` that hands them to Tune, and
  finished trials back (a ``Callback``), so it works the same whether the Tune controller runs in this
  process (a local instance, ``auto``, ``HOST:PORT``) or on the cluster (a ``ray://`` client, where
  ``Tuner.fit`` runs remotely).

Run directories are written where a trial runs, under the sweep directory (shared storage on a
cluster); Tune's own experiment files go to ``<sweep dir>/tune/``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqc.core.sweep.trial import FAILED, PRUNED, TrialSpec, run_trial

if TYPE_CHECKING:
    from mqc.core.sweep.runner import SweepRequest, _Plan

ROW = "mqc_row"  # the trial's trials.jsonl row (JSON) in its last Tune result
VAL = "val_"  # prefix of the val metrics in Tune results (the scheduler's metric is VAL + metric)
_DONE = "FINISHED"
# Tune and trial-actor settings: no per-trial logger files (the run directory has metrics.jsonl), no
# check that a failed trial's last result names the metric, trials keep the driver's working directory
TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic reporter: verbose=0 prints nothing (the sweep has its own progress)
}


def _val(val: dict[str, Any]) -> dict[str, float]:
    return {
        VAL + k: float(v)
        for k, v in val.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def tune_trial(config: dict[str, Any], panel: Any = None) -> dict[str, Any]:
    """The Tune trainable: ``run_trial`` with every val evaluation reported to Tune.

    When Tune's scheduler stops the trial, ``tune.report`` does not return (the trial thread exits);
    otherwise the last result carries the trial's row.
    """
    from ray import tune

    def report(step: int, val: dict[str, float]) -> None:
        tune.report({"step": int(step), **_val(val)})

    row = run_trial(config["spec"], panel, report=report)
    return {"step": int(row.get("steps") or 0), **_val(row.get("val") or {}), ROW: json.dumps(row, default=str)}


class Mailbox:
    """An (asyncio) actor between the driver and the Tune controller: specs to run, finished trials back."""

    def __init__(self) -> None:
        self.todo: deque[tuple[str, TrialSpec]] = deque()
        self.done: list[dict[str, Any]] = []
        self.closed = False
        self.stopped = False
        self._news: Any = None  # an asyncio.Event, made in the actor's event loop

    def _event(self) -> Any:
        import asyncio

        if self._news is None:
            self._news = asyncio.Event()
        return self._news

    async def put(self, key: str, spec: TrialSpec) -> None:
        self.todo.append((key, spec))
        self._event().set()

    async def take(self, wait: float = 0.0) -> tuple[str, TrialSpec] | str | None:
        """The next spec; with ``wait``, up to that many seconds for one to come (Tune is idle)."""
        import asyncio

        if not self.todo and not self.closed and wait > 0:
            ev = self._event()
            ev.clear()
            try:
                await asyncio.wait_for(ev.wait(), wait)
            except TimeoutError:
                pass
        if self.todo:
            return self.todo.popleft()
        return _DONE if self.closed else None

    async def finish(self, item: dict[str, Any]) -> None:
        self.done.append(item)

    async def collect(self) -> list[dict[str, Any]]:
        out, self.done = self.done, []
        return out

    async def close(self, stop: bool) -> None:
        self.closed = True
        if stop:
            self.stopped = True
            self.todo.clear()
        self._event().set()

    async def is_stopped(self) -> bool:
        return self.stopped


def _dirname(trial: Any) -> str:
    return f"{trial.config.get('key', 'trial')}-{trial.trial_id}"


def _tune_classes() -> tuple[type, type, type]:
    """The Searcher, Callback and Stopper over a mailbox (defined here: ray.tune imports in seconds)."""
    import ray
    from ray.tune import Callback
    from ray.tune.search import Searcher
    from ray.tune.stopper import Stopper

    class MailboxSearcher(Searcher):
        """Hands Tune the specs the driver submitted (configurations come from the sweep, not Tune)."""

        def __init__(self, box: Any) -> None:
            super().__init__()
            self.box = box
            self.live: set[str] = set()

        def set_search_properties(self, metric: Any, mode: Any, config: Any, **spec: Any) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            # with no trial live, Tune polls the searcher once a second: wait here for the driver's
            # next spec instead (with trials live, never block the controller's loop)
            item = ray.get(self.box.take.remote(0.0 if self.live else 30.0))
            if item is None:
                return None
            if item == _DONE:
                return Searcher.FINISHED
            key, spec = item
            self.live.add(trial_id)
            return {"key": key, "spec": spec}

        def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
            self.live.discard(trial_id)

    class MailboxCallback(Callback):
        """Sends each finished trial (completed, stopped by the scheduler, or errored) to the driver."""

        def __init__(self, box: Any) -> None:
            self.box = box

        def _send(self, trial: Any, error: str | None) -> None:
            res = trial.last_result or {}
            keep = {k: v for k, v in res.items() if k in (ROW, "step", "time_total_s") or k.startswith(VAL)}
            self.box.finish.remote({"key": trial.config.get("key"), "result": keep, "error": error})

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._send(trial, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            where = getattr(trial, "error_file", None) or getattr(trial, "path", "")
            self._send(trial, f"the Ray Tune trial died or raised (see {where})")

    class CancelStopper(Stopper):
        """Stops every trial once the driver cancels (Ctrl-C); asks the mailbox at most twice a second."""

        def __init__(self, box: Any) -> None:
            self.box = box
            self._next = 0.0
            self._stop = False

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            now = time.monotonic()
            if not self._stop and now >= self._next:
                self._next = now + 0.5
                self._stop = bool(ray.get(self.box.is_stopped.remote()))
            return self._stop

    return MailboxSearcher, MailboxCallback, CancelStopper


def tune_settings(req: SweepRequest, plan_: _Plan) -> dict[str, Any]:
    """What Ray Tune's scheduler needs: the metric, the pruner, the most steps a trial trains (ASHA's
    ``max_t``) and the first evaluation step (its grace period), from the trainer table's ``steps`` and
    ``eval_interval`` over the whole sweep."""

    def values(name: str) -> list[float]:
        key = f"{plan_.train_table}.{name}"
        sp = plan_.space
        if key in sp.fixed:
            return [sp.fixed[key]]
        if key in sp.axes:
            return list(sp.axes[key])
        if key in sp.ranges:
            return [sp.ranges[key].low, sp.ranges[key].high]
        v = req.base.get(plan_.train_table, {}).get(name)
        return [v] if isinstance(v, (int, float)) else []

    steps, evals = values("steps"), values("eval_interval")
    return {
        "sweep_dir": req.sweep_dir,
        "metric": plan_.metric,
        "pruner": req.pruner,
        "max_t": int(max(steps)) if steps else 10**9,
        "grace": int(min(evals)) if evals else 1,
    }


def make_scheduler(pruner: str, metric: str, max_t: int, grace: int) -> Any:
    """Tune's scheduler for ``--pruner``: ASHA or median stopping on the reported val ``metric`` by step."""
    if pruner in (None, "none"):
        return None
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    if pruner == "median":  # as Optuna's MedianPruner(n_startup_trials=2): compare once 2 trials reported
        return MedianStoppingRule(
            time_attr="step", metric=VAL + metric, mode="max", grace_period=0, min_samples_required=2
        )
    if pruner == "asha":  # as Optuna's SuccessiveHalvingPruner: rungs from the first evaluation, factor 4
        # max_t past the last step: ASHA stops a trial that reaches max_t, and a trial that trains to
        # its end must finish (and send its row), not be stopped at its last evaluation
        return ASHAScheduler(
            time_attr="step",
            metric=VAL + metric,
            mode="max",
            max_t=max(max_t, grace, 1) + 1,
            grace_period=max(1, grace),
            reduction_factor=4,
        )
    raise ValueError(f"unknown pruner {pruner!r}")


class TuneRunner:
    """One ``Tuner.fit`` in a driver thread, fed trial by trial through the mailbox."""

    def __init__(
        self,
        ray: Any,
        panel: Any,
        *,
        max_concurrent: int,
        cpus_per_trial: float,
        gpus_per_trial: float,
        sweep_dir: Path,
        metric: str,
        pruner: str,
        max_t: int,
        grace: int,
    ) -> None:
        from ray import tune

        self.ray = ray
        self.box = ray.remote(num_cpus=0)(Mailbox).remote()
        searcher, callback, stopper = _tune_classes()
        trainable = tune.with_resources(
            tune.with_parameters(tune_trial, panel=panel), {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
        )
        self.tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher(self.box),
                scheduler=make_scheduler(pruner, metric, max_t, grace),
                num_samples=-1,  # until the searcher says FINISHED (the driver closes the mailbox)
                max_concurrent_trials=max_concurrent,
                reuse_actors=True,
                trial_dirname_creator=_dirname,
            ),
            run_config=tune.RunConfig(
                name=time.strftime("tune-%Y%m%dT%H%M%SZ", time.gmtime()),
                storage_path=str(Path(sweep_dir).resolve() / "tune"),
                callbacks=[callback(self.box)],
                stop=stopper(self.box),
                verbose=0,
            ),
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._fit, name="mqc-ray-tune", daemon=True)
        self.thread.start()

    def _fit(self) -> None:
        import logging

        # Tune's notes (no searcher state to save, no result.json without its file loggers) are not
        # the user's business: the sweep directory records every trial
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
        try:
            self.tuner.fit()
        except BaseException as exc:  # noqa: BLE001 - reported to the driver by wait()
            self.error = exc

    def submit(self, spec: TrialSpec) -> None:
        # the driver tells the Optuna study; Tune's scheduler prunes: the trial never opens the study
        self.box.put.remote(spec.key, replace(spec, study=None))

    def collect(self, timeout: float) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while True:
            items = self.ray.get(self.box.collect.remote())
            if items or time.monotonic() >= end or not self.thread.is_alive():
                return items
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def close(self, cancel: bool, timeout: float = 60.0) -> None:
        try:
            self.box.close.remote(cancel)
        except Exception:  # noqa: BLE001,S110 - the instance may already be gone
            pass
        self.thread.join(timeout=10.0 if cancel else timeout)


def row_from(spec: TrialSpec, item: dict[str, Any]) -> dict[str, Any]:
    """The trials.jsonl row of a finished Tune trial: its own row, else pruned (stopped by the
    scheduler, its last reported val metrics kept) or failed (the trial's actor died)."""
    from mqc.core.sweep.trial import _newest_run, new_row

    res = item.get("result") or {}
    if ROW in res:
        return json.loads(res[ROW])
    row = new_row(
        spec,
        run_dir=_newest_run(spec.save_dir),
        status=FAILED if item.get("error") else PRUNED,
        val={k[len(VAL) :]: v for k, v in res.items() if k.startswith(VAL)},
        steps=res.get("step"),
        error=item.get("error"),
        seconds=round(float(res.get("time_total_s") or 0.0), 3),
    )
    if item.get("error"):
        row["val"] = {}
    return row
