"""Load the authors' released SDPose `.pth` files and our own checkpoints, strictly.

Accepted layouts: an mmcv checkpoint (`{"state_dict": ..., "meta": ...}`), a bare state_dict,
either with or without a DDP `module.` prefix, and our own format written by `save_checkpoint`.
Every failure raises `CheckpointError` with one line that says what the file is and what to do.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sdpose_core.errors import CheckpointError
from sdpose_core.jsonio import atomic_path, output_error
from sdpose_core.models import VARIANT_NAMES, build_model

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "load_checkpoint",
    "read_checkpoint_file",
    "extract_state_dict",
    "identify_variant",
    "save_checkpoint",
    "save_payload",
    "OUR_FORMAT",
    "TRAIN_WEIGHTS_KEY",
]

logger = logging.getLogger(__name__)

OUR_FORMAT = "sdpose-app/1"
TRUST_ENV = "SDPOSE_TRUST_CHECKPOINTS"
# A training checkpoint with a weight average (train.ema_decay) keeps the average as its
# `state_dict` (what users load) and the raw weights the optimiser was moving under this key.
TRAIN_WEIGHTS_KEY = "train_state_dict"

# mmcv's checkpoint `meta` may hold NumPy scalars (e.g. a best score); these are data, not code.
_SAFE_META_GLOBALS = [
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    np._core.multiarray.scalar,
    np.dtype,
    *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")),
]


@dataclass(frozen=True)
class CheckpointInfo:
    """What `load_checkpoint` found: the variant the weights belong to and the file's format."""

    variant: str | None
    source: str  # "mmcv", "state_dict" or OUR_FORMAT
    meta: dict[str, Any]


def _corrupt_message(path: Path, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{path} is truncated or corrupt ({reason[:120]}); download it again or pick another file"


def read_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a `.pth` file on the CPU, turning I/O and format errors into `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_SAFE_META_GLOBALS):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():
            raise CheckpointError(_corrupt_message(path, exc)) from None
        # Full unpickling can run code stored in the file: only when the user says so.
        if os.environ.get(TRUST_ENV) != "1":
            raise CheckpointError(
                f"{path} holds Python objects beyond weights, which could run code when loaded; "
                f"if you trust its source, set {TRUST_ENV}=1 and try again"
            ) from None
        logger.warning("%s: loading with full unpickling (%s=1)", path, TRUST_ENV)
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # any unpickling failure means a bad file
            raise CheckpointError(_corrupt_message(path, exc2)) from None
    except Exception as exc:  # zip, EOF, key and index errors all mean a damaged file
        raise CheckpointError(_corrupt_message(path, exc)) from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dictionary")
    return dict(data)


def extract_state_dict(checkpoint: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """Unwrap `state_dict`, strip a `module.` prefix; returns (state_dict, source format)."""
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        source = OUR_FORMAT if checkpoint.get("format") == OUR_FORMAT else "mmcv"
        state = checkpoint["state_dict"]
    else:
        source, state = "state_dict", checkpoint
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("the checkpoint's state_dict holds values that are not tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state), source


@cache
def _variant_signature(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a variant, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = build_model(name)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def identify_variant(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The SDPose variant whose keys and shapes the state_dict has exactly, or None."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name in VARIANT_NAMES:
        if _variant_signature(name) == shapes:
            return name
    return None


def _describe_tokens(state_dict: Mapping[str, torch.Tensor]) -> str:
    pos = state_dict.get("keypoint_head.tokenpose.pos_embedding")
    patch = state_dict.get("keypoint_head.tokenpose.patch_to_embedding.weight")
    parts = []
    if pos is not None:
        parts.append("pos_embedding " + "x".join(map(str, pos.shape)))
    if patch is not None:
        parts.append("patch_to_embedding " + "x".join(map(str, patch.shape)))
    return ", ".join(parts)


def _mismatch_message(model: nn.Module, state_dict: Mapping[str, torch.Tensor], label: str) -> str:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {list(state_dict[k].shape)} != {list(s)}"
        for k, s in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != s
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
    if wrong:
        parts.append(f"{len(wrong)} shape mismatch(es), e.g. {'; '.join(wrong[:2])}")
    return f"{label} does not fit this model: " + "; ".join(parts)


def load_checkpoint(
    model: nn.Module, path_or_dict: str | os.PathLike | Mapping[str, Any], strict: bool = True
) -> CheckpointInfo:
    """Load weights into `model` in place. No silent partial loads: with `strict` (the
    default) any missing, unexpected or mis-shaped key raises `CheckpointError`, naming the
    variant the file really holds when it is another SDPose variant."""
    if isinstance(path_or_dict, Mapping):
        checkpoint, label = dict(path_or_dict), "the checkpoint"
    else:
        checkpoint, label = read_checkpoint_file(path_or_dict), str(path_or_dict)
    state_dict, source = extract_state_dict(checkpoint)
    found = identify_variant(state_dict)
    wanted = getattr(getattr(model, "cfg", None), "name", None)
    if strict and found is not None and wanted is not None and found != wanted:
        raise CheckpointError(
            f"{label} is an {found} checkpoint ({_describe_tokens(state_dict)}), but the model is "
            f"{wanted}: use --model {found} (the S-V1 and S-V2 download links may point at the same file)"
        )
    if strict and found is None and wanted is not None:
        raise CheckpointError(_mismatch_message(model, state_dict, label))
    result = model.load_state_dict(state_dict, strict=strict)
    if strict and (result.missing_keys or result.unexpected_keys):  # models outside VARIANT_NAMES
        raise CheckpointError(_mismatch_message(model, state_dict, label))
    meta = checkpoint.get("meta", {}) if isinstance(checkpoint.get("meta", {}), Mapping) else {}
    if source == OUR_FORMAT:
        weights = ("state_dict", "optimizer", TRAIN_WEIGHTS_KEY)
        meta = {k: v for k, v in checkpoint.items() if k not in weights}
    return CheckpointInfo(variant=found, source=source, meta=dict(meta))


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Write our own checkpoint atomically (temp file + rename), so a crash never leaves a
    half-written file. `extra` (epoch, optimizer state, metrics...) is stored beside the weights."""
    cfg = getattr(model, "cfg", None)
    payload = {
        "format": OUR_FORMAT,
        "variant": getattr(cfg, "name", None),
        "state_dict": model.state_dict(),
        **extra,
    }
    return save_payload(path, payload)


def save_payload(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """`torch.save` through a temp file and a rename: a crash or a full disk never leaves half a
    checkpoint, and never harms the one already there. A failed write is an `OutputError`.

    The bytes are serialised in memory first: torch's own file writer turns a full disk into an
    opaque RuntimeError, a plain Python write reports it as what it is."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        with atomic_path(path) as tmp, open(tmp, "xb") as fh:
            fh.write(buffer.getbuffer())
    except OSError as exc:
        raise output_error(path, exc) from None
    return Path(path)
