"""``mqc data features`` and ``mqc data offline``: the forecast feature cube and behaviour-policy datasets."""

from __future__ import annotations

from typing import Any

import typer

from mqc.commands import _options as o
from mqc.commands._console import RichProgress, out, print_json, state, want_json
from mqc.commands._options import split_list

SymbolsOpt = o.SYMBOLS(help="Comma-separated symbols (catalog, or files in --data-root).")
DataRootOpt = o.DATA_ROOT()
TimeframeOpt = o.TIMEFRAME()
StartOpt = o.START()
EndOpt = o.END()
ForecasterOpt = o.FORECASTER(help="Forecaster run at every bar (bootstrap, ewma-vol, chronos2, ...).")
SamplesOpt = o.NUM_SAMPLES()
LengthOpt = o.PREDICTION_LENGTH()


def _resolve(
    symbols: str | None,
    data_root: str | None,
    timeframe: str | None,
    start: str | None,
    end: str | None,
    cube: dict[str, Any],
) -> tuple[Any, Any]:
    from mqc.core.data.config import DataConfig
    from mqc.core.gym.config import CubeConfig
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.train.api import absolute_data_root

    syms = split_list(symbols)
    if not syms:
        raise typer.BadParameter("name the symbols (e.g. --symbols SP500,NASDAQ,GOOG)", param_hint="'--symbols'")
    prof = state().profile
    data = resolve_with_profile(
        DataConfig,
        prof,
        flags=dict(
            symbols=tuple(s.upper() for s in syms), data_root=data_root, timeframe=timeframe, start=start, end=end
        ),
    ).value
    return absolute_data_root(data), resolve_with_profile(CubeConfig, prof, flags=cube).value


def features(
    symbols: str = SymbolsOpt,
    forecaster: str = ForecasterOpt,
    num_samples: int = SamplesOpt,
    prediction_length: int = LengthOpt,
    data_root: str = DataRootOpt,
    timeframe: str = TimeframeOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    out_path: str = o.OUT(help="Also write the cube here (NPZ + .json beside it)."),
    json_out: bool = o.JSON(),
) -> None:
    """Build (or reuse) the causal forecast feature cube [bars x assets x features] of the bars.

    Example: mqc data features --symbols SP500,NASDAQ,GOOG --forecaster bootstrap --num-samples 256
    """
    from pathlib import Path

    from mqc.core.data.panel import load_panel
    from mqc.core.gym.cube import build_cube, write_cube

    data, cube_cfg = _resolve(
        symbols,
        data_root,
        timeframe,
        start,
        end,
        dict(forecaster=forecaster, num_samples=num_samples, prediction_length=prediction_length),
    )
    panel = load_panel(config=data)
    with RichProgress() as progress:
        cube = build_cube(panel, cube_cfg, progress=progress)
    if out_path:
        write_cube(cube, Path(out_path).expanduser())
    meta = {**cube.metadata(), "path": str(cube.path), "cached": cube.cached, "seconds": round(cube.seconds, 3)}
    if want_json(json_out):
        print_json(meta)
        return
    T, A, F = cube.values.shape
    how = "reused from the cache" if cube.cached else f"built in {cube.seconds:.1f} s"
    out.print(f"feature cube {cube.key}: {T} bars x {A} assets x {F} features ({cube_cfg.forecaster}; {how})")
    out.print(
        f"defined from bar {cube.warmup} ({str(cube.timestamps[min(cube.warmup, T - 1)])[:10]}); "
        "earlier bars are masked"
    )
    out.print(f"features: {', '.join(cube.names)}")
    out.print(f"file: {cube.path}")


def offline(
    policy: str = o.POLICY("topk"),
    symbols: str = SymbolsOpt,
    out_path: str = o.OUT(..., help="Dataset file to write (.npz, or .h5 with --format d3rlpy)."),
    fmt: str = typer.Option(
        "npz", "--format", help="npz (mqc's own) or d3rlpy (MDPDataset HDF5, written with h5py; load it with d3rlpy)."
    ),
    segment: str = typer.Option("train", "--segment", help="Split segment replayed: train, val, test or all."),
    forecaster: str = ForecasterOpt,
    num_samples: int = SamplesOpt,
    prediction_length: int = LengthOpt,
    episode_length: int = o.EPISODE_LENGTH(),
    enable_shorting: bool = o.SHORTING(),
    include_cash: bool = o.CASH(),
    data_root: str = DataRootOpt,
    timeframe: str = TimeframeOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Replay a behaviour policy through the portfolio env and write its transitions (actions in the env's space).

    Example: mqc data offline --policy topk --symbols SP500,NASDAQ,GOOG --out dataset.npz
    """
    from mqc.core.data.config import SplitConfig
    from mqc.core.data.panel import load_panel
    from mqc.core.gym.config import EnvConfig
    from mqc.core.gym.offline import FORMATS, build_offline, check_format, write_dataset
    from mqc.core.gym.policies import POLICIES
    from mqc.core.market.config import MarketConfig
    from mqc.core.profiles import resolve_with_profile

    if policy not in POLICIES:
        raise typer.BadParameter(f"{policy!r} is not one of {', '.join(POLICIES)}", param_hint="'--policy'")
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="'--format'")
    if segment not in ("train", "val", "test", "all"):
        raise typer.BadParameter(f"{segment!r} is not one of train, val, test, all", param_hint="'--segment'")
    data, cube_cfg = _resolve(
        symbols,
        data_root,
        timeframe,
        start,
        end,
        dict(forecaster=forecaster, num_samples=num_samples, prediction_length=prediction_length),
    )
    prof = state().profile
    market = resolve_with_profile(
        MarketConfig, prof, flags=dict(allow_short=enable_shorting, include_cash=include_cash)
    ).value
    env = resolve_with_profile(EnvConfig, prof, flags=dict(episode_length=episode_length)).value
    split = resolve_with_profile(SplitConfig, prof).value
    check_format(fmt)  # a missing h5py fails now, not after the feature cube
    panel = load_panel(config=data)
    with RichProgress() as progress:
        ds = build_offline(policy, panel, market, env, cube_cfg, split, segment=segment, progress=progress)
    path = write_dataset(ds, out_path, fmt)
    summary = {
        "path": str(path),
        "format": fmt,
        "transitions": len(ds),
        "episodes": int((ds.terminals | ds.timeouts).sum()),
        "observation_size": int(ds.observations.shape[1]),
        "action_size": int(ds.actions.shape[1]),
        "action_mode": ds.metadata["action_mode"],
        "reward_mean": float(ds.rewards.mean()),
        "segment": ds.metadata["segment_name"],
        "timestamps": ds.metadata["timestamps"],
    }
    if want_json(json_out):
        print_json(summary)
        return
    out.print(
        f"{summary['transitions']} transitions in {summary['episodes']} episodes ({policy}, {segment} segment "
        f"{summary['timestamps'][0][:10]} .. {summary['timestamps'][1][:10]}); "
        f"observation {summary['observation_size']}, "
        f"action {summary['action_size']} ({summary['action_mode']}); mean reward {summary['reward_mean']:+.5f}"
    )
    out.print(f"dataset: {path}")
