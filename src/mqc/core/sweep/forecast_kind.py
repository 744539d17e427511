"""The ``forecast`` kind of ``mqc sweep`` (``mqc sweep forecast --model NAME --grid FILE``): forecaster
settings chosen by forecast error (CRPS, MASE, coverage error, ...) on validation origins.

A trial is one configuration of the ``[forecast]`` (and fixed ``[forecast_eval]``) tables, each symbol
scored alone by ``tuning.score_symbols``: the per-setting step of ``mqc forecast tune`` (the same
causal rolling origins, split the same way, the validation ones only), so a trial's figure for a
symbol is the one ``forecast tune`` gives that symbol for that setting. Every trial uses the largest
``min_context`` of the sweep, as ``tune`` uses the largest of its grid: every setting is scored on the
same origins. The trial's val figure is the mean over symbols; the summary's mean ± std is over
symbols x seeds. The chosen configuration's test figures are computed once, labelled with the number
of configurations tried; there is no deflated Sharpe ratio (a forecast error is not a return).
``--save-best`` writes the choice as each symbol's ``<model>/<SYMBOL>.<tf>.json``, ``forecast tune``'s record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mqc.core import atomic
from mqc.core.errors import ConfigError

SHOWN = ("crps", "mase", "mae", "coverage_90", "coverage_error")
VAL_JSON, TEST_JSON = "val.json", "test.json"


@dataclass(frozen=True)
class Frames:
    """What each trial gets as its panel: every symbol's frame (``load_frames``: the catalog's bars, each
    on its own calendar, as ``forecast tune`` reads them) and the sweep's ``min_context``."""

    frames: dict[str, Any]
    min_context: int


@dataclass
class Report:
    """A test report in the shape ``summary.test_once`` reads (no significance: not returns)."""

    out_dir: Path
    metrics: dict[str, float | None]
    per_symbol: dict[str, dict[str, float | None]]
    significance: dict[str, Any] = field(default_factory=dict)


def tables() -> list[type]:
    from mqc.core.forecast.config import EvalConfig, ForecastConfig

    return [ForecastConfig, EvalConfig]


def lower(metric: str) -> bool:
    """True when a lower ``metric`` is better (every error metric; not hit_rate).

    Raises:
        ConfigError: an unknown metric (did-you-mean) or a cross-sectional one (rank_ic).
    """
    from mqc.core.forecast.scoring import LOWER_IS_BETTER, check_per_symbol_metric

    check_per_symbol_metric(metric, "mqc sweep forecast")
    return LOWER_IS_BETTER[metric]


def default_metric(base: dict[str, Any], space: Any) -> str:
    return str(space.fixed.get("forecast_eval.metric", base.get("forecast_eval", {}).get("metric", "crps")))


def min_context(base: dict[str, Any], space: Any) -> int:
    """The largest ``forecast.min_context`` any configuration of the sweep has."""
    key = "forecast.min_context"
    if key in space.fixed:
        vals = [space.fixed[key]]
    elif key in space.axes:
        vals = list(space.axes[key])
    elif key in space.ranges:
        vals = [space.ranges[key].high]
    else:
        vals = [base["forecast"]["min_context"]]
    return int(max(vals))


def load(base: dict[str, Any], space: Any) -> Frames:
    """The symbols' frames from the catalog (``[data] symbols``, ``end``), loaded once for every trial.

    Raises:
        ConfigError: no symbols, or a ``data_root`` (forecast tuning reads the catalog);
        ArtifactNotFound: a symbol the catalog lacks.
    """
    from mqc.core.forecast.service import load_frames

    data = base.get("data", {})
    if data.get("data_root"):
        raise ConfigError(
            f"mqc sweep forecast reads the catalog, as mqc forecast tune does; data_root {data['data_root']} is"
            " not read",
            hint="import the files first (mqc data import PATH), then name the symbols with --symbols",
        )
    symbols = [str(s).upper() for s in data.get("symbols") or ()]
    if not symbols:
        raise ConfigError("mqc sweep forecast: name the symbols to score", hint="--symbols SPY,QQQ")
    frames = load_frames(symbols, base["forecast"]["timeframe"], end=data.get("end"))
    return Frames(frames, min_context(base, space))


