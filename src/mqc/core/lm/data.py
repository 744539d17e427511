"""Bars -> per-asset candle features, token streams and horizon windows, split by time.

The panel is split once (``core/data/split.py``); each asset's real bars (forward-filled ones are
left out) are cut into train / val / test by that split, so a window never crosses a segment. A
candle's features read the previous close, so the embargo is at least one bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.data.panel import Panel, Split, load_panel
from mqc.core.data.split import split_for
from mqc.core.errors import DataError
from mqc.core.lm.tokenizer import CandleTokenizer, candle_features

SEGMENTS = ("train", "val", "test")


@dataclass
class LMData:
    """Aligned bars, their split, and each asset's features on its real bars."""

    panel: Panel
    split: Split
    feats: list[np.ndarray]  # per asset [T, 5] on panel rows (only real rows are used)
    real: np.ndarray  # [T, A] bool: a real bar (not forward-filled)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.panel.symbols)

    def index(self, symbols: Sequence[str] | None) -> list[int]:
        """Asset indices of ``symbols`` (all when None)."""
        if not symbols:
            return list(range(len(self.symbols)))
        missing = [s for s in symbols if s not in self.symbols]
        if missing:
            raise DataError(f"symbol(s) {', '.join(missing)} not in the loaded bars ({', '.join(self.symbols)})")
        return [self.symbols.index(s) for s in symbols]

    def rows(self, asset: int, segment: str) -> np.ndarray:
        """Panel rows of ``asset``'s real bars inside ``segment``."""
        a, b = self.split.segment(segment)
        return a + np.flatnonzero(self.real[a:b, asset])

    def features(self, segment: str, assets: Sequence[int]) -> np.ndarray:
        """Features ``[N, 5]`` of the assets' real bars in ``segment`` (stacked)."""
        parts = [self.feats[a][self.rows(a, segment)] for a in assets]
        return np.concatenate(parts) if parts else np.zeros((0, 5))


def load_lm_data(data_cfg: DataConfig, split_cfg: SplitConfig) -> LMData:
    """Load bars and split them by time.

    Raises:
        DataError: no symbols, or too few bars for the split.
    """
    panel = load_panel(config=data_cfg)
    if not panel.symbols:
        raise DataError("no symbols selected", hint="pass --symbols (e.g. --symbols GOOG) or run mqc data sample")
    split = split_for(len(panel), split_cfg, lookback=1, warmup=1)
    close = panel.field("close")
    ohlc = np.stack([panel.field(f) for f in ("open", "high", "low", "close")], axis=-1)
    real = ~np.asarray(panel.filled, dtype=bool) & np.isfinite(close)
    feats = [candle_features(ohlc[:, a]) for a in range(len(panel.symbols))]
    return LMData(panel, split, feats, real)


def stream(tok: CandleTokenizer, data: LMData, segment: str, assets: Sequence[int]) -> np.ndarray:
    """The token stream of ``segment``: per asset, the separator then one token per real candle."""
    bos = tok.spec.codes
    parts = []
    for a in assets:
        rows = data.rows(a, segment)
        if len(rows):
            parts += [np.array([bos]), tok.encode(data.feats[a][rows])]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


@dataclass
class Windows:
    """Context + horizon windows of one segment: tokens, realised log returns and closes."""

    tokens: np.ndarray  # [N, L + H] int64
    log_returns: np.ndarray  # [N, H] realised log returns of the horizon candles
    simple_returns: np.ndarray  # [N, H] close-to-close simple returns of the horizon
    last_close: np.ndarray  # [N] close of the last context candle
    asset: np.ndarray  # [N] asset index
    context_len: int
    horizon: int

    def __len__(self) -> int:
        return len(self.tokens)


def windows(
    tok: CandleTokenizer, data: LMData, segment: str, assets: Sequence[int], context_len: int, horizon: int
) -> Windows:
    """Every context + horizon window of real candles inside ``segment`` (one per end bar).

    Raises:
        DataError: no asset has ``context_len + horizon`` candles in the segment.
    """
    n = context_len + horizon
    toks, lr, sr, lc, asset = [], [], [], [], []
    for a in assets:
        rows = data.rows(a, segment)
        if len(rows) < n:
            continue
        ids = tok.encode(data.feats[a][rows])
        close = data.panel.field("close")[rows, a]
        idx = np.arange(len(rows) - n + 1)[:, None] + np.arange(n)[None]
        toks.append(ids[idx])
        lr.append(data.feats[a][rows][idx[:, context_len:], 0])
        c = close[idx]
        sr.append(c[:, context_len:] / c[:, context_len - 1 : -1] - 1.0)
        lc.append(c[:, context_len - 1])
        asset.append(np.full(len(idx), a))
    if not toks:
        most = max((len(data.rows(a, segment)) for a in assets), default=0)
        raise DataError(
            f"the {segment} split has at most {most} candles per asset; a window needs --context-len {context_len} "
            f"+ --horizon {horizon} = {n}",
            hint="lower --context-len / --horizon, or load more history",
        )
    return Windows(
        np.concatenate(toks),
        np.concatenate(lr),
        np.concatenate(sr),
        np.concatenate(lc),
        np.concatenate(asset),
        context_len,
        horizon,
    )
