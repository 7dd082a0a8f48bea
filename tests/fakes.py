"""Test checkpoints with predictable outputs (until trained weights are bundled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sdpose_core.checkpoint import save_checkpoint
from sdpose_core.models import build_model


def blob_model(variant: str = "sdpose_t", center_xy: tuple[float, float] = (24.0, 32.0), seed: int = 0):
    """A model whose every heatmap is a sharp Gaussian at `center_xy` (heatmap pixels) plus a
    small input-dependent term, so argmax is well-conditioned and the decoded keypoint sits at
    the box point that `center_xy` maps to, while still depending on the image."""
    torch.manual_seed(seed)
    model = build_model(variant).eval()
    final = model.tokens.mlp_head[3]
    ys, xs = np.mgrid[0:64, 0:48]
    blob = 4.0 * np.exp(-((xs - center_xy[0]) ** 2 + (ys - center_xy[1]) ** 2) / (2 * 2.0**2))
    with torch.no_grad():
        final.weight.mul_(0.05)
        final.bias.copy_(torch.from_numpy(blob.reshape(-1).astype(np.float32)))
    return model


def save_blob_checkpoint(path: Path, variant: str = "sdpose_t", **kwargs) -> Path:
    return save_checkpoint(path, blob_model(variant, **kwargs))
