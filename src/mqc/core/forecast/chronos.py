"""Chronos forecasters through ``chronos-forecasting``: Chronos-2 (joint OHLC), Chronos-Bolt, Chronos.

Weights come from a local directory or a Hugging Face id that is already in the local cache. mqc
never downloads: a missing model fails at once with the ``hf download`` command that fetches it.

Chronos-2 forecasts open/high/low/close of a symbol jointly as one multivariate group (optionally
with log volume as a past covariate); Bolt and the original Chronos are univariate, so each field
is forecast on its own. Quantile paths are then sorted and made OHLC-consistent.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core.errors import ArtifactNotFound, CheckpointError, require
from mqc.core.forecast.base import sort_quantiles
from mqc.core.forecast.model import ArrayForecaster

_PIPELINES: dict[tuple, Any] = {}
_LOCK = threading.Lock()


# The pipeline class each model name expects in the weights' config.json.
PIPELINES = {"chronos2": "Chronos2Pipeline", "chronos-bolt": "ChronosBoltPipeline", "chronos": "ChronosPipeline"}


def download_hint(model_id: str, model: str = "chronos2") -> str:
    """The exact commands that make ``model_id`` (or, for a local path, ``model``'s default weights) available
    offline."""
    from mqc.core.forecast.config import DEFAULT_WEIGHTS

    repo = model_id if _looks_like_repo_id(model_id) else DEFAULT_WEIGHTS.get(model, DEFAULT_WEIGHTS["chronos2"])
    local = f"~/models/{repo.split('/')[-1]}"
    return f"hf download {repo} --local-dir {local}, then pass --model-path {local}"


def _looks_like_repo_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "~", "/"))


def resolve_weights(model_id: str, model: str = "chronos2") -> Path:
    """A local directory holding ``config.json`` for ``model_id`` (a path, or an HF id in the cache).

    Only the local cache is consulted (``local_files_only``), so this never touches the network and
    never waits on retries, whatever ``HF_HUB_OFFLINE`` says.

    Raises:
        ArtifactNotFound: the directory does not exist, has no config.json, or the id is not cached.
    """
    path = Path(model_id).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ArtifactNotFound(
                f"{path} has no config.json, so it is not a Chronos model directory",
                hint=download_hint(model_id, model),
            )
        return path
    if not _looks_like_repo_id(model_id):
        raise ArtifactNotFound(f"model directory {path} does not exist", hint=download_hint(model_id, model))
    hub = require("huggingface_hub", "forecast")
    try:
        local = Path(hub.snapshot_download(repo_id=model_id, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, offline mode errors, bad cache entries
        raise ArtifactNotFound(
            f"Chronos weights {model_id!r} are not in the local Hugging Face cache (mqc never downloads weights)",
            hint=download_hint(model_id, model),
        ) from exc
    if not (local / "config.json").is_file():
        raise ArtifactNotFound(
            f"cached snapshot of {model_id!r} at {local} has no config.json", hint=download_hint(model_id, model)
        )
    return local


def pipeline_class_name(path: Path, model: str = "chronos2") -> str:
    """The chronos pipeline class a checkpoint declares (``Chronos2Pipeline``, ``ChronosBoltPipeline``, ...)."""
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / 'config.json'}: unreadable ({exc})") from exc
    if "chronos_config" not in cfg and "chronos_pipeline_class" not in cfg:
        raise CheckpointError(
            f"{path / 'config.json'} is not a Chronos config (no chronos_config)", hint=download_hint(str(path), model)
        )
    return str(cfg.get("chronos_pipeline_class", "ChronosPipeline"))


class ChronosForecaster(ArrayForecaster):
    """Chronos-family forecaster; weights load on the first forecast and are shared per process."""

    def __init__(self, config=None, **overrides: object) -> None:
        super().__init__(config, **overrides)
        self.name = self.config.model
        self.path = resolve_weights(self.config.model_id, self.name)  # fail fast, before any data work
        self.pipeline_class = pipeline_class_name(self.path, self.name)
        expected = PIPELINES.get(self.name)
        if expected and self.pipeline_class != expected:
            right = next((m for m, c in PIPELINES.items() if c == self.pipeline_class), None)
            raise CheckpointError(
                f"--model {self.name} expects {expected} weights, but {self.config.model_id} holds a"
                f" {self.pipeline_class} checkpoint",
                hint=(f"pass --model {right} for these weights, or " if right else "")
                + f"point --model-path at {self.name} weights ({download_hint('', self.name)})",
            )
        self._pipe: Any = None

    @property
    def multivariate(self) -> bool:
        return self.pipeline_class == "Chronos2Pipeline"

    @property
    def shares_across_series(self) -> bool:
        """Chronos-2 with cross-learning attends across every series of a call (see ``ArrayForecaster``)."""
        return self.multivariate and self.config.cross_learning

    @property
    def pipeline(self) -> Any:
        """The loaded chronos pipeline (loaded once per path/device/dtype/attn in this process)."""
        if self._pipe is None:
            self._pipe = self._load()
        return self._pipe

    def _load(self) -> Any:
        cfg = self.config
        torch = require("torch", "forecast")
        chronos = require("chronos", "forecast")
        torch.set_num_threads(cfg.threads)
        key = (str(self.path.resolve()), cfg.device, cfg.dtype, cfg.attn, cfg.compile)
        with _LOCK:
            if key in _PIPELINES:
                return _PIPELINES[key]
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover - transformers always ships with chronos
                pass
            kwargs: dict[str, Any] = {"device_map": cfg.device, "dtype": getattr(torch, cfg.dtype)}
            if self.multivariate:
                kwargs["attn_implementation"] = cfg.attn
            try:
                pipe = chronos.BaseChronosPipeline.from_pretrained(str(self.path), **kwargs)
            except (OSError, ValueError, KeyError, AssertionError, TypeError) as exc:
                raise CheckpointError(
                    f"could not load Chronos weights from {self.path}: {exc}",
                    hint=download_hint(cfg.model_id, self.name),
                ) from exc
            inner = getattr(pipe, "model", None)
            if inner is not None and hasattr(inner, "eval"):
                inner.eval()
            if cfg.compile and inner is not None:
                pipe.model = torch.compile(inner)
            _PIPELINES[key] = pipe
            return pipe

    def build_inputs(self, context, prediction_length: int) -> list | Any:
        """What ``predict_quantiles`` receives for this batch (exposed for the overhead benchmark)."""
        L = self.config.context_length
        arrays = [np.asarray(c)[-L:] for c in context]
        arrays = [a[np.isfinite(a[:, 3])] for a in arrays]  # drop left padding
        if self.multivariate:
            if self.config.volume_covariate:
                return [
                    {
                        "target": a[:, :4].T.astype(np.float32),
                        "past_covariates": {"volume": np.log1p(np.maximum(a[:, 4], 0.0)).astype(np.float32)},
                    }
                    for a in arrays
                ]
            return [a[:, :4].T.astype(np.float32) for a in arrays]
        torch = require("torch", "forecast")
        return [torch.from_numpy(np.ascontiguousarray(a[:, k])) for a in arrays for k in range(4)]

    def predict_arrays(self, context, prediction_length, quantile_levels, keys=None):
        import warnings

        cfg = self.config
        pipe = self.pipeline
        inputs = self.build_inputs(context, prediction_length)
        levels = [float(q) for q in quantile_levels]
        with warnings.catch_warnings():
            # Horizons beyond the model's native one are allowed on purpose (the user asked for them).
            warnings.filterwarnings("ignore", message=".*prediction length.*")
            if self.multivariate:
                variates = 5 if cfg.volume_covariate else 4
                q_list, _ = pipe.predict_quantiles(
                    inputs,
                    prediction_length=prediction_length,
                    quantile_levels=levels,
                    batch_size=cfg.batch_size * variates,
                    context_length=min(cfg.context_length, pipe.model_context_length),
                    cross_learning=cfg.cross_learning,
                )
                q = np.stack([t.float().cpu().numpy() for t in q_list]).astype(np.float64)  # [B, 4, H, Q]
            else:
                torch = require("torch", "forecast")
                parts = []
                step = cfg.batch_size * 4
                # The original Chronos samples token paths: seed a forked torch RNG with cfg.seed so a
                # call is reproducible without disturbing the caller's global RNG (Bolt ignores it).
                cuda = [torch.device(cfg.device).index or 0] if cfg.device.startswith("cuda") else []
                with torch.random.fork_rng(devices=cuda):
                    torch.manual_seed(cfg.seed)
                    for i in range(0, len(inputs), step):
                        qi, _ = pipe.predict_quantiles(
                            inputs[i : i + step], prediction_length=prediction_length, quantile_levels=levels
                        )
                        parts.append(qi.float().cpu().numpy())
                q = np.concatenate(parts).astype(np.float64).reshape(-1, 4, prediction_length, len(levels))
        return sort_quantiles(np.transpose(q, (0, 3, 2, 1))), None
