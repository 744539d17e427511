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


def _figures(per_symbol: dict[str, dict[str, Any]] | None, values: dict[str, Any], m: str) -> list[float]:
    """A finished trial's figures of ``m``: one per symbol when it has ``per_symbol`` figures (a forecast
    sweep scores each symbol on its own origins), else its one value."""
    vals = [p.get(m) for p in per_symbol.values()] if per_symbol else [values.get(m)]
    return [float(v) for v in vals if v is not None]


def summarize(
    rows: Iterable[dict[str, Any]],
    metric: str,
    seed_key: str,
    *,
    lower: bool = False,
    shown: tuple[str, ...] = SHOWN,
) -> list[dict[str, Any]]:
    """One entry per configuration (the latest row of each trial), best mean val ``metric`` first
    (the highest, or the lowest with ``lower``: a forecast error).

    Only finished trials count toward the mean; pruned and failed ones are counted apart. The mean
    and std are over seeds, or over symbols x seeds when the rows carry per-symbol figures.
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
        for m in dict.fromkeys([metric, *shown]):
            mean, std = _mean_std([x for r in ok for x in _figures(r.get("per_symbol"), r.get("val", {}), m)])
            c["val"][m] = {"mean": mean, "std": std}
        c["runs"] = [{"trial": r["trial"], "seed": r.get("seed"), "run_dir": r["run_dir"]} for r in ok]
        c["errors"] = sorted({r["error"] for r in trials if r.get("error")})
        out.append(c)
    sign = 1.0 if lower else -1.0
    out.sort(key=lambda c: (c["val"][metric]["mean"] is None, sign * (c["val"][metric]["mean"] or 0.0)))
    return out


def select(configs: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The configuration with the best mean val ``metric`` (``summarize``'s first with at least one finished
    trial), else None."""
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
    shown: tuple[str, ...] = SHOWN,
    note: str = "computed once, on the test split, for the configuration chosen on val only",
) -> dict[str, Any]:
    """Backtest each finished run of the chosen configuration on its test split, once.

    The deflated Sharpe ratio uses ``n_configs`` trials. A stored ``test.json`` for the same choice,
    runs and count is returned as it is (the figures are not recomputed, so they cannot be re-rolled).
    ``backtest(run, n_configs, out_dir)`` makes a run's test report (default: the checkpoint backtest
    of its run directory; an evaluation sweep passes its own, ``evals.tester``). A report with
    ``per_symbol`` figures (a forecast sweep's) is averaged over symbols x runs, and has no
    significance (no deflated Sharpe ratio for a forecast error).
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
                "metrics": {m: rep.metrics.get(m) for m in shown},
                **({"per_symbol": rep.per_symbol} if getattr(rep, "per_symbol", None) else {}),
                "dsr": sig.get("dsr"),
                "psr": sig.get("psr"),
                "p_value": sig.get("p_value"),
            }
        )
    doc = {
        "note": note,
        "config": best["config"],
        "overrides": best["overrides"],
        "n_configs": n_configs,
        "run_dirs": runs,
        "runs": per_run,
        "metrics": {
            m: dict(
                zip(
                    ("mean", "std"),
                    _mean_std([x for p in per_run for x in _figures(p.get("per_symbol"), p["metrics"], m)]),
                    strict=True,
                )
            )
            for m in shown
        },
        "dsr": dict(
            zip(("mean", "std"), _mean_std([float(p["dsr"]) for p in per_run if p["dsr"] is not None]), strict=True)
        ),
    }
    atomic.write_json(path, doc)
    return {**doc, "reused": False}
