"""Load and save Kronos modules in the published layout: ``config.json`` + ``model.safetensors``.

A source is a local directory, or a Hugging Face id (``NeoQuasar/Kronos-small``) resolved from
the local HF cache only: mqc never downloads weights itself, it tells the user the command that does.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from mqc.core.atomic import atomic_path, write_json
from mqc.core.errors import ArtifactNotFound, CheckpointError, require
from mqc.core.forecast.kronos.model import MODEL_KEYS, TOKENIZER_KEYS, Kronos, KronosTokenizer

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
M = TypeVar("M", bound=nn.Module)


def _download_hint(source: str, kind: str) -> str:
    flag = "--model-path" if kind == "model" else "--tokenizer-path"
    return f"hf download {source} --local-dir DIR, then pass {flag} DIR (or --kronos-{kind} DIR for `mqc train kronos`)"


def resolve_dir(source: str | os.PathLike[str], kind: str = "model") -> Path:
    """Directory holding ``config.json`` + ``model.safetensors`` for ``source``.

    Args:
        source: a local directory, or a Hugging Face repo id found in the local HF cache.
        kind: ``"model"`` or ``"tokenizer"``, used in messages.

    Returns:
        The directory.

    Raises:
        ArtifactNotFound: nothing usable at ``source``; the hint gives the download command.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (path / n).is_file()]
        if missing:
            raise ArtifactNotFound(
                f"Kronos {kind} directory {path} lacks {', '.join(missing)}",
                hint="point at a directory saved by `hf download NeoQuasar/<name> --local-dir DIR`",
            )
        return path
    looks_like_id = text.count("/") == 1 and not text.startswith((".", "/", "~")) and not path.exists()
    if not looks_like_id:
        raise ArtifactNotFound(
            f"Kronos {kind} path {text} does not exist",
            hint=_download_hint(
                "NeoQuasar/Kronos-small" if kind == "model" else "NeoQuasar/Kronos-Tokenizer-base", kind
            ),
        )
    hf_hub_download = require("huggingface_hub", "kronos").hf_hub_download
    try:
        cfg = hf_hub_download(text, CONFIG_NAME, local_files_only=True)
        hf_hub_download(text, WEIGHTS_NAME, local_files_only=True)
    except Exception as exc:  # any miss in the offline cache means "not downloaded"
        raise ArtifactNotFound(
            f"Kronos {kind} {text!r} is not in the local Hugging Face cache (mqc does not download weights)",
            hint=_download_hint(text, kind),
        ) from exc
    return Path(cfg).parent


def _read_config(directory: Path, keys: tuple[str, ...]) -> dict:
    try:
        raw = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {directory / CONFIG_NAME}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{directory / CONFIG_NAME} is not a JSON object")
    return {k: raw[k] for k in keys if k in raw}


def _load(cls: type[M], keys: tuple[str, ...], source: str | os.PathLike[str], kind: str, device: str) -> M:
    load_file = require("safetensors.torch", "kronos").load_file
    directory = resolve_dir(source, kind)
    config = _read_config(directory, keys)
    try:
        module = cls(**config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{directory / CONFIG_NAME} does not describe a Kronos {kind}: {exc}") from exc
    try:
        state = load_file(str(directory / WEIGHTS_NAME))
        module.load_state_dict(state, strict=True)
    except Exception as exc:
        raise CheckpointError(
            f"weights in {directory / WEIGHTS_NAME} do not match the Kronos {kind} in {CONFIG_NAME}: {str(exc)[:300]}",
            hint=f"is this a Kronos {kind} checkpoint? models: NeoQuasar/Kronos-mini|small|base; "
            "tokenizers: NeoQuasar/Kronos-Tokenizer-2k|base",
        ) from exc
    return module.to(device).eval()


def load_model(source: str | os.PathLike[str], device: str = "cpu") -> Kronos:
    """Load the Kronos predictor from a directory or a cached HF id (strict state-dict load).

    Raises:
        ArtifactNotFound: not found locally (hint: the ``hf download`` command).
        CheckpointError: config and weights do not form a Kronos model.
    """
    return _load(Kronos, MODEL_KEYS, source, "model", device)


def load_tokenizer(source: str | os.PathLike[str], device: str = "cpu") -> KronosTokenizer:
    """Load the Kronos tokenizer from a directory or a cached HF id (strict state-dict load).

    Raises:
        ArtifactNotFound: not found locally (hint: the ``hf download`` command).
        CheckpointError: config and weights do not form a Kronos tokenizer.
    """
    return _load(KronosTokenizer, TOKENIZER_KEYS, source, "tokenizer", device)


def save_pretrained(module: Kronos | KronosTokenizer, directory: str | os.PathLike[str]) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (atomically) in the published layout.

    Returns:
        The directory.
    """
    save_file = require("safetensors.torch", "kronos").save_file
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_json(directory / CONFIG_NAME, module.config)
    return directory


def weights_hash(source: str | os.PathLike[str], kind: str = "model") -> str:
    """SHA-256 of a checkpoint's config and weights (a cache key for derived features)."""
    directory = resolve_dir(source, kind)
    w = directory / WEIGHTS_NAME
    st = w.stat()
    return _hash_files(str(directory), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _hash_files(directory: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key so a rewritten checkpoint is hashed again
    h = hashlib.sha256()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        with open(Path(directory) / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def set_threads(n: int | None) -> None:
    """Torch intra-op threads for CPU inference (None keeps the current setting)."""
    if n:
        torch.set_num_threads(int(n))
