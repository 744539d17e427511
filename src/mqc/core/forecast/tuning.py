"""``forecast eval`` / ``tune`` / ``select``: the evaluation harness applied to settings and models.

``tune`` searches a grid of settings on validation origins only, then scores the winner once on
later test origins (an embargo of the longest horizon in between) and writes
``<model>/<SYMBOL>.<tf>.json``. ``select`` scores several models on validation origins, keeps each
symbol's best by a named metric, and writes ``best/<SYMBOL>.<tf>.json`` with its test score.
Each symbol is split on its own origins (its history need not overlap the others'); when a
candidate shares information across series (Chronos-2 cross-learning), or with ``joint_origins``,
every candidate is scored on the origins common to all symbols.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mqc import __version__
from mqc.core import atomic, config, paths
from mqc.core.data.catalog import frame_hash
from mqc.core.errors import ConfigError, UsageError
from mqc.core.forecast import hyperparams
from mqc.core.forecast.config import EvalConfig, ForecastConfig
from mqc.core.forecast.evaluation import (
    JOINT,
    JOINT_WHY,
    PER_SYMBOL,
    EvalResult,
    evaluate,
    joint_labels,
    model_configs,
    origin_grid,
    sharing_why,
    split_origins,
)
from mqc.core.forecast.scoring import best_candidate, check_per_symbol_metric
from mqc.core.forecast.service import ModelSettings
from mqc.core.progress import NULL, Progress

DEFAULT_GRIDS: dict[str, dict[str, tuple]] = {
    "chronos2": {"context_length": (128, 256, 512, 1024, 2048), "volume_covariate": (False, True)},
    "chronos-bolt": {"context_length": (128, 256, 512, 1024, 2048)},
    "chronos": {"context_length": (128, 256, 512)},
    "ewma-vol": {"ewma_lambda": (0.9, 0.94, 0.97, 0.99)},
    "hist-vol": {"window": (20, 60, 120, 250, 500)},
    "drift": {"window": (20, 60, 120, 250, 500)},
    "bootstrap": {"window": (60, 120, 250, 500), "block_length": (1, 5, 20)},
    "garch": {"window": (250, 500, 1000)},
    "seasonal-naive": {"season_length": (5, 7, 21)},
    "naive": {},
}


def parse_grid(text: str | None, model: str) -> dict[str, tuple]:
    """``"context_length=256,512;volume_covariate=true,false"`` -> typed grid (default: the model's grid).

    Raises:
        UsageError: malformed text, an unknown key (with did-you-mean) or a value of the wrong type
        (``--grid`` is a command-line value: exit 2).
    """
    if not text:
        return dict(DEFAULT_GRIDS.get(model, {}))
    types_ = config.field_types(ForecastConfig)
    grid: dict[str, tuple] = {}
    try:
        for part in filter(None, (p.strip() for p in text.split(";"))):
            if "=" not in part:
                raise ConfigError(f"--grid {part!r}: use KEY=V1,V2 separated by ';'")
            key, values = (x.strip() for x in part.split("=", 1))
            config.check_keys(ForecastConfig, {key: None}, "--grid")
            grid[key] = tuple(
                config.coerce(v.strip(), types_[key], f"--grid {key}") for v in values.split(",") if v.strip()
            )
    except ConfigError as exc:
        raise UsageError(str(exc), hint=exc.hint or 'e.g. --grid "ewma_lambda=0.9,0.94;window=60,250"') from exc
    return grid


def _metadata(frames: Mapping[str, pd.DataFrame], extra: dict | None = None) -> dict[str, Any]:
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mqc_version": __version__,
        "data_fingerprint": {s: frame_hash(df)[:16] for s, df in frames.items()},
        **(extra or {}),
    }


def _lengths(frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Bars per symbol (named when the history is too short for enough validation origins)."""
    return {s: len(f) for s, f in frames.items()}


def _windows(val, test, symbol: str) -> dict[str, Any]:
    """One symbol's validation and test origins (each symbol is split on its own origins)."""

    def span(grid) -> dict[str, Any]:
        ts = grid.timestamps_of(symbol)
        return {"first_origin": ts[0].isoformat(), "last_origin": ts[-1].isoformat(), "origins": len(ts)}

    return {"validation": span(val), "test": span(test), "joint": bool(val.joint)}


def run_eval(
    frames,
    models: Mapping[str, ForecastConfig | Mapping[str, ForecastConfig]],
    eval_config: EvalConfig,
    *,
    out: str | Path | None = None,
    progress: Progress = NULL,
    settings_files: Mapping[str, Mapping[str, str | None]] | None = None,
) -> tuple[EvalResult, Path]:
    """``evaluate`` and save the result JSON (default: ``<runs dir>/forecast-eval/<utc time>.json``).

    The JSON records ``requested_origins`` next to ``n_origins`` (fewer when the history is short)
    and, per model and symbol, the hyperparams file whose settings were applied.
    """
    result = evaluate(frames, models, eval_config, progress=progress, settings_files=settings_files)
    path = Path(out) if out else paths.fresh_name(paths.runs_dir() / "forecast-eval", ".json")
    atomic.write_json(path, {**result.to_dict(), "metadata": _metadata(frames)})
    return result, path


def candidate(cfg: ForecastConfig, eval_config: EvalConfig) -> ForecastConfig:
    """A setting as scored: ``cfg`` asked for the evaluation's quantile levels."""
    return dataclasses.replace(cfg, quantile_levels=eval_config.quantile_levels)


def windows(data: Mapping[str, pd.DataFrame], min_context: int, eval_config: EvalConfig) -> tuple[Any, Any]:
    """The validation and test origins of ``tune`` (an embargo of the longest horizon in between).

    ``min_context`` is the most context any compared setting needs (the largest ``min_context`` of
    the grid), so every setting is scored on the same origins.
    """
    grid_all = origin_grid(data, eval_config.origins, eval_config.step, min_context, eval_config.max_horizon)
    return split_origins(
        grid_all, eval_config.test_frac, eval_config.max_horizon, eval_config.step, bars=_lengths(data)
    )


def score_setting(
    data: Mapping[str, pd.DataFrame],
    cfg: ForecastConfig,
    eval_config: EvalConfig,
    grid: Any,
    *,
    progress: Progress = NULL,
) -> tuple[float | None, EvalResult]:
    """One setting's score on ``grid``'s origins: ``(metric, the evaluation)``, one ``evaluate`` call.

    The per-setting step of ``tune`` (and of each trial of ``mqc sweep forecast``): the metric is
    the mean over the scored horizons (pooled over the symbols of ``data``).
    """
    res = evaluate(data, {cfg.model: cfg}, eval_config, grid=grid, progress=progress)
    return res.metric(cfg.model, eval_config.metric), res


@dataclass
class TuneResult:
    symbol: str
    model: str
    metric: str
    best: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    test: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "model": self.model,
            "metric": self.metric,
            "best": self.best,
            "trials": self.trials,
            "test": self.test,
            "path": str(self.path) if self.path else None,
        }


