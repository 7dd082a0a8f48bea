"""COCO-17 keypoint metadata shared by the model, augmentation, drawing and evaluation.

One place for joint order, flip pairs, skeleton, colours and OKS sigmas (COCO's, as MMPose 0.29 defines them),
so the flip test, the half-body crop and the renderer can never disagree.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NUM_KEYPOINTS",
    "KEYPOINT_NAMES",
    "FLIP_PAIRS",
    "FLIP_INDEX",
    "SKELETON",
    "LINK_COLORS",
    "KEYPOINT_COLORS",
    "OKS_SIGMAS",
    "UPPER_BODY_IDS",
    "LOWER_BODY_IDS",
    "oks_terms",
    "oks_iou",
]

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS: int = len(KEYPOINT_NAMES)

# Left/right pairs swapped by a horizontal flip.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (3, 4),
    (5, 6),
    (7, 8),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
)


def _flip_index() -> np.ndarray:
    index = np.arange(NUM_KEYPOINTS, dtype=np.int64)
    for left, right in FLIP_PAIRS:
        index[left], index[right] = right, left
    index.setflags(write=False)
    return index


# Permutation: channel k of a flipped prediction holds joint FLIP_INDEX[k] (an involution).
FLIP_INDEX: np.ndarray = _flip_index()

# The 19 links in the COCO dataset file's order.
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)

_LEFT = (0, 255, 0)
_RIGHT = (255, 128, 0)
_CENTRE = (51, 153, 255)

# RGB colour per link: left side green, right side orange, centre/head blue (links 4-7, 12-18).
LINK_COLORS: tuple[tuple[int, int, int], ...] = (
    _LEFT,
    _LEFT,
    _RIGHT,
    _RIGHT,
    _CENTRE,
    _CENTRE,
    _CENTRE,
    _CENTRE,
    _LEFT,
    _RIGHT,
    _LEFT,
    _RIGHT,
) + (_CENTRE,) * 7

# RGB colour per joint: head 0-4 blue, odd (left) joints green, even (right) joints orange.
KEYPOINT_COLORS: tuple[tuple[int, int, int], ...] = (_CENTRE,) * 5 + tuple(
    _LEFT if k % 2 == 1 else _RIGHT for k in range(5, NUM_KEYPOINTS)
)


def _frozen(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    array.setflags(write=False)
    return array


# Per-joint OKS falloff used by COCO evaluation and OKS-NMS.
OKS_SIGMAS: np.ndarray = _frozen(
    [
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ]
)  # fmt: skip

# Joint groups for half-body augmentation.
UPPER_BODY_IDS: tuple[int, ...] = tuple(range(0, 11))
LOWER_BODY_IDS: tuple[int, ...] = tuple(range(11, 17))


def oks_terms(d2: np.ndarray, area: np.ndarray | float, sigmas: np.ndarray = OKS_SIGMAS) -> np.ndarray:
    """Each joint's term of COCO's object keypoint similarity, exp(-d^2 / (2 s^2 (2 sigma)^2)).

    `d2` (..., K) squared pixel distances; `area` (the scale s^2) broadcasts against `d2[..., 0]`.
    OKS itself is the mean of these terms over the joints that count, which each caller chooses
    (`oks_iou`: visible in both poses; the tracker: confident in both; COCO: labelled)."""
    variances = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    return np.exp(
        -(np.asarray(d2, dtype=np.float64) / variances / np.asarray(area, dtype=np.float64)[..., None] / 2)
    )


def oks_iou(
    g: np.ndarray,
    d: np.ndarray,
    a_g: float,
    a_d: np.ndarray,
    sigmas: np.ndarray = OKS_SIGMAS,
    vis_thr: float | None = None,
) -> np.ndarray:
    """OKS of one pose g (K*3,) against poses d (M, K*3), MMPose 0.29 ``oks_iou``, vectorised.

    The scale is the mean of the two areas (box areas, not segment areas). With ``vis_thr``
    only joints visible in both poses count; a pair with none has OKS 0. Returns float32 (M,).
    """
    g = np.asarray(g, dtype=np.float64).reshape(-1)
    d = np.asarray(d, dtype=np.float64).reshape(-1, g.size)
    dx = d[:, 0::3] - g[0::3]
    dy = d[:, 1::3] - g[1::3]
    areas = (a_g + np.asarray(a_d, dtype=np.float64).reshape(-1)) / 2 + np.spacing(1)
    terms = oks_terms(dx**2 + dy**2, areas, sigmas)
    if vis_thr is None:
        return terms.mean(axis=1).astype(np.float32) if terms.shape[1] else np.zeros(len(d), np.float32)
    mask = (g[2::3] > vis_thr) & (d[:, 2::3] > vis_thr)
    count = mask.sum(axis=1)
    total = np.where(mask, terms, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
