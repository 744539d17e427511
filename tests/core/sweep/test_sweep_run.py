"""A sweep of ``train dm`` on a tiny synthetic panel: every trial written, selection on val, test
once with the configurations counted, resume, a crashed trial, Ctrl-C, pruning."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from mqc.core import runs
from mqc.core.progress import NullProgress
from mqc.core.sweep.runner import TRIALS, SweepRequest, read_trials, run_sweep

GRID = """
dm.hidden_size = [8, 16]
dm.lookback = [16, 24]
seed = [0, 1]
"""


def request(grid, sweep_dir, base, **kw) -> SweepRequest:
    return SweepRequest(
        kind="dm", grid_file=grid, sweep_dir=sweep_dir, base=base, bootstrap_samples=50, **{"max_concurrent": 2, **kw}
    )


def test_a_2x2x2_sweep_writes_every_trial_selects_on_val_and_reports_test_once(
    sweep_file, base, tmp_path, monkeypatch
) -> None:
    sd = tmp_path / "sweep"
    res = run_sweep(request(sweep_file(GRID), sd, base))
    rows = list(read_trials(sd).values())
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"} and res.counts["done"] == 8
    for r in rows:  # each trial is an ordinary run directory with its overrides in config.json
        doc = runs.read_run_config(r["run_dir"])
        assert doc["configs"]["dm"]["seed"]["value"] == r["seed"]
        assert doc["configs"]["dm"]["lookback"]["value"] == r["overrides"]["dm.lookback"]
        assert doc["configs"]["dm"]["lookback"]["source"] == "sweep"
        assert runs.checkpoint_path(Path(r["run_dir"]), runs.BEST).is_file()
        assert Path(r["run_dir"]).parent == sd / "trials" / r["trial"]
        assert set(r) >= {"overrides", "run_dir", "status", "val", "duration", "seed", "error"}
    # selection on val only: the best mean val sharpe over the two seeds, computed here from the rows
    by_cfg: dict[str, list[float]] = {}
    for r in rows:
        by_cfg.setdefault(r["config"], []).append(r["val"]["sharpe"])
    want = max(by_cfg, key=lambda k: statistics.mean(by_cfg[k]))
    assert res.chosen["config"] == want and res.n_configs == 4
    assert res.chosen["val"]["sharpe"]["mean"] == pytest.approx(statistics.mean(by_cfg[want]))
    assert res.chosen["val"]["sharpe"]["std"] == pytest.approx(statistics.stdev(by_cfg[want]))
    # test figures: the chosen configuration only, deflated with the 4 configurations tried
    assert res.test["n_configs"] == 4 and not res.test["reused"]
    assert sorted(t["seed"] for t in res.test["runs"]) == [0, 1]
    for t in res.test["runs"]:
        rep = json.loads((sd / "test" / t["trial"] / "report.json").read_text())
        assert rep["significance"]["n_trials"] == 4 and rep["segment"]["split"] == "test"
        assert rep["significance"]["dsr"] == pytest.approx(t["dsr"])
    summary = json.loads((sd / "summary.json").read_text())
    assert summary["chosen"]["config"] == want and len(summary["configs"]) == 4
    assert "chosen" in (sd / "summary.md").read_text() and (sd / "sweep.toml").is_file()

    # resume: a finished sweep runs nothing again and the test figures are not recomputed
    again = run_sweep(request(sweep_file(GRID), sd, base))
    assert again.counts["done"] == 0 and again.counts["skipped"] == 8
    assert again.test["reused"] and again.test["runs"] == res.test["runs"]

    # resume after a kill: only the trials missing from trials.jsonl run
    lines = (sd / TRIALS).read_text().splitlines()
    (sd / TRIALS).write_text("\n".join(lines[:5]) + "\n")
    kept = {json.loads(x)["trial"]: json.loads(x)["run_dir"] for x in lines[:5]}
    third = run_sweep(request(sweep_file(GRID), sd, base))
    assert third.counts["done"] == 3 and third.counts["skipped"] == 5
    after = read_trials(sd)
    assert len(after) == 8 and all(after[k]["run_dir"] == v for k, v in kept.items())
    again_rows = {k: r["val"] for k, r in after.items()}
    assert again_rows == {r["trial"]: r["val"] for r in rows}  # same seeds, same results


def test_another_sweep_in_the_same_directory_is_refused(sweep_file, base, tmp_path) -> None:
    from mqc.core.errors import ConfigError

    sd = tmp_path / "sweep"
    run_sweep(request(sweep_file("dm.lookback = [16]\n"), sd, base, test=False))
    with pytest.raises(ConfigError, match="holds another sweep"):
        run_sweep(request(sweep_file("dm.lookback = [24]\n", "other.toml"), sd, base))
    assert len(read_trials(sd)) == 1


def test_a_trial_that_raises_is_recorded_and_the_sweep_continues(sweep_file, base, tmp_path) -> None:
    sd = tmp_path / "sweep"
    # lookback 250 leaves no training window on 300 bars: that trial fails, the other finishes
    res = run_sweep(request(sweep_file("dm.lookback = [16, 250]\n"), sd, base, max_concurrent=1, test=False))
    rows = {r["overrides"]["dm.lookback"]: r for r in read_trials(sd).values()}
    assert rows[16]["status"] == "ok" and rows[250]["status"] == "failed"
    assert rows[250]["error"].startswith("DataError") and "too few" in rows[250]["error"]
    assert res.counts["failed"] == 1 and res.chosen["overrides"]["dm.lookback"] == 16
    assert "Traceback" in (sd / "errors.log").read_text()


class _InterruptAfter(NullProgress):
    def __init__(self, n: int) -> None:
        self.n = n

    def advance(self, n: int = 1, **fields) -> None:
        self.n -= n
        if self.n <= 0:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_the_finished_trials_and_the_table_so_far(sweep_file, base, tmp_path) -> None:
    sd = tmp_path / "sweep"
    grid = sweep_file("dm.lookback = [16, 20, 24]\n")
    with pytest.raises(KeyboardInterrupt) as exc:
        run_sweep(request(grid, sd, base, max_concurrent=1), progress=_InterruptAfter(1))
    partial = exc.value.sweep_result
    assert partial.interrupted and partial.test is None and len(read_trials(sd)) == 1
    assert json.loads((sd / "summary.json").read_text())["interrupted"] is True
    done = run_sweep(request(grid, sd, base, max_concurrent=1, test=False))
    assert done.counts["skipped"] == 1 and done.counts["done"] == 2 and len(read_trials(sd)) == 3


def test_a_random_search_with_median_pruning_keeps_its_study_in_the_sweep_directory(sweep_file, base, tmp_path) -> None:
    optuna = pytest.importorskip("optuna")
    sd = tmp_path / "sweep"
    grid = sweep_file("dm.lr = {low = 1e-3, high = 1e-2, log = true}\ndm.lookback = [16, 24]\n")
    res = run_sweep(request(grid, sd, base, samples=2, sampler="random", pruner="median", test=False))
    rows = list(read_trials(sd).values())
    assert len(rows) == 2 and res.n_configs == 2
    assert all(1e-3 <= r["overrides"]["dm.lr"] <= 1e-2 and r["overrides"]["dm.lookback"] in (16, 24) for r in rows)
    names = optuna.study.get_all_study_names(
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sd / "optuna.journal")))
    )
    study = optuna.load_study(
        study_name=names[0],
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sd / "optuna.journal"))),
    )
    assert len([t for t in study.trials if t.state.is_finished()]) == 2
    assert all(t.intermediate_values for t in study.trials)  # every eval was reported for pruning
    more = run_sweep(request(grid, sd, base, samples=3, sampler="random", pruner="median", test=False))
    assert more.counts["done"] == 1 and len(read_trials(sd)) == 3  # resumes the count, samples one more


TINY_OVERRIDES = {
    "dm.lookback": 16,
    "dm.seed": 0,
    "dm.steps": 4,
    "dm.eval_interval": 2,
    "dm.batch_windows": 2,
    "dm.rollout_groups": 2,
    "dm.horizon": 8,
}


def test_the_pruner_stops_a_trial_below_the_median_at_its_first_eval(sweep_file, base, tmp_path) -> None:
    optuna = pytest.importorskip("optuna")
    from mqc.core.sweep.trial import TrialSpec, make_pruner, open_storage, run_trial

    url = f"journal:{tmp_path / 'j.journal'}"
    study = optuna.create_study(
        study_name="s", storage=open_storage(url), pruner=make_pruner("median"), direction="maximize"
    )
    for _ in range(3):  # finished trials far better at every step than any real trial
        study.add_trial(optuna.trial.create_trial(value=99.0, intermediate_values={2: 99.0, 4: 99.0}))
    trial = study.ask()
    spec = TrialSpec(
        kind="dm",
        key="k-s0",
        config_key="k",
        number=0,
        overrides=TINY_OVERRIDES,
        base=base,
        save_dir=str(tmp_path / "t"),
        study={"storage": url, "name": "s", "trial_id": trial._trial_id, "pruner": "median"},
    )
    row = run_trial(spec)
    assert row["status"] == "pruned" and row["steps"] == 2 and "sharpe" in row["val"], row.get("error")


def test_any_registered_trainer_sweeps_through_its_own_table(base, tmp_path) -> None:
    from mqc.core import config
    from mqc.core.train.config import SharpeTrainConfig

    grid = tmp_path / "sharpe.toml"
    grid.write_text(
        "sharpe.steps = 4\nsharpe.eval_interval = 2\nsharpe.horizon = 32\nsharpe.lookback = [16, 24]\nseed = [3]\n"
    )
    tables = {**{k: v for k, v in base.items() if k != "dm"}, "sharpe": config.to_dict(SharpeTrainConfig())}
    res = run_sweep(
        SweepRequest(kind="sharpe", grid_file=grid, sweep_dir=tmp_path / "s", base=tables, max_concurrent=1, test=False)
    )
    rows = list(read_trials(tmp_path / "s").values())
    assert {r["status"] for r in rows} == {"ok"} and {r["seed"] for r in rows} == {3} and res.n_configs == 2
    for r in rows:
        doc = runs.read_run_config(r["run_dir"])
        assert doc["kind"] == "sharpe" and doc["configs"]["sharpe"]["seed"]["value"] == 3
        assert doc["configs"]["sharpe"]["lookback"]["value"] == r["overrides"]["sharpe.lookback"]


def test_a_test_report_that_cannot_run_loses_no_trial(sweep_file, base, data_root, tmp_path) -> None:
    from mqc.core.data.config import DataConfig
    from mqc.core.data.panel import load_panel
    from mqc.core.errors import MqcError

    panel = load_panel(config=DataConfig(data_root=str(data_root)))
    gone = {**base, "data": {**base["data"], "data_root": str(tmp_path / "moved")}}  # the bars moved away
    sd = tmp_path / "sweep"
    with pytest.raises(MqcError):
        run_sweep(request(sweep_file("dm.lookback = [16, 24]\n"), sd, gone, max_concurrent=1), panel=panel)
    summary = json.loads((sd / "summary.json").read_text())
    assert len(read_trials(sd)) == 2 and summary["chosen"] is not None and summary["test"] is None
