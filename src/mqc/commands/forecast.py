"""``mqc forecast``: probabilistic OHLC forecasts, rolling-origin evaluation, tuning and model selection.

``mqc forecast AAPL ...`` is shorthand for ``mqc forecast run AAPL ...``: the group routes any first
argument that is not a subcommand name to ``run`` (see ``DefaultRunGroup``).
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from mqc.commands import _options as o
from mqc.commands._console import RichProgress, info, out, print_json, state, want_json, warn
from mqc.commands._options import split_list, symbols_from


class DefaultRunGroup(TyperGroup):
    """A group whose default subcommand is ``run``: ``mqc forecast AAPL`` == ``mqc forecast run AAPL``."""

    def parse_args(self, ctx, args):  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultRunGroup,
    help="Forecast OHLC quantiles (mqc forecast AAPL --model naive), evaluate, tune and select models.",
    no_args_is_help=True,
)

ModelsOpt = typer.Option("naive,ewma-vol,bootstrap", "--models", help="Comma-separated models to compare.")
HpDirOpt = o.HYPERPARAMS_DIR()
TF_HELP = "Bar size in the catalog (default 1d)."
# config fields of these: CONFIG_OPTIONS in _help.py (the forecast commands build their flags by hand)
MODEL = o.MODEL
ORIGINS = o.ORIGINS
STEP = o.STEP
METRIC = o.Flag(("--metric",), "Metric.")
QUANTILES = o.Flag(("--quantiles",), "Quantile levels, e.g. 0.1,0.5,0.9.")
CONTEXT = o.Flag(("--context-length",), "Context bars.")
ModelPathOpt = o.MODEL_PATH()
TokenizerPathOpt = typer.Option(None, "--tokenizer-path", help="Kronos tokenizer: local dir or cached HF id.")


# Kept in sync with core/forecast/config.py DTYPE_CHOICES (a test checks it).
_DTYPES = ("auto", "fp32", "float32", "bf16", "bfloat16")


def _levels(text: str | None) -> tuple[float, ...] | None:
    items = split_list(text)
    if items is None:
        return None
    try:
        return tuple(float(x) for x in items)
    except ValueError as exc:
        raise typer.BadParameter(f"quantiles must be numbers, got {text!r}") from exc


@app.command("run")
def run(
    symbols: list[str] = typer.Argument(None, help="Symbols (space- or comma-separated)."),
    model: str = MODEL(help="Forecaster (naive, ewma-vol, chronos2, ..., or best)."),
    horizon: int = o.HORIZON(sets=None, help="Bars to forecast."),
    quantiles: str = QUANTILES(help="Quantile levels, e.g. 0.1,0.5,0.9."),
    timeframe: str = o.TIMEFRAME(help=TF_HELP, sets=None),
    end: str = o.END(sets=None, help="Forecast as of this date (default: the latest bar)."),
    model_path: str = ModelPathOpt,
    tokenizer_path: str = TokenizerPathOpt,
    context_length: int = CONTEXT(help="Context bars."),
    batch_size: int = typer.Option(None, "--batch-size", help="Symbols per forward pass."),
    device: str = o.DEVICE(sets=None, help="cpu, cuda, cuda:0."),
    dtype: str = o.DTYPE(
        sets=None,
        help="auto | fp32 | float32 | bf16 | bfloat16 (CUDA); auto = fp32 on CPU, bf16 on CUDA.",
        callback=o.choice(_DTYPES, "--dtype"),
    ),
    attn: str = typer.Option(None, "--attn", help="sdpa | eager.", callback=o.choice(("sdpa", "eager"), "--attn")),
    compile_: bool = o.COMPILE(sets=None, help="torch.compile (CUDA only)."),
    volume: bool = typer.Option(
        None, "--volume-covariate/--no-volume-covariate", help="Chronos-2: log volume as a past covariate."
    ),
    threads: int = o.THREADS(sets=None, help="torch CPU threads."),
    hyperparams_dir: str = HpDirOpt,
    out_path: str = o.OUT(help="Also write the forecast table to FILE.csv or FILE.parquet."),
    plot: str = typer.Option(None, "--plot", help="Write a PNG fan chart here."),
    json_out: bool = o.JSON(),
) -> None:
    """Forecast SYMBOLS from their latest bar: quantiles of price and % change vs the last close."""
    from mqc.core.forecast.service import run_forecast, save_forecasts

    flags = {
        "model": model,
        "prediction_length": horizon,
        "quantile_levels": _levels(quantiles),
        "timeframe": timeframe,
        "model_id": model_path,
        "tokenizer_path": tokenizer_path,
        "context_length": context_length,
        "batch_size": batch_size,
        "device": device,
        "dtype": dtype,
        "attn": attn,
        "compile": compile_,
        "volume_covariate": volume,
        "threads": threads,
        "hyperparams_dir": hyperparams_dir,
    }
    result = run_forecast(symbols_from(symbols, None), profile=state().profile, flags=flags, end=end)
    if out_path:
        info(f"wrote {save_forecasts(result, out_path)}")
    if plot:
        from mqc.core.forecast.plotting import fan_chart
        from mqc.core.forecast.service import load_frames

        tf = next(iter(result.configs.values())).timeframe
        info(f"wrote {fan_chart(result.forecasts, load_frames(list(result.forecasts), tf, end=end), plot)}")
    if want_json(json_out):
        print_json(result.to_dict())
        return
    from mqc.commands._forecast_view import forecast_tables

    for table in forecast_tables(result):
        out.print(table)
    for s, path in result.hyperparams_files.items():
        chosen = result.selection_files.get(s)
        if path or chosen:
            out.print(
                f"{s} settings: {path or 'defaults (no hyperparams file)'}"
                + (f" (model chosen by {chosen})" if chosen else ""),
                highlight=False,
                soft_wrap=True,
            )


def _symbols(args: list[str] | None, command: str) -> tuple[str, ...]:
    """Positional symbols, or a usage error (exit 2) naming what to pass."""
    from mqc.core.errors import UsageError

    symbols = symbols_from(args, None)
    if not symbols:
        raise UsageError(
            f"mqc forecast {command}: name at least one symbol",
            hint=(
                f"e.g. mqc forecast {command} AAPL MSFT --models naive,ewma-vol (mqc data list shows the stored"
                " symbols)"
            ),
        )
    return symbols


JointOpt = typer.Option(
    None,
    "--joint-origins/--per-symbol-origins",
    help=(
        "Score every model on the latest origins common to all symbols (same dates; RankIC on every origin) instead of"
        " each symbol's own."
    ),
)


def _eval_config(origins, step, horizon, quantiles, metric=None, test_frac=None, joint_origins=None):
    from mqc.core.forecast.config import EvalConfig
    from mqc.core.profiles import resolve_with_profile

    flags = {
        "origins": origins,
        "step": step,
        "horizons": o.int_list(horizon, "--horizon"),
        "quantile_levels": _levels(quantiles),
        "metric": metric,
        "test_frac": test_frac,
        "joint_origins": joint_origins,
    }
    return resolve_with_profile(EvalConfig, state().profile, flags=flags).value


def _settings(models, frames, timeframe, model_path, hyperparams_dir, context_length, tokenizer_path, levels):
    """Each candidate's per-symbol settings, resolved like ``forecast run`` (tuned files applied)."""
    from mqc.core.forecast.service import model_settings

    if not models:
        raise typer.BadParameter("name at least one model, e.g. naive,ewma-vol", param_hint="--models")
    flags = {
        "timeframe": timeframe,
        "model_id": model_path,
        "tokenizer_path": tokenizer_path,
        "hyperparams_dir": hyperparams_dir,
        "context_length": context_length,
    }
    settings = model_settings(models, list(frames), profile=state().profile, flags=flags, quantile_levels=levels)
    for m, files in settings.files.items():
        for s, path in files.items():
            if path:
                info(f"{s} {m} settings: {path}")
    return settings


