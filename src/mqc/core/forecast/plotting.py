"""PNG fan charts of close forecasts (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core import atomic
from mqc.core.forecast.base import Forecast


def fan_chart(
    forecasts: Mapping[str, Forecast], history: Mapping[str, pd.DataFrame], path: str | Path, *, history_bars: int = 120
) -> Path:
    """One panel per symbol: recent closes, the median close and shaded central quantile bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(forecasts)
    fig, axes = plt.subplots(n, 1, figsize=(9, 3.2 * n), squeeze=False)
    for ax, (s, fc) in zip(axes[:, 0], forecasts.items(), strict=True):
        h = history[s].iloc[-history_bars:]
        ax.plot(h["timestamp"], h["close"], color="black", lw=1.0, label="close")
        levels = np.asarray(fc.quantile_levels)
        close = fc.field("close")
        x = [fc.origin, *fc.timestamps]
        pairs = [(i, len(levels) - 1 - i) for i in range(len(levels) // 2)]
        for k, (lo, hi) in enumerate(pairs):
            ax.fill_between(
                x,
                [fc.last_close, *close[lo]],
                [fc.last_close, *close[hi]],
                color="tab:blue",
                alpha=0.15 + 0.15 * k,
                lw=0,
                label=f"{levels[lo]:g}-{levels[hi]:g}",
            )
        ax.plot(x, [fc.last_close, *fc.median("close")], color="tab:blue", lw=1.5, label="median")
        ax.set_title(f"{s} - {fc.model}")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