def tune(
    frames: Mapping[str, pd.DataFrame],
    symbol: str,
    base_config: ForecastConfig,
    eval_config: EvalConfig,
    grid: Mapping[str, tuple],
    *,
    progress: Progress = NULL,
) -> TuneResult:
    """Grid-search ``base_config`` for ``symbol`` on validation origins; score the winner on test origins.

    Writes ``<hyperparams dir>/<model>/<SYMBOL>.<tf>.json`` (tf: ``base_config.timeframe``).

    Raises:
        ConfigError: unknown or cross-sectional metric; DataError: no setting has a score.
    """
    check_per_symbol_metric(eval_config.metric, "forecast tune")  # before any work
    data = {symbol: frames[symbol]}
    keys = list(grid)
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))] or [{}]
    cands = [(combo, candidate(dataclasses.replace(base_config, **combo), eval_config)) for combo in combos]
    val, test = windows(data, max(c.min_context for _, c in cands), eval_config)
    trials = []
    for combo, cfg in cands:
        score, res = score_setting(data, cfg, eval_config, val, progress=progress)
        trials.append({"settings": combo, "score": score, "metrics": res.rows})
    best_i = int(
        best_candidate(
            {str(i): t["score"] for i, t in enumerate(trials)}, eval_config.metric, f"forecast tune {symbol}"
        )
    )
    combo, cfg = cands[best_i]
    test_score, test_res = score_setting(data, cfg, eval_config, test, progress=progress)
    test_block = {"metric": eval_config.metric, "score": test_score, "metrics": test_res.rows}
    validation = {
        "metric": eval_config.metric,
        "score": trials[best_i]["score"],
        "best": combo,
        "trials": [{"settings": t["settings"], "score": t["score"]} for t in trials],
    }
    path = save_tuned(data, symbol, cfg, base_config, eval_config, validation, test_block, _windows(val, test, symbol))
    return TuneResult(symbol, cfg.model, eval_config.metric, combo, trials, test_block, path)


