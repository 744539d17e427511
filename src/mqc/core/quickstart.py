"""``mqc quickstart``: the whole loop on the embedded sample, offline, in a few minutes on a CPU.

Import the sample's daily bars (if the catalog lacks them), train a small ``dm`` policy with the
val split choosing the checkpoint, then backtest that checkpoint on the test split against the
benchmarks. Every step is the ordinary library call the individual commands make.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mqc.core.progress import NULL, Progress

# Small enough for a 2-core CPU in well under five minutes, large enough to learn something.
QUICKSTART_TRAIN = {
    "lookback": 64,
    "horizon": 16,
    "batch_windows": 8,
    "rollout_groups": 8,
    "hidden_size": 32,
    "steps": 300,
    "eval_interval": 50,
}
QUICKSTART_BACKTEST = {"window_length": 128, "stride": 32}


@dataclass
class QuickstartResult:
    symbols: tuple[str, ...]
    imported: list[str]
    train: Any  # mqc.core.train.base.TrainResult
    backtest: Any  # mqc.core.backtest.report.BacktestReport
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbols": list(self.symbols),
            "imported": self.imported,
            "train": self.train.to_dict(),
            "backtest": self.backtest.to_dict(),
            "seconds": self.seconds,
        }


def run_quickstart(
    *,
    steps: int | None = None,
    seed: int = 0,
    threads: int = 1,
    save_dir: str | None = None,
    progress: Progress = NULL,
) -> QuickstartResult:
    """Sample data -> ``train dm`` -> ``backtest --split test``.

    Args:
        steps: training steps (default 300).
        seed: seed for training and the bootstrap.
        threads: torch CPU threads.
        save_dir: parent of the run directory (default: the runs dir).
    Returns:
        QuickstartResult with the training result and the test-split backtest report.
    """
    import time

    from mqc.core.backtest.config import BacktestConfig
    from mqc.core.backtest.runner import run_checkpoint_backtest
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.data.sample import DAILY_SAMPLE_SYMBOLS, import_sample
    from mqc.core.errors import ArtifactNotFound
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.api import train_dm
    from mqc.core.train.config import DMTrainConfig

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    catalog = Catalog()
    missing = []
    for sym in DAILY_SAMPLE_SYMBOLS:
        try:
            catalog.find(sym, "1d")
        except ArtifactNotFound:
            missing.append(sym)
    if missing:
        import_sample(missing, catalog=catalog, progress=progress)
    timings["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    data_cfg = DataConfig(symbols=DAILY_SAMPLE_SYMBOLS, timeframe="1d")
    train_cfg = DMTrainConfig(
        **{**QUICKSTART_TRAIN, **({"steps": steps} if steps else {})}, seed=seed, threads=threads, save_dir=save_dir
    )
    trained = train_dm(data_cfg, MarketConfig(), train_cfg, progress=progress, command_line="mqc quickstart")
    timings["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = run_checkpoint_backtest(
        trained.best_checkpoint,
        DataConfig(),
        BacktestConfig(split="test", seed=seed, **QUICKSTART_BACKTEST),
        out_dir=trained.run_dir / "backtest",
        progress=progress,
    )
    timings["backtest"] = time.perf_counter() - t0
    return QuickstartResult(DAILY_SAMPLE_SYMBOLS, missing, trained, report, timings)
