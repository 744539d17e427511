"""A sweep's table: configurations by mean val metric over seeds, the choice (val only), and the
chosen configuration's test figures, computed once and deflated by the number of configurations tried."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mqc.core import atomic
from mqc.core.sweep.trial import FAILED, OK, PRUNED

SUMMARY_JSON, SUMMARY_MD, TEST_JSON = "summary.json", "summary.md", "test.json"
SHOWN = ("sharpe", "total_return", "max_drawdown", "turnover")


def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def summarize(rows: Iterable[dict[str, Any]], metric: str, seed_key: str) -> list[dict[str, Any]]:
    """One entry per configuration (the latest row of each trial), best mean val ``metric`` first.

    Only finished trials count toward the mean; pruned and failed ones are counted apart.
    """
    configs: dict[str, dict[str, Any]] = {}
    for row in rows:
        c = configs.setdefault(
            row["config"],
            {
                "config": row["config"],
                "overrides": {k: v for k, v in row["overrides"].items() if k != seed_key},
                "trials": {},
            },
        )
        c["trials"][row["trial"]] = row
    out = []
    for c in configs.values():
        trials = sorted(c.pop("trials").values(), key=lambda r: (r.get("seed") is None, r.get("seed")))
        ok = [r for r in trials if r["status"] == OK]
        c["seeds"] = [r.get("seed") for r in trials]
        c["ok"], c["pruned"] = len(ok), sum(r["status"] == PRUNED for r in trials)
        c["failed"] = sum(r["status"] == FAILED for r in trials)
        c["val"] = {}
        for m in dict.fromkeys([metric, *SHOWN]):
            mean, std = _mean_std([float(r["val"][m]) for r in ok if m in r.get("val", {})])
            c["val"][m] = {"mean": mean, "std": std}
        c["runs"] = [{"trial": r["trial"], "seed": r.get("seed"), "run_dir": r["run_dir"]} for r in ok]
        c["errors"] = sorted({r["error"] for r in trials if r.get("error")})
        out.append(c)
    out.sort(key=lambda c: (c["val"][metric]["mean"] is None, -(c["val"][metric]["mean"] or 0.0)))
    return out


def select(configs: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The configuration with the best mean val ``metric`` (at least one finished trial), else None."""
    ranked = [c for c in configs if c["val"][metric]["mean"] is not None]
    return ranked[0] if ranked else None


def varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Keys whose value differs between configurations (the columns worth showing)."""
    keys: dict[str, set[str]] = {}
    for c in configs:
        for k, v in c["overrides"].items():
            keys.setdefault(k, set()).add(json.dumps(v, default=str))
    return [k for k, vals in keys.items() if len(vals) > 1 or len(configs) == 1]


def markdown(configs: list[dict[str, Any]], metric: str, best: str | None) -> str:
    """The summary table as Markdown (``summary.md``)."""
    keys = varying_keys(configs)
    head = ["", *keys, f"val {metric} (mean ± std)", "seeds ok", "pruned", "failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in configs:
        v = c["val"][metric]
        cell = "-" if v["mean"] is None else f"{v['mean']:.3f}" + (f" ± {v['std']:.3f}" if v["std"] is not None else "")
        mark = "**chosen**" if c["config"] == best else ""
        row = [mark, *[json.dumps(c["overrides"].get(k)) for k in keys], cell, f"{c['ok']}/{len(c['seeds'])}"]
        lines.append("| " + " | ".join([*row, str(c["pruned"]), str(c["failed"])]) + " |")
    return "\n".join(lines) + "\n"


def test_once(
    best: dict[str, Any],
    n_configs: int,
    sweep_dir: Path,
    *,
    bootstrap_samples: int = 2000,
    backtest: Callable[[dict[str, Any], int, Path], Any] | None = None,
) -> dict[str, Any]:
    """Backtest each finished run of the chosen configuration on its test split, once.

    The deflated Sharpe ratio uses ``n_configs`` trials. A stored ``test.json`` for the same choice,
    runs and count is returned as it is (the figures are not recomputed, so they cannot be re-rolled).
    ``backtest(run, n_configs, out_dir)`` makes a run's test report (default: the checkpoint backtest
    of its run directory; an evaluation sweep passes its own, ``evals.tester``).
    """
    from mqc.core.backtest.config import BacktestConfig
    from mqc.core.backtest.runner import run_checkpoint_backtest

    path = sweep_dir / TEST_JSON
    runs = [r["run_dir"] for r in best["runs"]]
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if old.get("config") == best["config"] and old.get("n_configs") == n_configs and old.get("run_dirs") == runs:
            return {**old, "reused": True}
    cfg = BacktestConfig(n_trials=n_configs, plots=False, write_trades=False, bootstrap_samples=bootstrap_samples)
    per_run = []
    for r in best["runs"]:
        out = sweep_dir / "test" / r["trial"]
        if backtest is not None:
            rep = backtest(r, n_configs, out)
        else:
            rep = run_checkpoint_backtest(r["run_dir"], None, cfg, out_dir=out, fit_windows=True)
        sig = rep.significance
        per_run.append(
            {
                "trial": r["trial"],
                "seed": r["seed"],
                "run_dir": r["run_dir"],
                "report": str(rep.out_dir) if rep.out_dir else None,
                "metrics": {m: rep.metrics.get(m) for m in SHOWN},
                "dsr": sig.get("dsr"),
                "psr": sig.get("psr"),
                "p_value": sig.get("p_value"),
            }
        )
    doc = {
        "note": "computed once, on the test split, for the configuration chosen on val only",
        "config": best["config"],
        "overrides": best["overrides"],
        "n_configs": n_configs,
        "run_dirs": runs,
        "runs": per_run,
        "metrics": {
            m: dict(
                zip(
                    ("mean", "std"),
                    _mean_std([float(p["metrics"][m]) for p in per_run if p["metrics"][m] is not None]),
                    strict=True,
                )
            )
            for m in SHOWN
        },
        "dsr": dict(
            zip(("mean", "std"), _mean_std([float(p["dsr"]) for p in per_run if p["dsr"] is not None]), strict=True)
        ),
    }
    atomic.write_json(path, doc)
    return {**doc, "reused": False}