def _warn_origins(result) -> None:
    """Warn when a symbol (or the common history) holds fewer origins than ``--origins`` asked for."""
    requested = result.requested_origins
    if requested is None:
        return
    if result.grid.joint:
        used = len(result.origins)
        if used < requested:
            warn(f"--origins {requested} asked for more origins than the common history allows: used {used}")
        return
    short = {s: n for s, n in result.grid.counts.items() if n < requested}
    if short:
        warn(
            f"--origins {requested} asked for more origins than the history allows: "
            + ", ".join(f"{s} used {n}" for s, n in short.items())
        )


def _base_config(timeframe, model_path, hyperparams_dir, context_length=None, model=None, tokenizer_path=None):
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.forecast.service import resolve_base
    from mqc.core.profiles import resolve_with_profile

    flags = {
        "timeframe": timeframe,
        "model_id": model_path,
        "tokenizer_path": tokenizer_path,
        "hyperparams_dir": hyperparams_dir,
        "context_length": context_length,
        "model": model,
    }
    if model is not None:  # tune: the model searched must exist (a bad --model is a usage error)
        return resolve_base(state().profile, flags)
    return resolve_with_profile(ForecastConfig, state().profile, flags=flags).value


@app.command("eval")
def eval_(
    symbols: list[str] = typer.Argument(None, help="Symbols to evaluate."),
    models: str = ModelsOpt,
    origins: int = ORIGINS(help="Rolling origins per symbol (its latest usable bars)."),
    step: int = STEP(help="Bars between origins."),
    joint_origins: bool = JointOpt,
    horizon: str = o.HORIZON(sets=None, help="Horizons to score, e.g. 1,7."),
    quantiles: str = QUANTILES(help="Levels asked of every model."),
    timeframe: str = o.TIMEFRAME(help=TF_HELP, sets=None),
    context_length: int = CONTEXT(help="Context bars per origin."),
    model_path: str = ModelPathOpt,
    tokenizer_path: str = TokenizerPathOpt,
    hyperparams_dir: str = HpDirOpt,
    out_path: str = o.OUT(help="Results JSON (default: <runs dir>/forecast-eval/<time>.json)."),
    json_out: bool = o.JSON(),
) -> None:
    """Rolling-origin, strictly causal evaluation of several models side by side: each symbol on its own origins
    (tuned per-symbol settings applied)."""
    from mqc.core.forecast.service import load_frames
    from mqc.core.forecast.tuning import run_eval

    ec = _eval_config(origins, step, horizon, quantiles, joint_origins=joint_origins)
    base = _base_config(timeframe, model_path, hyperparams_dir, context_length, tokenizer_path=tokenizer_path)
    frames = load_frames(_symbols(symbols, "eval"), base.timeframe)
    settings = _settings(
        split_list(models) or (),
        frames,
        timeframe,
        model_path,
        hyperparams_dir,
        context_length,
        tokenizer_path,
        ec.quantile_levels,
    )
    with RichProgress() as progress:
        result, path = run_eval(
            frames, settings.configs, ec, out=out_path, progress=progress, settings_files=settings.files
        )
    _warn_origins(result)
    info(f"results saved to {path}")
    if want_json(json_out):
        print_json({**result.to_dict(), "path": str(path)})
        return
    from mqc.commands._forecast_view import eval_tables

    for table in eval_tables(result):
        out.print(table)


