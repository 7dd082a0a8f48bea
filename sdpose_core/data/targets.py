"""Gaussian heatmap targets, MMPose 0.29 ``TopDownGenerateTarget._msra_generate_target``.

SDPose trains with ``unbiased_encoding=True`` (DARK, as the authors' configs set): the Gaussian sits at
the exact sub-pixel joint position and covers the whole map. The classic rounded 13x13
window (``unbiased=False``) is kept for comparison. Vectorised over joints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sdpose_core.geometry import HEATMAP_SIZE, INPUT_SIZE

__all__ = ["gaussian_targets"]


def gaussian_targets(
    joints: np.ndarray,
    visible: np.ndarray,
    heatmap_size: Sequence[int] = HEATMAP_SIZE,
    image_size: Sequence[int] = INPUT_SIZE,
    sigma: float = 2.0,
    unbiased: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Joints (K,2+) in crop pixels and visibility (K,) -> target (K,H,W), target_weight (K,1).

    As MMPose: feat_stride = image_size / heatmap_size; weight = visible (0/1); a joint
    whose 3-sigma window [mu - 3s, mu + 3s + 1) misses the map gets weight 0; maps of
    weight-0 joints (invisible or outside) stay all zero.

    * unbiased: mu = joint / stride (no rounding), target = exp(-|p - mu|^2 / (2 s^2)) on
      every heatmap pixel p.
    * classic: mu = int(joint / stride + 0.5) (truncation, as Python ``int``), and the
      Gaussian is pasted only inside the window [int(mu - 3s), int(mu + 3s + 1)).

    Both are float32; sizes are (w, h).
    """
    joints = np.asarray(joints, dtype=np.float64).reshape(len(visible), -1)[:, :2]
    w, h = int(heatmap_size[0]), int(heatmap_size[1])
    stride = np.asarray(image_size, dtype=np.float64) / np.array([w, h], dtype=np.float64)
    tmp_size = sigma * 3
    weight = (np.asarray(visible) > 0).astype(np.float32)
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)

    if unbiased:
        mu = joints / stride
        ul = mu - tmp_size
        br = mu + tmp_size + 1
    else:
        mu = np.trunc(joints / stride + 0.5)
        ul = np.trunc(mu - tmp_size)
        br = np.trunc(mu + tmp_size + 1)
    outside = (ul[:, 0] >= w) | (ul[:, 1] >= h) | (br[:, 0] < 0) | (br[:, 1] < 0)
    weight[outside] = 0.0

    gx = np.exp(-((xs[None, :] - mu[:, :1]) ** 2) / (2 * sigma**2))  # (K,W)
    gy = np.exp(-((ys[None, :] - mu[:, 1:]) ** 2) / (2 * sigma**2))  # (K,H)
    if not unbiased:
        # MMPose pastes g[0:size] with g centred at size // 2 and size = 2 * tmp_size + 1.
        size = len(np.arange(0, 2 * tmp_size + 1, 1))
        centre = (2 * tmp_size + 1) // 2
        ix = xs[None, :] - ul[:, :1]
        iy = ys[None, :] - ul[:, 1:]
        gx = np.where((ix >= 0) & (ix < size), np.exp(-((ix - centre) ** 2) / (2 * sigma**2)), 0.0)
        gy = np.where((iy >= 0) & (iy < size), np.exp(-((iy - centre) ** 2) / (2 * sigma**2)), 0.0)
    # exp(-(dx^2 + dy^2)) factorises into an outer product per joint.
    target = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    target *= (weight > 0.5)[:, None, None]
    return target, weight[:, None]
