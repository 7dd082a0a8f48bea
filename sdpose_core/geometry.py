"""Top-down crop geometry shared by training augmentation, the app and evaluation.

Everything follows MMPose 0.29's top-down conventions so crops, targets
and decoded keypoints line up with the official checkpoints: boxes become a
(center, scale) pair in units of ``PIXEL_STD`` pixels, crops use the classic 3-point
affine, and heatmap coordinates map back with ``transform_preds`` (no UDP).
Arrays are vectorised over N people; sizes are always given as (width, height).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "INPUT_SIZE",
    "HEATMAP_SIZE",
    "PIXEL_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "box_xyxy_to_xywh",
    "box_xywh_to_xyxy",
    "box_areas",
    "box_intersections",
    "box_iou",
    "boxes_to_center_scale",
    "get_affine_matrix",
    "get_affine_matrices",
    "apply_affine",
    "warp_crops",
    "person_crops",
    "normalize_crops",
    "heatmap_to_image_coords",
]

INPUT_SIZE: tuple[int, int] = (192, 256)  # network crop (w, h)
HEATMAP_SIZE: tuple[int, int] = (48, 64)  # heatmap (w, h), stride 4
PIXEL_STD: float = 200.0  # MMPose's scale unit: scale 1.0 == 200 pixels
MIN_BOX_SIDE: float = 2.0  # pixels: a thinner box would make the crop transform singular

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)  # RGB


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(N,) areas of (N,4) x1,y1,x2,y2 boxes; an inverted box has area 0."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)


def box_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,M) intersection areas of (N,4) and (M,4) x1,y1,x2,y2 boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(rb - lt, 0, None).prod(axis=2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,M) IoU of (N,4) and (M,4) x1,y1,x2,y2 boxes; 0 where both are empty."""
    inter = box_intersections(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N,4) x1,y1,x2,y2 -> (N,4) x,y,w,h with w = x2 - x1 (no +1, as MMPose 0.29)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] = boxes[:, 2:] - boxes[:, :2]
    return out


def box_xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N,4) x,y,w,h -> (N,4) x1,y1,x2,y2 with x2 = x + w; inverse of `box_xyxy_to_xywh`."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] = boxes[:, :2] + boxes[:, 2:]
    return out