@app.command("tune")
def tune(
    symbol: str = typer.Argument(..., help="Symbol to tune."),
    model: str = MODEL("chronos2", help="Model whose settings are searched."),
    grid: str = typer.Option(None, "--grid", help="KEY=V1,V2;KEY=... (default: the model's grid)."),
    metric: str = METRIC(
        help=f"Metric to optimise: {', '.join(o.PER_SYMBOL_METRICS)}.",
        callback=o.choice(o.PER_SYMBOL_METRICS, "--metric"),
    ),
    origins: int = ORIGINS(help="Origins (validation + test)."),
    step: int = STEP(help="Bars between origins."),
    horizon: str = o.HORIZON(sets=None, help="Horizons scored, e.g. 1,7."),
    timeframe: str = o.TIMEFRAME(help=TF_HELP, sets=None),
    model_path: str = ModelPathOpt,
    tokenizer_path: str = TokenizerPathOpt,
    hyperparams_dir: str = HpDirOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Search settings on validation origins, score the winner on test origins, write
    hyperparams/<model>/<SYMBOL>.<tf>.json."""
    from mqc.core.forecast.service import load_frames
    from mqc.core.forecast.tuning import parse_grid
    from mqc.core.forecast.tuning import tune as tune_core

    ec = _eval_config(origins, step, horizon, None, metric)
    base = _base_config(timeframe, model_path, hyperparams_dir, model=model, tokenizer_path=tokenizer_path)
    frames = load_frames([symbol.upper()], base.timeframe)
    with RichProgress() as progress:
        res = tune_core(frames, next(iter(frames)), base, ec, parse_grid(grid, model), progress=progress)
    if want_json(json_out):
        print_json(res.to_dict())
        return
    from mqc.commands._forecast_view import tune_table

    out.print(tune_table(res))
    out.print(f"wrote {res.path}")


@app.command("select")
def select(
    symbols: list[str] = typer.Argument(None, help="Symbols to choose a model for."),
    models: str = ModelsOpt,
    metric: str = METRIC(
        help=f"Metric deciding the choice: {', '.join(o.PER_SYMBOL_METRICS)}.",
        callback=o.choice(o.PER_SYMBOL_METRICS, "--metric"),
    ),
    origins: int = ORIGINS(help="Origins per symbol (validation + test)."),
    joint_origins: bool = JointOpt,
    horizon: str = o.HORIZON(sets=None, help="Horizons scored, e.g. 1,7."),
    timeframe: str = o.TIMEFRAME(help=TF_HELP, sets=None),
    model_path: str = ModelPathOpt,
    tokenizer_path: str = TokenizerPathOpt,
    hyperparams_dir: str = HpDirOpt,
    by: str = typer.Option(
        None,
        "--by",
        help="What decides: pnl (the trading result of --strategy on the val split) or a metric "
        f"({', '.join(o.PER_SYMBOL_METRICS)}; default crps).",
        callback=o.choice(("pnl", *o.PER_SYMBOL_METRICS), "--by"),
    ),
    strategy: str = o.STRATEGY("maxdiff", help="--by pnl: the order strategy traded on each model's forecasts."),
    fit_window: int = o.FIT_WINDOW(help="--by pnl: trailing bars per walk-forward fit (0: no fit)."),
    refit_every: int = o.REFIT_EVERY(help="--by pnl: bars between re-fits."),
    json_out: bool = o.JSON(),
) -> None:
    """Pick each symbol's model on validation data (a forecast metric, or trading result with --by pnl).

    Writes hyperparams/best/<SYMBOL>.<tf>.json.
    """
    from mqc.core.forecast.service import load_frames
    from mqc.core.forecast.tuning import select as select_core

    if by is not None and by != "pnl" and metric is not None and metric != by:
        raise typer.BadParameter(f"--by {by} and --metric {metric} disagree: give one", param_hint="--by")
    ec = _eval_config(
        origins, None, horizon, None, metric or (by if by != "pnl" else None), joint_origins=joint_origins
    )
    base = _base_config(timeframe, model_path, hyperparams_dir, tokenizer_path=tokenizer_path)
    frames = load_frames(_symbols(symbols, "select"), base.timeframe)
    names = split_list(models) or ()
    settings = _settings(
        names, frames, timeframe, model_path, hyperparams_dir, None, tokenizer_path, ec.quantile_levels
    )
    with RichProgress() as progress:
        if by == "pnl":
            from mqc.core.backtest.config import OrderBacktestConfig
            from mqc.core.backtest.order_select import select_by_pnl
            from mqc.core.data.config import SplitConfig
            from mqc.core.market.config import MarketConfig
            from mqc.core.profiles import resolve_with_profile

            profile = state().profile
            flags = {"strategy": strategy, "fit_window": fit_window, "refit_every": refit_every}
            ocfg = resolve_with_profile(OrderBacktestConfig, profile, flags=flags).value
            res = select_by_pnl(
                list(frames),
                names,
                settings,
                base,
                strategy=strategy,
                order_cfg=ocfg,
                market=resolve_with_profile(MarketConfig, profile).value,
                split_cfg=resolve_with_profile(SplitConfig, profile).value,
                progress=progress,
            )
        else:
            res = select_core(frames, names, base, ec, progress=progress, settings=settings)
    if want_json(json_out):
        print_json(res.to_dict())
        return
    from mqc.commands._forecast_view import pnl_select_table, select_table

    out.print(pnl_select_table(res) if by == "pnl" else select_table(res))


@app.command("models")
def models_(json_out: bool = o.JSON()) -> None:
    """List the forecasters that can be named with --model."""
    from mqc.core.forecast.base import available

    names = available()
    if want_json(json_out):
        print_json(names)
        return
    out.print("\n".join(names))
