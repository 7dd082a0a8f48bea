"""Heatmap post-processing: flip-test merge and keypoint decoding (MMPose 0.29's top-down test_cfg).

Reproduces MMPose 0.29 top-down test behaviour (``flip_back`` + ``shift_heatmap`` and
``keypoints_from_heatmaps`` with ``post_process='unbiased'``, i.e. DARK) so that the
official checkpoints give their published accuracy, but vectorised over people and
joints: only the Gaussian blur touches OpenCV, and it runs once per batch.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from sdpose_core.geometry import heatmap_to_image_coords
from sdpose_core.keypoints import FLIP_INDEX

__all__ = ["flip_back", "get_max_preds", "gaussian_blur_heatmaps", "dark_refine", "decode_heatmaps"]

POST_PROCESSES = ("unbiased", "default", None)


def flip_back(heatmaps_flipped: Any, flip_index: np.ndarray = FLIP_INDEX, shift: bool = True) -> Any:
    """Bring heatmaps (N,K,H,W) of a mirrored crop back to the original frame.

    Swaps left/right channels (channel k takes ``flip_index[k]``), mirrors along W and, if
    ``shift``, moves everything one column right (column 0 keeps its value), as the
    official ``shift_heatmap=True`` does to undo the half-pixel bias of mirroring.
    Works on numpy arrays and on torch tensors (returns the same kind, never in place).
    """
    index = np.asarray(flip_index, dtype=np.int64)
    if isinstance(heatmaps_flipped, np.ndarray):
        out = heatmaps_flipped[:, index, :, ::-1].copy()
        if shift:
            out[..., 1:] = out[..., :-1].copy()
        return out
    # torch.Tensor: advanced indexing and flip() both return new tensors.
    out = heatmaps_flipped[:, index.tolist()].flip(-1)
    if shift:
        out[..., 1:] = out[..., :-1].clone()
    return out


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax per map, as MMPose 0.29 ``_get_max_preds``.

    heatmaps (N,K,H,W) -> coords (N,K,2) float32 (x = idx % W, y = idx // W) and
    maxvals (N,K,1) (the heatmap's dtype). Where maxval <= 0 (or NaN) the coordinate is
    (-1, -1): MMPose 0.29 uses ``np.where(maxvals > 0, preds, -1)``; the ``preds *= mask``
    variant that gives (0, 0) belongs to older HRNet code. The decode fixture has only
    positive peaks, so it cannot tell the two apart; MMPose 0.29's source does the same.
    """
    heatmaps = np.asarray(heatmaps)
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    idx = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    coords[~(maxvals[..., 0] > 0)] = -1.0
    return coords, maxvals


