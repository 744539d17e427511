"""A full backtest report: strategy, benchmarks, rolling windows (slices of one replay), significance, and its files.

Files in the report directory (each written atomically; ``report.json`` last, so its presence
means the report is complete):

- ``report.json``: aggregates of the rolling windows, the full metrics over the segment, the
  benchmark rows, the significance figures, the cost model, the split and the data fingerprint.
- ``windows.json``: per-window metrics.
- ``trades.jsonl``: one line per bar: executed weights, trades, turnover, reward, gross and
  overnight leverage, costs, financing, equity.
- ``equity.csv``: equity of the strategy and every benchmark plus the strategy's drawdown. Row t
  is the wealth after the position chosen at close t has been held to close t+1.
- ``equity.png`` (equity and drawdown against the benchmarks) and ``weights.png``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import atomic, paths
from mqc.core.backtest.benchmarks import BENCHMARK_LABELS, run_benchmarks
from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.engine import BacktestResult, run_backtest
from mqc.core.backtest.significance import sharpe_significance
from mqc.core.backtest.walkforward import rolling_windows
from mqc.core.config import to_dict
from mqc.core.data.panel import Panel
from mqc.core.dates import iso_seconds
from mqc.core.market.config import MarketConfig
from mqc.core.market.costs import cost_summary
from mqc.core.metrics import holding_returns
from mqc.core.progress import NULL, Progress

SUMMARY_COLUMNS = (
    "total_return",
    "annual_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover",
)


@dataclass
class BacktestReport:
    """Everything ``mqc backtest`` reports; ``to_dict()`` is the content of ``report.json``."""

    result: BacktestResult
    benchmarks: dict[str, BacktestResult]
    windows: list[dict[str, Any]]
    aggregates: dict[str, Any]
    significance: dict[str, Any]
    market: MarketConfig
    config: BacktestConfig
    source: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    segment: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    orders: dict[str, Any] | None = None  # order strategies: fill statistics, fits, intrabar comparison
    fills: list[dict[str, Any]] | None = None  # order strategies: one row per fill (trades.jsonl)

    @property
    def metrics(self) -> dict[str, float]:
        return self.result.metrics

    def summary_rows(self) -> list[tuple[str, dict[str, float]]]:
        """(label, metrics) for the strategy and each benchmark, in table order."""
        rows = [("strategy", self.result.metrics)]
        rows += [(BENCHMARK_LABELS[name], r.metrics) for name, r in self.benchmarks.items()]
        return rows

    def to_dict(self) -> dict[str, Any]:
        from mqc import __version__

        return {
            "mqc_version": __version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "source": self.source,
            "segment": self.segment,
            "data": self.data,
            **self.aggregates,
            "metrics": self.result.metrics,
            "benchmarks": {name: r.metrics for name, r in self.benchmarks.items()},
            "significance": self.significance,
            **({"orders": self.orders} if self.orders is not None else {}),
            "market": to_dict(self.market),
            "backtest": to_dict(self.config),
            "files": self.files,
        }


def evaluate(
    panel: Panel,
    targets: np.ndarray,
    market: MarketConfig,
    config: BacktestConfig,
    *,
    lo: int = 0,
    hi: int | None = None,
    source: dict[str, Any] | None = None,
    segment: dict[str, Any] | None = None,
    fit_windows: bool | None = None,
    cost_overrides: dict[str, float] | None = None,
    progress: Progress = NULL,
    result: BacktestResult | None = None,
) -> BacktestReport:
    """Replay ``targets`` over ``[lo, hi)`` with benchmarks, windows and significance (no files).

    Args:
        panel: the loaded bars (targets rows follow its timestamps).
        targets: ``[T, A]`` target weights (NaN = hold).
        market: cost model and constraints (shared by the benchmarks).
        config: window, benchmark and bootstrap settings.
        lo, hi: the evaluated segment (half-open bar positions).
        fit_windows: the window length was not chosen by the user: when the segment is shorter,
            use one window over the whole segment (``aggregates["window_note"]`` says so) instead of
            raising. None: fit when ``config.window_length`` is the default.
        cost_overrides: the stress-test overrides already applied to ``market`` (for the report).
        result: an already replayed segment (an order strategy's ledger); ``targets`` is then unused.
    Returns:
        BacktestReport with ``out_dir`` unset (see ``write_report``).
    Raises:
        DataError: bad weights, an empty segment, or a window longer than the segment.
    """
    hi = len(panel) if hi is None else hi
    bpy = panel.bars_per_year
    progress.start(4, "backtest: replaying the strategy")
    if result is None:
        result = run_backtest(panel, targets, market, start=lo, end=hi, bars_per_year=bpy)
    n_bars = hi - lo
    if fit_windows is None:
        fit_windows = config.window_length == BacktestConfig().window_length
    window_note = None
    if fit_windows and config.window_length > n_bars:
        # The default window is a convenience, not a request: a short test split still gets its
        # full-segment metrics and one window spanning it.
        window_note = (
            f"the default window of {config.window_length} bars is longer than the {n_bars} evaluated bars: "
            f"using one window of {n_bars} bars (pass --window-length to choose)"
        )
    if window_note is not None and n_bars < 2:
        windows, aggregates = [], {"windows": 0, "window_length": n_bars}
    elif window_note is not None:
        windows, aggregates = rolling_windows(result, n_bars, max(1, min(config.stride, n_bars)))
    else:
        windows, aggregates = rolling_windows(result, config.window_length, config.stride)
    if window_note is not None:
        aggregates["window_note"] = window_note
    progress.advance(1)
    progress.log("backtest: replaying the benchmarks")
    benchmarks = run_benchmarks(
        panel,
        lo,
        hi,
        market,
        rebalance_every=config.rebalance_every,
        inv_vol_window=config.inv_vol_window,
        bars_per_year=bpy,
    )
    progress.advance(1)
    # The same periods as the table's Sharpe: the segment's last bar (no holding period) folded in.
    significance = sharpe_significance(
        holding_returns(result.net_returns, final_bar_held=False),
        holding_returns(benchmarks["equal_weight"].net_returns, final_bar_held=False),
        bpy,
        samples=config.bootstrap_samples,
        block_length=config.block_length,
        n_trials=config.n_trials,
        seed=config.seed,
    )
    progress.advance(1)
    seg = {
        "first": iso_seconds(result.timestamps[0]),
        "last": iso_seconds(result.timestamps[-1]),
        "start_bar": lo,
        "end_bar": hi,
        "bars": hi - lo,
        **(segment or {}),
    }
    data = {
        "fingerprint": panel.fingerprint,
        "symbols": list(panel.symbols),
        "asset_classes": list(panel.asset_classes),
        "timeframe": panel.timeframe,
        "bars_loaded": len(panel),
        "bars_per_year": bpy,
        "filled_bars": {s: int(panel.filled[lo:hi, i].sum()) for i, s in enumerate(panel.symbols)},
        "costs": cost_summary(market, panel.asset_classes, cost_overrides),
    }
    report = BacktestReport(
        result=result,
        benchmarks=benchmarks,
        windows=windows,
        aggregates=aggregates,
        significance=significance,
        market=market,
        config=config,
        source=dict(source or {}),
        data=data,
        segment=seg,
    )
    progress.advance(1)
    progress.finish()
    return report


def default_out_dir() -> Path:
    """Create and return ``<runs dir>/backtests/<UTC timestamp>`` (a numeric suffix when taken)."""
    return paths.new_dir(paths.runs_dir() / "backtests")


def _trade_lines(r: BacktestResult, fills: list[dict[str, Any]] | None = None) -> str:
    """One line per bar; with ``fills`` (order strategies) each fill follows its bar as a ``"fill"`` line."""
    by_bar: dict[str, list[dict[str, Any]]] = {}
    for f in fills or ():
        by_bar.setdefault(f["timestamp"], []).append(f)
    syms = r.symbols
    eq = r.equity
    rewards = r.rewards
    on = r.overnight_leverage
    lines = []
    for t in range(len(r)):
        w, d = r.weights[t], r.trades[t]
        nz = np.flatnonzero(np.abs(w) > 1e-12)
        tr = np.flatnonzero(np.abs(d) > 1e-12)
        lines.append(
            atomic.dumps(
                {
                    "timestamp": iso_seconds(r.timestamps[t]),
                    "weights": {syms[a]: round(float(w[a]), 10) for a in nz},
                    "trades": {syms[a]: round(float(d[a]), 10) for a in tr},
                    "turnover": float(r.turnover[t]),
                    "reward": float(rewards[t]),
                    "net_return": float(r.net_returns[t]),
                    "gross_leverage": float(r.gross_leverage[t]),
                    "overnight_leverage": float(on[t]),
                    "costs": float(r.costs[t]),
                    "financing": float(r.financing[t]),
                    "equity": float(eq[t]),
                }
            )
        )
        lines.extend(atomic.dumps({"type": "fill", **f}) for f in by_bar.get(str(r.timestamps[t])[:19], ()))
    return "\n".join(lines) + ("\n" if lines else "")


def _equity_csv(report: BacktestReport) -> str:
    r = report.result
    cols = {
        "strategy": r.equity,
        **{name: b.equity for name, b in report.benchmarks.items()},
        "strategy_drawdown": r.drawdown,
    }
    header = "timestamp," + ",".join(cols)
    rows = [header]
    arrays = list(cols.values())
    for t in range(len(r)):
        rows.append(iso_seconds(r.timestamps[t]) + "," + ",".join(f"{a[t]:.12g}" for a in arrays))
    return "\n".join(rows) + "\n"


def write_report(report: BacktestReport, out_dir: str | Path | None = None) -> Path:
    """Write the report files (see module docstring) and set ``report.out_dir`` / ``report.files``.

    All or nothing: the files are written into a temp folder beside the report folder and moved
    into it only once all are complete (``atomic.staged_dir``), so a full disk leaves the previous
    report (or no folder) rather than a partial one.

    Returns:
        The report directory.
    """
    out = Path(out_dir).expanduser() if out_dir else default_out_dir()
    try:
        _write_files(report, out)
    except BaseException:
        if not out_dir:
            with contextlib.suppress(OSError):
                out.rmdir()  # the fresh default folder, left empty
        raise
    # A report written over an older one (--out EXISTING) must not sit beside the old one's plots or
    # trades: remove the files mqc writes by these names that this report did not write.
    written = {Path(f).name for f in report.files.values()}
    for name in REPORT_FILES:
        if name not in written:
            (out / name).unlink(missing_ok=True)
    return out


def _write_files(report: BacktestReport, out: Path) -> None:
    files: dict[str, str] = {}
    with atomic.staged_dir(out, last=("report.json",)) as stage:
        atomic.write_json(stage / "windows.json", report.windows)
        files["windows"] = str(out / "windows.json")
        if report.config.write_trades:
            atomic.write_text(stage / "trades.jsonl", _trade_lines(report.result, report.fills))
            files["trades"] = str(out / "trades.jsonl")
        atomic.write_text(stage / "equity.csv", _equity_csv(report))
        files["equity"] = str(out / "equity.csv")
        if report.config.plots:
            from mqc.core.backtest.plots import plot_equity, plot_weights

            plot_equity(report, stage / "equity.png")
            plot_weights(report.result, stage / "weights.png")
            files["equity_plot"], files["weights_plot"] = str(out / "equity.png"), str(out / "weights.png")
        files["report"] = str(out / "report.json")
        report.out_dir = out
        report.files = files
        atomic.write_json(stage / "report.json", report.to_dict())


# every file ``write_report`` may write (only these are ever removed from a reused --out folder)
REPORT_FILES = ("windows.json", "trades.jsonl", "equity.csv", "equity.png", "weights.png", "report.json")