def boxes_to_center_scale(
    boxes_xyxy: np.ndarray, aspect_ratio: float = 0.75, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes to MMPose (center, scale), as MMPose 0.29 ``_box2cs``.

    Boxes are (N,4) xyxy in pixels and are read as x, y, w = x2 - x1, h = y2 - y1.
    center = (x + 0.5 w, y + 0.5 h); the shorter side is enlarged so that w/h equals
    ``aspect_ratio`` (input width / height); scale = (w, h) / 200 * padding.

    Returns center (N,2) and scale (N,2), float64 (MMPose keeps float32; < 1e-4 px apart).
    """
    xywh = box_xyxy_to_xywh(boxes_xyxy)
    x, y, w, h = xywh.T
    center = np.stack([x + w * 0.5, y + h * 0.5], axis=1)
    # Same branch order as `_box2cs`: widen tall boxes, heighten wide ones.
    wide = w > aspect_ratio * h
    tall = w < aspect_ratio * h
    h = np.where(wide, w / aspect_ratio, h)
    w = np.where(tall, h * aspect_ratio, w)
    scale = np.stack([w, h], axis=1) / PIXEL_STD * padding
    return center, scale


def _rotated_direction(src_w: np.ndarray, rot_deg: np.ndarray) -> np.ndarray:
    """(0, -src_w/2) rotated by rot_deg (counter-clockwise in math axes), shape (N,2)."""
    rad = np.deg2rad(rot_deg)
    sn, cs = np.sin(rad), np.cos(rad)
    half = src_w * -0.5
    return np.stack([-half * sn, half * cs], axis=-1)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point b + perp(a - b): a right angle at b, which pins down the affine map."""
    d = a - b
    return b + np.stack([-d[..., 1], d[..., 0]], axis=-1)


def _triangles(
    centers: np.ndarray, scales: np.ndarray, rots: np.ndarray, output_size: Sequence[int], shifts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Source and destination triangles (N,3,2), stored as float32 exactly like MMPose."""
    scale_px = scales * PIXEL_STD
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    n = centers.shape[0]
    src = np.empty((n, 3, 2), dtype=np.float32)
    dst = np.empty((n, 3, 2), dtype=np.float32)
    src[:, 0] = centers + scale_px * shifts
    src[:, 1] = centers + _rotated_direction(scale_px[:, 0], rots) + scale_px * shifts
    src[:, 2] = _third_point(src[:, 0], src[:, 1])
    dst[:, 0] = (dst_w * 0.5, dst_h * 0.5)
    dst[:, 1] = (dst_w * 0.5, dst_h * 0.5 - dst_w * 0.5)
    dst[:, 2] = _third_point(dst[:, 0], dst[:, 1])
    return src, dst


def get_affine_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rot_deg: float,
    output_size: Sequence[int],
    shift: Sequence[float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """(2,3) float64 image->crop matrix (crop->image if ``inv``), MMPose ``get_affine_transform``.

    center (2,) and scale (2,) are in MMPose units; only scale[0] (width, 200 px units)
    sets the zoom, so the crop keeps the box's aspect. The box centre goes to the crop
    centre; a point half a width above it (rotated by ``rot_deg``) goes half a crop width
    above the crop centre; the third point is perpendicular. Solved by cv2 like MMPose.
    """
    src, dst = _triangles(
        np.asarray(center, dtype=np.float64).reshape(1, 2),
        np.asarray(scale, dtype=np.float64).reshape(1, 2),
        np.asarray([rot_deg], dtype=np.float64),
        output_size,
        np.asarray(shift, dtype=np.float64).reshape(1, 2),
    )
    if inv:
        src, dst = dst, src
    return cv2.getAffineTransform(src[0], dst[0]).astype(np.float64)


def get_affine_matrices(
    centers: np.ndarray,
    scales: np.ndarray,
    rots: np.ndarray | None,
    output_size: Sequence[int],
    inv: bool = False,
) -> np.ndarray:
    """Vectorised `get_affine_matrix` (no shift): centers/scales (N,2), rots (N,) deg or None.

    Returns (N,2,3) float64; the 3x3 systems are solved in one batched numpy call.
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 2)
    n = centers.shape[0]
    rots = np.zeros(n) if rots is None else np.broadcast_to(np.asarray(rots, dtype=np.float64), (n,))
    if n == 0:
        return np.zeros((0, 2, 3), dtype=np.float64)
    src, dst = _triangles(centers, scales, rots, output_size, np.zeros((n, 2)))
    if inv:
        src, dst = dst, src
    # Rows [x, y, 1] @ M.T = target, so M.T = solve(A, target).
    a = np.concatenate([src.astype(np.float64), np.ones((n, 3, 1))], axis=2)
    return np.linalg.solve(a, dst.astype(np.float64)).transpose(0, 2, 1)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map points (..., 2) with one (2,3) matrix, or points (N, ..., 2) with (N,2,3) matrices.

    Returns float64 points of the same shape.
    """
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 2:
        return points @ matrix[:, :2].T + matrix[:, 2]
    n = matrix.shape[0]
    flat = points.reshape(n, -1, 2)
    out = np.einsum("nij,nkj->nki", matrix[:, :, :2], flat) + matrix[:, None, :, 2]
    return out.reshape(points.shape)


def warp_crops(
    image_bgr: np.ndarray, matrices: np.ndarray, output_size: Sequence[int] = INPUT_SIZE
) -> np.ndarray:
    """Cut N crops from an (H,W,3) uint8 image with (N,2,3) image->crop matrices.

    Returns (N, out_h, out_w, 3) uint8; bilinear, zero border (as MMPose). Each crop is
    written straight into the output batch, the full image is never copied.
    """
    matrices = np.asarray(matrices, dtype=np.float64).reshape(-1, 2, 3)
    out_w, out_h = int(output_size[0]), int(output_size[1])
    out = np.empty((matrices.shape[0], out_h, out_w, image_bgr.shape[2]), dtype=image_bgr.dtype)
    for i, matrix in enumerate(matrices):
        cv2.warpAffine(image_bgr, matrix, (out_w, out_h), dst=out[i], flags=cv2.INTER_LINEAR)
    return out


def person_crops(image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's uint8 crops (N, 256, 192, 3) of N person boxes, with their centers and
    scales (N, 2): the app and int8 calibration cut people out the same way."""
    boxes = np.array(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + MIN_BOX_SIDE)
    centers, scales = boxes_to_center_scale(boxes)
    matrices = get_affine_matrices(centers, scales, None, INPUT_SIZE)
    return warp_crops(image_bgr, matrices, INPUT_SIZE), centers, scales


def _normalize_lut() -> np.ndarray:
    """(3,256) float32 table: RGB channel c of byte v -> (v/255 - mean_c) / std_c."""
    values = np.arange(256, dtype=np.float64) / 255.0
    mean = np.asarray(IMAGENET_MEAN)[:, None]
    std = np.asarray(IMAGENET_STD)[:, None]
    lut = ((values[None, :] - mean) / std).astype(np.float32)
    lut.setflags(write=False)
    return lut


_NORMALIZE_LUT = _normalize_lut()


def normalize_crops(crops_bgr: np.ndarray) -> np.ndarray:
    """(N,H,W,3) uint8 BGR crops -> (N,3,H,W) float32 ImageNet-normalised RGB network input.

    A 256-entry lookup per channel does the BGR->RGB swap, scaling and normalisation in a
    single gather pass straight into the NCHW output.
    """
    crops = np.asarray(crops_bgr)
    if crops.dtype != np.uint8:
        raise TypeError(f"normalize_crops expects uint8 crops, got {crops.dtype}")
    n, h, w, _ = crops.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    for c in range(3):
        np.take(_NORMALIZE_LUT[c], crops[..., 2 - c], out=out[:, c])
    return out


def heatmap_to_image_coords(
    coords: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    heatmap_size: Sequence[int] = HEATMAP_SIZE,
) -> np.ndarray:
    """Heatmap-pixel coords (N,K,2) to image pixels (N,K,2) float64, MMPose ``transform_preds``.

    With S = scale * 200: X = x * S_x / hm_w + c_x - S_x / 2 (same for y). This is the
    non-UDP mapping the official test pipeline uses (heatmap pixel i covers crop pixel 4i).
    """
    coords = np.asarray(coords, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 1, 2)
    size_px = np.asarray(scales, dtype=np.float64).reshape(-1, 1, 2) * PIXEL_STD
    per_cell = size_px / np.asarray(heatmap_size, dtype=np.float64)
    return coords * per_cell + centers - size_px * 0.5