def _scored(tables: dict[str, Any], panel: Frames, split: str, metric: str) -> tuple[Any, dict[str, Any]]:
    from mqc.core.forecast.tuning import candidate, score_symbols

    if tables["forecast"].model == "best":
        raise ConfigError("forecast.model = 'best' is a per-symbol choice already made", hint="--model ewma-vol")
    ec = tables["forecast_eval"]
    cfg = candidate(tables["forecast"], ec)
    return cfg, score_symbols(panel.frames, cfg, ec, panel.min_context, split, (metric, *SHOWN))


def _means(per: dict[str, dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in dict.fromkeys(k for p in per.values() for k in p["metrics"]):
        vals = [float(p["metrics"][m]) for p in per.values() if p["metrics"].get(m) is not None]
        if vals:
            out[m] = sum(vals) / len(vals)
    return out


def _doc(cfg: Any, split: str, per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from mqc.core import config

    return {"split": split, "model": cfg.model, "config": config.to_dict(cfg), "per_symbol": per}


def trial(spec: Any, tables: dict[str, Any], panel: Frames) -> dict[str, Any]:
    """One configuration on every symbol's validation origins: ``val`` (means over symbols) and ``per_symbol``."""
    cfg, per = _scored(tables, panel, "validation", spec.metric)
    out = Path(spec.save_dir)
    atomic.write_json(out / VAL_JSON, _doc(cfg, "validation", per))
    return {"run_dir": str(out), "val": _means(per), "per_symbol": {s: p["metrics"] for s, p in per.items()}}


def on_test(tables: dict[str, Any], n_configs: int, out_dir: Path, panel: Frames, bootstrap_samples: int) -> Report:
    """The chosen configuration on every symbol's test origins (``bootstrap_samples`` unused: no significance)."""
    cfg, per = _scored(tables, panel, "test", tables["forecast_eval"].metric)
    atomic.write_json(Path(out_dir) / TEST_JSON, {**_doc(cfg, "test", per), "n_configs": n_configs})
    return Report(Path(out_dir), _means(per), {s: p["metrics"] for s, p in per.items()})


def save_best(
    base: dict[str, Any],
    seed_key: str,
    rows: dict[str, dict[str, Any]],
    test: dict[str, Any],
    metric: str,
    panel: Frames,
    sweep_dir: Path,
) -> list[str]:
    """Write the chosen configuration (its first finished seed) as each symbol's ``<model>/<SYMBOL>.<tf>.json``,
    the record ``mqc forecast tune`` writes: validation scores of every configuration tried for that
    symbol, the choice's test score, the windows, and the sweep it came from."""
    from mqc.core import config
    from mqc.core.forecast.config import EvalConfig, ForecastConfig
    from mqc.core.forecast.tuning import candidate, save_tuned
    from mqc.core.sweep.space import apply_overrides

    run = test["runs"][0]
    chosen = rows[run["trial"]]
    values = apply_overrides(base, chosen["overrides"])
    base_cfg = config.from_dict(ForecastConfig, values["forecast"], "sweep [forecast]")
    ec = config.from_dict(EvalConfig, values["forecast_eval"], "sweep [forecast_eval]")
    cfg = candidate(base_cfg, ec)
    val_doc = json.loads((Path(chosen["run_dir"]) / VAL_JSON).read_text(encoding="utf-8"))["per_symbol"]
    test_doc = json.loads((Path(run["report"]) / TEST_JSON).read_text(encoding="utf-8"))["per_symbol"]
    seed = run.get("seed")
    tried = [r for r in rows.values() if r.get("status") == "ok" and r.get("seed") == seed]

    def settings(overrides: dict[str, Any]) -> dict[str, Any]:  # forecast tune's names: the [forecast] fields
        return {k.removeprefix("forecast."): v for k, v in overrides.items() if k != seed_key}

    paths = []
    for s in panel.frames:
        validation = {
            "metric": metric,
            "score": val_doc[s]["metrics"].get(metric),
            "best": settings(chosen["overrides"]),
            "trials": [
                {
                    "settings": settings(r["overrides"]),
                    "score": r["per_symbol"].get(s, {}).get(metric),
                }
                for r in tried
            ],
        }
        test_block = {"metric": metric, "score": test_doc[s]["metrics"].get(metric), "metrics": test_doc[s]["rows"]}
        extra = {"sweep": {"dir": str(sweep_dir), "n_configs": test["n_configs"], "trial": run["trial"]}}
        path = save_tuned(panel.frames, s, cfg, base_cfg, ec, validation, test_block, test_doc[s]["windows"], extra)
        paths.append(str(path))
    return paths
