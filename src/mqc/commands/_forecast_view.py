"""Rich tables for ``mqc forecast`` (imported inside command bodies only)."""

from __future__ import annotations

import math

from rich.table import Table

from mqc.commands._console import fmt_num, fmt_pct


def short_path(path: str | None) -> str | None:
    """``.../hyperparams/ewma-vol/SP500.json`` -> ``hyperparams/ewma-vol/SP500.json`` (fits a table cell)."""
    if not path:
        return None
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-3:])


def fmt_price(v: float | None) -> str:
    """A price in fixed notation with at least 6 significant digits and at least 2 decimals.

    ``49590.12`` (not ``4.959e+04``, which hides the spread between quantiles of a crypto price),
    ``1.08423`` for FX, ``0.000012345`` for micro-priced tokens; never scientific notation.
    """
    if v is None or not math.isfinite(v):
        return "-"
    if v == 0:
        return "0.00"
    magnitude = math.floor(math.log10(abs(v))) + 1  # digits before the decimal point
    decimals = min(12, max(2, 6 - magnitude))
    return f"{v:,.{decimals}f}"


def forecast_tables(result) -> list[Table]:
    """One table per symbol: close quantiles per future bar, with % change vs the last close."""
    tables = []
    for s, fc in result.forecasts.items():
        t = Table(title=f"{s}  {fc.model}  last close {fmt_price(fc.last_close)} at {fc.origin:%Y-%m-%d %H:%M}")
        t.add_column("step", justify="right")
        t.add_column("timestamp (UTC)")
        for q in fc.quantile_levels:
            t.add_column(f"q{q:g}", justify="right")
            t.add_column("%", justify="right", style="dim")
        close = fc.field("close")
        for h, ts in enumerate(fc.timestamps):
            cells = [str(h + 1), f"{ts:%Y-%m-%d %H:%M}"]
            for qi in range(len(fc.quantile_levels)):
                v = float(close[qi, h])
                cells += [fmt_price(v), fmt_pct(v / fc.last_close - 1.0)]
            t.add_row(*cells)
        tables.append(t)
    return tables


_EVAL_COLS = ("mae", "mase", "crps", "wql", "coverage_50", "coverage_80", "coverage_90", "hit_rate", "rank_ic")
# One unit per metric in every forecast table (eval, tune, select): losses measured on returns vs the
# origin close (mae, crps, wql) and shares (coverage, hit rate) in percent; mase (a ratio to
# persistence) and rank_ic (a correlation) as plain numbers. JSON keeps the raw fractions.
PCT_METRICS = frozenset({"mae", "crps", "wql", "coverage_50", "coverage_80", "coverage_90", "coverage_error", "hit_rate"})
_SHORT = {"coverage_50": "cov50", "coverage_80": "cov80", "coverage_90": "cov90", "hit_rate": "hit", "rank_ic": "ric"}


def metric_header(name: str, short: bool = False) -> str:
    """Column header of a metric, with its unit: ``crps %``, ``mase``."""
    label = _SHORT.get(name, name) if short else name
    return f"{label} %" if name in PCT_METRICS else label


def fmt_metric(name: str, value: float | None) -> str:
    """A metric value in its one unit (see ``PCT_METRICS``): ``0.585%``, ``1.000``."""
    return fmt_pct(value, 3) if name in PCT_METRICS else fmt_num(value, 3)


def eval_table(result) -> Table:
    asked = result.requested_origins
    short_of = f" (of {asked} requested)" if asked and asked > len(result.origins) else ""
    t = Table(title=f"rolling-origin eval: {len(result.symbols)} symbols x {len(result.origins)} origins{short_of} "
                    f"({result.origins[0]:%Y-%m-%d} .. {result.origins[-1]:%Y-%m-%d})")
    for c in ("model", "h", *_EVAL_COLS, "sec"):
        t.add_column(metric_header(c, short=True), justify="left" if c == "model" else "right", no_wrap=True)
    for r in sorted(result.rows, key=lambda r: (r["horizon"], r["model"])):
        cells = [r["model"], str(r["horizon"])]
        for c in _EVAL_COLS:
            cells.append(fmt_metric(c, r.get(c)))
        cells.append(f"{result.seconds.get(r['model'], 0.0):.2f}")
        t.add_row(*cells)
    applied = [f"{m} {s}: {short_path(p)}" for m, files in result.settings_files.items() for s, p in files.items() if p]
    if applied:
        t.caption = "settings: " + "; ".join(applied)
    return t


def tune_table(res) -> Table:
    t = Table(title=f"tune {res.symbol} {res.model}: {res.metric} on validation origins (lower is better unless hit_rate/rank_ic)")
    t.add_column("settings")
    t.add_column(metric_header(res.metric), justify="right")
    for tr in res.trials:
        mark = " *" if tr["settings"] == res.best else ""
        t.add_row((", ".join(f"{k}={v}" for k, v in tr["settings"].items()) or "(defaults)") + mark, fmt_metric(res.metric, tr["score"]))
    t.add_row(f"test score of the winner ({', '.join(f'{k}={v}' for k, v in res.best.items())})", fmt_metric(res.metric, res.test.get("score")))
    return t


def select_table(res) -> Table:
    t = Table(title=f"model selection by {res.metric} (validation origins; test score of the choice)")
    unit = metric_header(res.metric)
    for c in ("symbol", "model", f"validation {unit}", f"test {unit}", "settings"):
        t.add_column(c)
    for s, ch in res.choices.items():
        settings = short_path(ch.get("settings_file")) or "defaults"
        t.add_row(s, ch["model"], fmt_metric(res.metric, ch["validation"][ch["model"]]), fmt_metric(res.metric, ch["test"][ch["model"]]), settings)
    return t
