"""The Optuna study of a sweep: sampling configurations, opening trials for pruning, telling results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mqc.core.errors import ConfigError
from mqc.core.sweep.space import config_key
from mqc.core.sweep.trial import OK, PRUNED, make_pruner, open_storage

if TYPE_CHECKING:
    from mqc.core.sweep.runner import SweepRequest, _Plan

JOURNAL = "optuna.journal"


class Study:
    """The Optuna study (only when a sampler or a pruner needs one)."""

    def __init__(self, req: SweepRequest, plan_: _Plan, *, seed: int = 0) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.url = req.storage or f"journal:{req.sweep_dir / JOURNAL}"
        self.pruner = req.pruner
        text = req.grid_file.expanduser().read_text(encoding="utf-8")
        self.name = f"mqc-{req.kind}-{config_key({'file': text, 'base': json.dumps(req.base, default=str)})}"
        sampler = (
            optuna.samplers.RandomSampler(seed=seed)
            if req.sampler == "random"
            else optuna.samplers.TPESampler(seed=seed)
        )
        try:
            self.study = optuna.create_study(
                study_name=self.name,
                storage=open_storage(self.url),
                sampler=sampler,
                pruner=make_pruner(req.pruner),
                direction="minimize" if plan_.lower else "maximize",
                load_if_exists=True,
            )
        except Exception as exc:  # noqa: BLE001 - a database that does not answer, a bad URL
            raise ConfigError(
                f"Optuna storage {req.storage or self.url}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                hint="check --storage (e.g. postgresql://user@host/db), "
                "or leave it out to keep the study in the sweep directory",
            ) from exc
        self.space = plan_.space
        self.encoded = {k: {_enc(v): v for v in vals} for k, vals in plan_.space.axes.items()}
        self.trials: dict[str, Any] = {}

    def distributions(self) -> dict[str, Any]:
        d = self.optuna.distributions
        out: dict[str, Any] = {k: d.CategoricalDistribution(list(enc)) for k, enc in self.encoded.items()}
        for k, r in self.space.ranges.items():
            if r.integer:
                out[k] = d.IntDistribution(int(r.low), int(r.high), log=r.log, step=int(r.step or 1))
            else:
                out[k] = d.FloatDistribution(r.low, r.high, log=r.log, step=r.step)
        return out

    def sample(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask(self.distributions())
        overrides = dict(self.space.fixed)
        for k, v in trial.params.items():
            overrides[k] = self.encoded[k][v] if k in self.encoded else v
        return trial, overrides

    def open(self, key: str, trial: Any = None) -> dict[str, Any]:
        trial = trial if trial is not None else self.study.ask()
        trial.set_user_attr("trial", key)
        self.trials[key] = trial
        return {"storage": self.url, "name": self.name, "trial_id": trial._trial_id, "pruner": self.pruner}

    def repeat(self, trial: Any, row: dict[str, Any] | None, metric: str) -> None:
        """Close a sampled trial whose configuration already ran: its known value, else failed."""
        value = (row or {}).get("val", {}).get(metric) if (row or {}).get("status") == OK else None
        if value is not None:
            self.study.tell(trial, float(value))
        else:
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)

    def tell(self, key: str, row: dict[str, Any], metric: str) -> None:
        trial = self.trials.pop(key, None)
        if trial is None:
            return
        st = self.optuna.trial.TrialState
        value = row.get("val", {}).get(metric)
        if row["status"] == OK and value is not None:
            self.study.tell(trial, float(value))
        elif row["status"] == PRUNED:
            self.study.tell(trial, state=st.PRUNED)
        else:
            self.study.tell(trial, state=st.FAIL)


def _enc(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)
