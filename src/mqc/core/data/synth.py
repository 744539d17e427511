"""Seeded synthetic OHLCV bars: correlated assets, GARCH(1,1) volatility clustering, Student-t tails.

Always satisfies low <= open, close <= high and prices > 0. For tests and scale benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core.data.timeframe import parse_timeframe
from mqc.core.errors import ConfigError


@dataclass(frozen=True)
class SynthSpec:
    n_assets: int = 4
    n_bars: int = 1000
    timeframe: str = "1d"
    start: str = "2015-01-01"
    seed: int = 0
    correlation: float = 0.3  # one-factor pairwise correlation of return shocks
    annual_vol: float = 0.25
    drift: tuple[float, ...] = ()  # annual drift per asset (default 0.05 each)
    tail_dof: float = 5.0  # Student-t degrees of freedom (inf: Gaussian)
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    weekdays_only: bool = False  # equity-like calendar for daily bars
    start_price: float = 100.0

    def __post_init__(self) -> None:
        if self.n_assets < 1 or self.n_bars < 2:
            raise ConfigError("synth needs at least 1 asset and 2 bars")
        if not 0.0 <= self.correlation < 1.0:
            raise ConfigError(f"correlation must be in [0, 1), got {self.correlation}")
        if self.garch_alpha + self.garch_beta >= 1.0:
            raise ConfigError("garch_alpha + garch_beta must be < 1 (stationary variance)")


def synth_timestamps(spec: SynthSpec) -> pd.DatetimeIndex:
    step = parse_timeframe(spec.timeframe)
    if spec.weekdays_only and step >= 86400:
        return pd.bdate_range(spec.start, periods=spec.n_bars, tz="UTC")
    return pd.date_range(spec.start, periods=spec.n_bars, freq=pd.Timedelta(seconds=step), tz="UTC")


def synth_ohlcv(spec: SynthSpec) -> dict[str, pd.DataFrame]:
    """``{SYN0: frame, SYN1: frame, ...}`` of canonical OHLCV frames."""
    rng = np.random.default_rng(spec.seed)
    T, A = spec.n_bars, spec.n_assets
    step = parse_timeframe(spec.timeframe)
    bpy = 252.0 if (spec.weekdays_only and step >= 86400) else 365.25 * 86400 / step
    sigma_bar = spec.annual_vol / np.sqrt(bpy)
    drift = np.array(spec.drift if spec.drift else (0.05,) * A, dtype=np.float64)
    if drift.size != A:
        raise ConfigError(f"drift has {drift.size} values for {A} assets")
    mu = drift / bpy
    if np.isfinite(spec.tail_dof):
        dof = spec.tail_dof
        shocks = rng.standard_t(dof, size=(T, A + 1)) / np.sqrt(dof / (dof - 2.0))
    else:
        shocks = rng.standard_normal((T, A + 1))
    rho = spec.correlation
    z = np.sqrt(rho) * shocks[:, :1] + np.sqrt(1.0 - rho) * shocks[:, 1:]
    omega = sigma_bar**2 * (1.0 - spec.garch_alpha - spec.garch_beta)
    var = np.full(A, sigma_bar**2)
    r = np.empty((T, A))
    for t in range(T):
        eps = np.sqrt(var) * z[t]
        r[t] = mu - 0.5 * var + eps
        var = omega + spec.garch_alpha * eps**2 + spec.garch_beta * var
    close = spec.start_price * np.exp(np.cumsum(r, axis=0))
    prev = np.vstack([np.full((1, A), spec.start_price), close[:-1]])
    gap = rng.normal(0.0, 0.2 * sigma_bar, size=(T, A))
    open_ = prev * np.exp(gap)
    wick = np.abs(rng.normal(0.0, 0.5 * sigma_bar, size=(2, T, A)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = np.round(rng.lognormal(13.0, 0.4, size=(T, A)) * (1.0 + 50.0 * np.abs(r)))
    ts = synth_timestamps(spec)
    out = {}
    for a in range(A):
        out[f"SYN{a}"] = pd.DataFrame(
            {
                "timestamp": ts,
                "open": open_[:, a],
                "high": high[:, a],
                "low": low[:, a],
                "close": close[:, a],
                "volume": volume[:, a],
            }
        )
    return out


def write_synth_csv(spec: SynthSpec, out_dir: str | Path) -> list[Path]:
    """Write one ``SYN<i>.csv`` per asset (``timestamp,open,high,low,close,volume``) into ``out_dir``."""
    from mqc.core import atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for sym, df in synth_ohlcv(spec).items():
        path = out / f"{sym}.csv"
        frame = df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        atomic.write_text(path, frame.to_csv(index=False, float_format="%.10g"))
        written.append(path)
    return written


def import_synth(spec: SynthSpec, *, catalog=None):
    """Store the generated bars in the catalog (source ``synth:seed=N``); returns an ImportResult."""
    from mqc.core.data.bars import Bars
    from mqc.core.data.catalog import Catalog, WriteItem
    from mqc.core.data.importer import ImportResult, SymbolImport
    from mqc.core.data.timeframe import parse_timeframe
    from mqc.core.data.validate import validate_arrays

    cat = catalog or Catalog()
    source = f"synth:seed={spec.seed},assets={spec.n_assets},bars={spec.n_bars}"
    pending = []
    for sym, df in synth_ohlcv(spec).items():
        clean, report = validate_arrays(
            Bars.from_frame(df, symbol=sym, source=source), bar_seconds=parse_timeframe(spec.timeframe)
        )
        pending.append(
            (
                SymbolImport(source, sym, spec.timeframe, report, rows=len(clean)),
                WriteItem(sym, clean.ts, clean.cols, source, spec.timeframe, "equity"),
            )
        )
    result = ImportResult(written=True, catalog=str(cat.root))
    for (si, _), res in zip(pending, cat.write_many([w for _, w in pending]), strict=True):
        si.status, si.added, si.rows, si.timeframe = res.status, res.added, res.entry.rows, res.entry.timeframe
        result.items.append(si)
    return result
