"""PNG plots of a backtest (matplotlib's Agg canvas directly: no pyplot, no GUI backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mqc.core import atomic

if TYPE_CHECKING:
    from mqc.core.backtest.engine import BacktestResult
    from mqc.core.backtest.report import BacktestReport

_MAX_STACKED = 10  # assets drawn individually in the weights plot; the rest are summed as "other"


def _save(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def _dates(ts: np.ndarray):
    return np.asarray(ts).astype("datetime64[ns]").astype("datetime64[us]").astype(object)


def plot_equity(report: BacktestReport, path: str | Path) -> Path:
    """Equity (log scale) and drawdown of the strategy against every benchmark."""
    from matplotlib.figure import Figure

    from mqc.core.backtest.benchmarks import BENCHMARK_LABELS

    r = report.result
    x = _dates(r.timestamps)
    fig = Figure(figsize=(10, 6.5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    ax1.plot(x, r.equity, label="strategy", color="black", linewidth=1.6)
    for name, b in report.benchmarks.items():
        ax1.plot(x, b.equity, label=BENCHMARK_LABELS[name], linewidth=1.0, alpha=0.85)
        ax2.plot(x, 100 * b.drawdown, linewidth=0.8, alpha=0.7)
    ax2.fill_between(x, 100 * r.drawdown, 0, color="black", alpha=0.25, label="strategy")
    curves = [r.equity, *(b.equity for b in report.benchmarks.values())]
    lo, hi = min(float(c.min()) for c in curves), max(float(c.max()) for c in curves)
    if lo > 0 and hi / lo > 4:  # log scale only when it helps reading a long compounding curve
        from matplotlib.ticker import ScalarFormatter

        ax1.set_yscale("log")
        ax1.yaxis.set_major_formatter(ScalarFormatter())
    ax1.set_ylabel("equity (start = 1)")
    ax1.set_title(
        f"{report.source.get('name', 'strategy')}: {r.metrics['total_return'] * 100:.1f}% total, Sharpe"
        f" {r.metrics['sharpe']:.2f}"
    )
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("drawdown %")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, Path(path))


def plot_weights(result: BacktestResult, path: str | Path) -> Path:
    """Executed weights over time: stacked longs above zero, shorts below (top assets by |weight|)."""
    from matplotlib.figure import Figure

    w = result.weights
    order = np.argsort(-np.abs(w).mean(axis=0))
    keep = order[:_MAX_STACKED]
    series = [w[:, a] for a in keep]
    labels = [result.symbols[a] for a in keep]
    if len(order) > _MAX_STACKED:
        series.append(w[:, order[_MAX_STACKED:]].sum(axis=1))
        labels.append("other")
    x = _dates(result.timestamps)
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    pos = np.array([np.maximum(s, 0.0) for s in series])
    neg = np.array([np.minimum(s, 0.0) for s in series])
    ax.stackplot(x, pos, labels=labels, alpha=0.85)
    if (neg < 0).any():
        ax.set_prop_cycle(None)
        ax.stackplot(x, neg, alpha=0.85)
    ax.plot(x, w.sum(axis=1), color="black", linewidth=0.8, label="net")
    ax.set_ylabel("weight")
    ax.set_title("executed weights")
    ax.legend(loc="upper left", fontsize=7, ncol=min(6, len(labels) + 1))
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, Path(path))