def save_tuned(
    data: Mapping[str, pd.DataFrame],
    symbol: str,
    cfg: ForecastConfig,
    base_config: ForecastConfig,
    eval_config: EvalConfig,
    validation: dict[str, Any],
    test_block: dict[str, Any],
    windows_: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a tuned setting as ``<hyperparams dir>/<model>/<SYMBOL>.<tf>.json`` (``forecast tune``'s record;
    ``mqc sweep forecast --save-best`` writes the same). ``cfg`` is stored with ``base_config``'s levels."""
    hp = hyperparams.Hyperparams(
        symbol=symbol,
        model=cfg.model,
        config=hyperparams.stored_config(dataclasses.replace(cfg, quantile_levels=base_config.quantile_levels)),
        validation=validation,
        test=test_block,
        windows=windows_,
        metadata=_metadata(
            {symbol: data[symbol]}, {"horizons": list(eval_config.horizons), "step": eval_config.step, **(extra or {})}
        ),
    )
    return hyperparams.save(hp, cfg.model, base_config.hyperparams_dir)


def score_symbols(
    frames: Mapping[str, pd.DataFrame],
    cfg: ForecastConfig,
    eval_config: EvalConfig,
    min_context: int,
    split: str,
    shown: Sequence[str],
    *,
    progress: Progress = NULL,
) -> dict[str, dict[str, Any]]:
    """Each symbol scored alone, exactly as ``tune`` scores a setting for it: its own ``windows``
    (``split`` ``validation`` or ``test``) and one ``score_setting``. Per symbol: ``score`` (the
    eval metric), ``metrics`` (each of ``shown``, mean over horizons), ``rows`` and ``windows``."""
    out: dict[str, dict[str, Any]] = {}
    for s, frame in frames.items():
        data = {s: frame}
        val, test = windows(data, min_context, eval_config)
        score, res = score_setting(data, cfg, eval_config, val if split == "validation" else test, progress=progress)
        out[s] = {
            "score": score,
            "metrics": {m: res.metric(cfg.model, m) for m in dict.fromkeys([eval_config.metric, *shown])},
            "rows": res.rows,
            "windows": _windows(val, test, s),
        }
    return out


@dataclass
class SelectResult:
    metric: str
    choices: dict[str, dict[str, Any]]  # symbol -> {"model", "validation", "test", "path", "settings_file", "windows"}
    origins: str = PER_SYMBOL  # per-symbol, or joint (every symbol on common origins)
    sharing: list[str] = field(default_factory=list)  # candidates that share across series (why origins are joint)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "origins": self.origins, "sharing": self.sharing, "choices": self.choices}


def select(
    frames: Mapping[str, pd.DataFrame],
    models: Sequence[str],
    base_config: ForecastConfig,
    eval_config: EvalConfig,
    *,
    progress: Progress = NULL,
    settings: ModelSettings | None = None,
) -> SelectResult:
    """Pick each symbol's model on validation origins by ``eval_config.metric``; write ``best/<SYMBOL>.<tf>.json``.

    Args:
        frames: per-symbol frames.
        models: candidate model names.
        base_config: settings shared by all candidates (and ``hyperparams_dir`` for the records).
        eval_config: origins, horizons, metric.
        progress: progress sink.
        settings: per model and symbol settings from ``service.model_settings`` (tuned files
            applied, as ``forecast run`` does); None = ``base_config`` for every candidate.

    Each record stores the chosen model's settings as scored and the hyperparams file they came
    from (``metadata.settings_file``), so ``--model best`` can be checked against them.

    Raises:
        ConfigError: no models, or an unknown or cross-sectional metric; DataError: no model has a score for a symbol.
    """
    check_per_symbol_metric(eval_config.metric, "forecast select")
    if not models:
        raise ConfigError("no models to choose from", hint="--models naive,ewma-vol,chronos2")
    if settings is None:
        shared = model_configs(models, base_config, eval_config.quantile_levels)
        settings = ModelSettings(
            {m: dict.fromkeys(frames, shared[m]) for m in models}, {m: dict.fromkeys(frames) for m in models}
        )
    cfgs = {
        m: {s: dataclasses.replace(settings.configs[m][s], quantile_levels=eval_config.quantile_levels) for s in frames}
        for m in models
    }
    min_ctx = max(c.min_context for per in cfgs.values() for c in per.values())
    # Every candidate of a symbol is scored on the same origins, so the choice compares like with
    # like: each symbol's own origins, or the common ones when a candidate shares across series.
    sharing = joint_labels(cfgs, list(frames))
    why = sharing_why(sharing) + "; every candidate is scored on the same origins" if sharing else JOINT_WHY
    grid_all = origin_grid(
        frames,
        eval_config.origins,
        eval_config.step,
        min_ctx,
        eval_config.max_horizon,
        joint=eval_config.joint_origins or bool(sharing),
        why=why,
    )
    val, test = split_origins(
        grid_all, eval_config.test_frac, eval_config.max_horizon, eval_config.step, bars=_lengths(frames)
    )
    val_res = evaluate(frames, cfgs, eval_config, grid=val, progress=progress, settings_files=settings.files)
    test_res = evaluate(frames, cfgs, eval_config, grid=test, progress=progress, settings_files=settings.files)
    # Choose for every symbol before writing any file: a symbol with no usable score fails the
    # whole run and leaves the stored records as they were.
    picks = {}
    for s in frames:
        scores = {m: val_res.metric(m, eval_config.metric, symbol=s) for m in models}
        picks[s] = (best_candidate(scores, eval_config.metric, f"forecast select {s}"), scores)
    choices: dict[str, dict[str, Any]] = {}
    for s, (best, scores) in picks.items():
        test_scores = {m: test_res.metric(m, eval_config.metric, symbol=s) for m in models}
        hp = hyperparams.Hyperparams(
            symbol=s,
            model=best,
            config=hyperparams.stored_config(
                dataclasses.replace(cfgs[best][s], quantile_levels=base_config.quantile_levels)
            ),
            validation={"metric": eval_config.metric, "scores": scores},
            test={"metric": eval_config.metric, "score": test_scores[best], "scores": test_scores},
            windows=_windows(val, test, s),
            metadata=_metadata(
                {s: frames[s]},
                {
                    "horizons": list(eval_config.horizons),
                    "candidates": list(models),
                    "settings_file": settings.files[best].get(s),
                    "settings_files": {m: settings.files[m].get(s) for m in models},
                },
            ),
        )
        path = hyperparams.save(hp, hyperparams.BEST, base_config.hyperparams_dir)
        choices[s] = {
            "model": best,
            "validation": scores,
            "test": test_scores,
            "path": str(path),
            "settings_file": settings.files[best].get(s),
            "windows": _windows(val, test, s),
        }
    return SelectResult(eval_config.metric, choices, JOINT if val.joint else PER_SYMBOL, sharing)
