"""Rebuild the golden fixtures' weights with the `crc32-fanin-v1` fill rule (shared/golden/README.md)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import torch

GOLDEN_VARIANTS = ("sdpose_t", "sdpose_s_v1", "sdpose_b")


def load_fixture(shared_dir: Path, variant: str) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "golden" / f"{variant}.npz") as data:
        return {k: data[k] for k in data.files}


def fill_value(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """One entry's deterministic value, from its key and shape alone."""
    z = np.random.default_rng(zlib.crc32(key.encode("utf-8"))).standard_normal(shape)
    if len(shape) >= 2:
        return z / np.sqrt(np.prod(shape[1:]))
    if key.endswith("running_var"):
        return 1 + 0.1 * np.abs(z)
    if key.endswith("running_mean") or key.endswith("bias"):
        return 0.1 * z
    return 1 + 0.1 * z


def golden_state_dict(fixture: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The state_dict in official checkpoint order, filled by the rule."""
    keys = [str(k) for k in fixture["state_dict_keys"]]
    shapes = json.loads(str(fixture["state_dict_shapes_json"]))
    state = {}
    for key, shape in zip(keys, shapes, strict=True):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.int64)
        elif key.endswith("pos_embedding"):
            state[key] = torch.from_numpy(fixture["pos_embedding"].copy())
        else:
            state[key] = torch.from_numpy(fill_value(key, tuple(shape)).astype(np.float32))
    return state