def gaussian_blur_heatmaps(heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK modulation: zero-padded Gaussian blur of every map, rescaled to its original max.

    Each (H,W) map is padded by (kernel-1)/2 zeros and blurred with a kernel x kernel
    Gaussian, sigma chosen by OpenCV (2.0 for 11), then cropped back. All maps are stacked
    into one tall image with zero gaps as wide as the kernel radius, so a single
    ``cv2.GaussianBlur`` call gives bit-identical results to blurring them one by one.
    Returns a new float32 (N,K,H,W) array.
    """
    if kernel % 2 != 1 or kernel < 1:
        raise ValueError(f"kernel must be a positive odd number, got {kernel}")
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = heatmaps.shape
    m = n * k
    if m == 0 or kernel == 1:
        return heatmaps.copy()
    border = (kernel - 1) // 2
    pitch = h + border
    tall = np.zeros((border + m * pitch, w + 2 * border), dtype=np.float32)
    tiles = tall[border:].reshape(m, pitch, w + 2 * border)
    tiles[:, :h, border:-border] = heatmaps.reshape(m, h, w)
    blurred = cv2.GaussianBlur(tall, (kernel, kernel), 0)
    out = blurred[border:].reshape(m, pitch, w + 2 * border)[:, :h, border:-border]
    origin_max = heatmaps.reshape(m, -1).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = origin_max / out.reshape(m, -1).max(axis=1)
    return (out * ratio[:, None, None]).reshape(n, k, h, w)


def _int_parts(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truncate toward zero like Python's int(); non-finite values become -1 (invalid)."""
    safe = np.where(np.isfinite(coords), coords, -1.0)
    ints = np.trunc(safe).astype(np.int64)
    return ints[..., 0], ints[..., 1]


def dark_refine(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK sub-pixel refinement of argmax coords (N,K,2) on heatmaps (N,K,H,W).

    Blur (`gaussian_blur_heatmaps`), take log(max(map, 1e-10)), then one Newton step
    x - H^-1 g on the log map at the integer argmax, with central differences. Joints with
    the integer part outside 1 < x < W-2, 1 < y < H-2, or with a singular Hessian, keep
    their coordinate. Returns new float32 (N,K,2) heatmap coordinates.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = heatmaps.shape
    out = np.array(coords, dtype=np.float32).reshape(n * k, 2)
    if n * k == 0:
        return out.reshape(n, k, 2)
    log_maps = np.log(np.maximum(gaussian_blur_heatmaps(heatmaps, kernel), np.float32(1e-10)))
    log_maps = log_maps.reshape(n * k, h, w)
    px, py = _int_parts(out)
    sel = np.nonzero((px > 1) & (px < w - 2) & (py > 1) & (py < h - 2))[0]
    if sel.size == 0:
        return out.reshape(n, k, 2)
    x, y = px[sel], py[sel]

    def at(dy: int, dx: int) -> np.ndarray:
        return log_maps[sel, y + dy, x + dx]

    # float32 differences, like the reference's per-joint scalar arithmetic.
    centre = at(0, 0)
    gx = 0.5 * (at(0, 1) - at(0, -1))
    gy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * centre + at(0, -2))
    dyy = 0.25 * (at(2, 0) - 2 * centre + at(-2, 0))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    ok = det != 0
    sel, gx, gy, dxx, dyy, dxy = sel[ok], gx[ok], gy[ok], dxx[ok], dyy[ok], dxy[ok]
    det = det[ok].astype(np.float64)
    # -H^-1 g with the closed-form 2x2 inverse.
    off_x = -(dyy * gx.astype(np.float64) - dxy * gy.astype(np.float64)) / det
    off_y = -(dxx * gy.astype(np.float64) - dxy * gx.astype(np.float64)) / det
    out[sel, 0] += off_x.astype(np.float32)
    out[sel, 1] += off_y.astype(np.float32)
    return out.reshape(n, k, 2)


def _quarter_shift(coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Classic refinement: move 0.25 px toward the larger neighbour (interior joints only)."""
    n, k, h, w = heatmaps.shape
    out = np.array(coords, dtype=np.float32).reshape(n * k, 2)
    maps = heatmaps.reshape(n * k, h, w)
    px, py = _int_parts(out)
    sel = np.nonzero((px > 1) & (px < w - 1) & (py > 1) & (py < h - 1))[0]
    x, y = px[sel], py[sel]
    diff_x = maps[sel, y, x + 1] - maps[sel, y, x - 1]
    diff_y = maps[sel, y + 1, x] - maps[sel, y - 1, x]
    out[sel, 0] += np.sign(diff_x).astype(np.float32) * np.float32(0.25)
    out[sel, 1] += np.sign(diff_y).astype(np.float32) * np.float32(0.25)
    return out.reshape(n, k, 2)


def decode_heatmaps(
    heatmaps: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    post_process: str | None = "unbiased",
    kernel: int = 11,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N,K,H,W) of N crops to image keypoints, MMPose 0.29 ``keypoints_from_heatmaps``.

    centers/scales (N,2) are the crops' MMPose box parameters. ``post_process`` is
    "unbiased" (DARK, what SDPose uses), "default" (quarter-pixel shift) or None.
    Scores are the raw (un-blurred) map maxima. Returns preds (N,K,2) float32 image
    coordinates and maxvals (N,K,1) float32; N = 0 gives empty arrays of those shapes.
    """
    if post_process not in POST_PROCESSES:
        raise ValueError(f"post_process must be one of {POST_PROCESSES}, got {post_process!r}")
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N,K,H,W), got shape {heatmaps.shape}")
    n, k, h, w = heatmaps.shape
    coords, maxvals = get_max_preds(heatmaps)
    if post_process == "unbiased":
        coords = dark_refine(coords, heatmaps, kernel)
    elif post_process == "default":
        coords = _quarter_shift(coords, heatmaps)
    preds = heatmap_to_image_coords(coords, np.reshape(centers, (n, 2)), np.reshape(scales, (n, 2)), (w, h))
    return preds.astype(np.float32), maxvals.astype(np.float32)
