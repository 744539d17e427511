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
PCT_METRICS = frozenset(
    {"mae", "crps", "wql", "coverage_50", "coverage_80", "coverage_90", "coverage_error", "hit_rate"}
)
_SHORT = {"coverage_50": "cov50", "coverage_80": "cov80", "coverage_90": "cov90", "hit_rate": "hit", "rank_ic": "ric"}


def metric_header(name: str, short: bool = False) -> str:
    """Column header of a metric, with its unit: ``crps %``, ``mase``."""
    label = _SHORT.get(name, name) if short else name
    return f"{label} %" if name in PCT_METRICS else label


def fmt_metric(name: str, value: float | None) -> str:
    """A metric value in its one unit (see ``PCT_METRICS``): ``0.585%``, ``1.000``."""
    return fmt_pct(value, 3) if name in PCT_METRICS else fmt_num(value, 3)


def _day(iso: str | None) -> str:
    return iso[:10] if iso else "-"


def _metric_table(title: str, rows: list[dict], seconds: dict[str, float] | None, by_symbol: bool) -> Table:
    t = Table(title=title)
    cols = [c for c in _EVAL_COLS if not (by_symbol and c == "rank_ic")]  # RankIC is across symbols
    for c in ("model", *(("symbol", "n") if by_symbol else ()), "h", *cols, *(("sec",) if seconds else ())):
        t.add_column(
            metric_header(c, short=True), justify="left" if c in ("model", "symbol") else "right", no_wrap=True
        )
    for r in sorted(rows, key=lambda r: (r["horizon"], r["model"], r.get("symbol", ""))):
        cells = [r["model"], *((r["symbol"], str(r["n"])) if by_symbol else ()), str(r["horizon"])]
        cells += [fmt_metric(c, r.get(c)) for c in cols]
        if seconds:
            cells.append(f"{seconds.get(r['model'], 0.0):.2f}")
        t.add_row(*cells)
    return t


def eval_tables(result) -> list:
    """The pooled table (titled with the origins used), then one row per symbol when there are several."""
    d = result.to_dict()
    asked = result.requested_origins
    per = d["origins"]["per_symbol"]
    if d["origins"]["mode"] == "joint":
        short_of = f" (of {asked} requested)" if asked and asked > d["n_origins"] else ""
        where = f"{d['n_origins']} common origins{short_of} ({_day(d['first_origin'])} .. {_day(d['last_origin'])})"
    else:
        short = [s for s, o in per.items() if asked and o["n"] < asked]
        where = "per-symbol origins: " + ", ".join(
            f"{s} {o['n']}{'*' if s in short else ''} ({_day(o['first'])} .. {_day(o['last'])})" for s, o in per.items()
        )
        if short:
            where += f" (* fewer than the {asked} requested)"
    t = _metric_table(
        f"rolling-origin eval: {len(result.symbols)} symbol(s), {where}", result.rows, result.seconds, by_symbol=False
    )
    notes = [
        f"{m}: {o['n']} origins common to every symbol ({_day(o['first'])} .. {_day(o['last'])}), because it shares"
        " information across the symbols of a call"
        for m, o in d["joint_origins_by_model"].items()
    ]
    applied = [f"{m} {s}: {short_path(p)}" for m, files in result.settings_files.items() for s, p in files.items() if p]
    if applied:
        notes.append("settings: " + "; ".join(applied))
    if notes:
        t.caption = "\n".join(notes)
    tables = [t]
    if len(result.symbols) > 1:
        tables.append(
            _metric_table("per symbol (each on the origins its model used)", result.per_symbol, None, by_symbol=True)
        )
    return tables


def tune_table(res) -> Table:
    t = Table(
        title=(
            f"tune {res.symbol} {res.model}: {res.metric} on validation origins (lower is better unless"
            " hit_rate/rank_ic)"
        )
    )
    t.add_column("settings")
    t.add_column(metric_header(res.metric), justify="right")
    for tr in res.trials:
        mark = " *" if tr["settings"] == res.best else ""
        t.add_row(
            (", ".join(f"{k}={v}" for k, v in tr["settings"].items()) or "(defaults)") + mark,
            fmt_metric(res.metric, tr["score"]),
        )
    t.add_row(
        f"test score of the winner ({', '.join(f'{k}={v}' for k, v in res.best.items())})",
        fmt_metric(res.metric, res.test.get("score")),
    )
    return t


def select_table(res) -> Table:
    origins = "each symbol's own origins" if res.origins == "per-symbol" else "origins common to every symbol"
    if res.sharing:
        origins += f", because {', '.join(res.sharing)} share(s) information across the symbols of a call"
    t = Table(title=f"model selection by {res.metric} (validation origins; test score of the choice; {origins})")
    unit = metric_header(res.metric)
    for c in ("symbol", "model", f"validation {unit}", f"test {unit}", "settings"):
        t.add_column(c)
    for s, ch in res.choices.items():
        settings = short_path(ch.get("settings_file")) or "defaults"
        t.add_row(
            s,
            ch["model"],
            fmt_metric(res.metric, ch["validation"][ch["model"]]),
            fmt_metric(res.metric, ch["test"][ch["model"]]),
            settings,
        )
    return t


def pnl_select_table(res) -> Table:
    """``forecast select --by pnl``: each symbol's choice and every candidate's val / test return."""
    t = Table(title=f"model selection by {res.metric}; test figures recorded, not used to choose")
    for c in ("symbol", "model", "val return", "test return", "candidates (val return)", "file"):
        t.add_column(c)
    for s, ch in res.choices.items():
        others = ", ".join(f"{m} {fmt_pct(v)}" for m, v in ch["validation"].items())
        t.add_row(
            s,
            ch["model"],
            fmt_pct(ch["validation"][ch["model"]]),
            fmt_pct(ch["test"][ch["model"]]),
            others,
            short_path(ch["path"]),
        )
    return t
