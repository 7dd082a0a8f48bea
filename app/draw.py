"""Pure skeleton drawing shared by the GUI overlay, the video writer and CLI previews.

`draw_poses` only reads a `FrameResult`: thresholds decide what is *drawn*, never what is stored.
All drawing goes through OpenCV primitives (anti-aliased, fixed-point sub-pixel coordinates),
with links batched per colour, so the cost per frame is a handful of C calls.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from app.types import FrameResult
from sdpose_core.keypoints import KEYPOINT_COLORS, LINK_COLORS, NUM_KEYPOINTS, SKELETON

__all__ = ["DrawStyle", "draw_poses", "id_color"]

Color = tuple[int, int, int]

_SHIFT = 4  # sub-pixel bits for cv2 drawing calls
_ONE = 1 << _SHIFT
_MAX_COORD = 1e5  # coordinates beyond this are treated as missing (and would overflow fixed point)
_HEAD_IDS = np.arange(5)
_UNTRACKED_COLOR: Color = (200, 200, 200)


def _bgr(rgb: tuple[int, int, int]) -> Color:
    return (int(rgb[2]), int(rgb[1]), int(rgb[0]))


_LINK_A = np.array([a for a, _ in SKELETON], dtype=np.int64)
_LINK_B = np.array([b for _, b in SKELETON], dtype=np.int64)
_KPT_BGR: tuple[Color, ...] = tuple(_bgr(c) for c in KEYPOINT_COLORS)
# Link indices grouped by colour, so each colour is one cv2.polylines call for all people.
_LINKS_BY_COLOR: tuple[tuple[Color, np.ndarray], ...] = tuple(
    (_bgr(color), np.array([i for i, c in enumerate(LINK_COLORS) if c == color], dtype=np.int64))
    for color in dict.fromkeys(LINK_COLORS)
)


@dataclass(frozen=True, slots=True)
class DrawStyle:
    """How to draw; `radius`/`thickness` of None scale with the image so 480p and 4K both read well."""

    kpt_threshold: float = 0.3
    radius: int | None = None
    thickness: int | None = None
    show_boxes: bool = False
    show_ids: bool = True
    show_scores: bool = False

    def sizes(self, height: int, width: int) -> tuple[int, int]:
        """(radius, thickness) in pixels for an image of this size."""
        scale = min(height, width) / 480.0
        thickness = self.thickness if self.thickness is not None else max(1, round(2 * scale))
        radius = self.radius if self.radius is not None else max(2, round(3 * scale))
        return int(radius), int(thickness)


@lru_cache(maxsize=1024)
def id_color(track_id: int) -> Color:
    """A stable BGR colour per track id (golden-ratio hue steps keep neighbouring ids apart)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return (round(b * 255), round(g * 255), round(r * 255))


def draw_poses(image_bgr: np.ndarray, result: FrameResult, style: DrawStyle = DrawStyle()) -> np.ndarray:
    """Draw skeletons (and optional boxes / id labels) onto `image_bgr` in place and return it.

    Args:
        image_bgr: (H, W, 3) uint8 image; the caller copies it first if the original must survive.
        result: people of one frame; keypoints (N, 17, 2) in this image's pixels.
        style: thresholds and sizes.
    """
    n = len(result)
    if n == 0:
        return image_bgr
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(
            f"draw_poses needs an (H, W, 3) uint8 image, got {image_bgr.shape} {image_bgr.dtype}"
        )
    height, width = image_bgr.shape[:2]
    radius, thickness = style.sizes(height, width)

    kpts = np.asarray(result.keypoints, dtype=np.float64).reshape(n, NUM_KEYPOINTS, 2)
    scores = np.asarray(result.kpt_scores, dtype=np.float64).reshape(n, NUM_KEYPOINTS)
    with np.errstate(invalid="ignore"):
        visible = (scores >= style.kpt_threshold) & (np.abs(kpts) < _MAX_COORD).all(axis=-1)
    fixed = np.round(np.where(visible[..., None], kpts, 0.0) * _ONE).astype(np.int32)

    _draw_links(image_bgr, fixed, visible, thickness)
    people, joints = np.nonzero(visible)
    for p, k in zip(people.tolist(), joints.tolist(), strict=True):
        center = (int(fixed[p, k, 0]), int(fixed[p, k, 1]))
        cv2.circle(image_bgr, center, radius * _ONE, _KPT_BGR[k], -1, cv2.LINE_AA, _SHIFT)

    ids = None if result.track_ids is None else np.asarray(result.track_ids).reshape(n)
    boxes = np.asarray(result.boxes, dtype=np.float64).reshape(n, 4)
    if style.show_boxes:
        _draw_boxes(image_bgr, boxes, ids, thickness)
    if (style.show_ids and ids is not None) or style.show_scores:
        box_scores = np.asarray(result.box_scores, dtype=np.float64).reshape(n)
        for i in range(n):
            _draw_label(image_bgr, i, kpts[i], visible[i], boxes[i], ids, box_scores[i], style, radius)
    return image_bgr


def _draw_links(image: np.ndarray, fixed: np.ndarray, visible: np.ndarray, thickness: int) -> None:
    """One polylines call per link colour; a link needs both ends visible."""
    both = visible[:, _LINK_A] & visible[:, _LINK_B]  # (N, L)
    for color, link_ids in _LINKS_BY_COLOR:
        people, cols = np.nonzero(both[:, link_ids])
        if people.size == 0:
            continue
        links = link_ids[cols]
        segments = np.stack([fixed[people, _LINK_A[links]], fixed[people, _LINK_B[links]]], axis=1)
        cv2.polylines(image, list(segments), False, color, thickness, cv2.LINE_AA, _SHIFT)


def _draw_boxes(image: np.ndarray, boxes: np.ndarray, ids: np.ndarray | None, thickness: int) -> None:
    for i, box in enumerate(boxes):
        if not (np.isfinite(box).all() and (np.abs(box) < _MAX_COORD).all()):
            continue
        color = _UNTRACKED_COLOR if ids is None else id_color(int(ids[i]))
        x1, y1, x2, y2 = (int(v) for v in np.round(box * _ONE))
        cv2.rectangle(image, (x1, y1), (x2, y2), color, max(1, thickness // 2 + 1), cv2.LINE_AA, _SHIFT)


def _label_anchor(
    kpts: np.ndarray, visible: np.ndarray, box: np.ndarray, radius: int
) -> tuple[int, int] | None:
    """Bottom-centre of the label: above the visible head joints, else the box top, else the top joint."""
    head = visible[_HEAD_IDS]
    if head.any():
        pts = kpts[_HEAD_IDS][head]
        return int(pts[:, 0].mean()), int(pts[:, 1].min()) - 3 * radius
    if np.isfinite(box).all() and (np.abs(box) < _MAX_COORD).all() and box[2] > box[0]:
        return int((box[0] + box[2]) / 2), int(box[1]) - 2
    if visible.any():
        pts = kpts[visible]
        return int(pts[:, 0].mean()), int(pts[:, 1].min()) - 3 * radius
    return None


def _draw_label(
    image: np.ndarray,
    i: int,
    kpts: np.ndarray,
    visible: np.ndarray,
    box: np.ndarray,
    ids: np.ndarray | None,
    box_score: float,
    style: DrawStyle,
    radius: int,
) -> None:
    parts = []
    if style.show_ids and ids is not None:
        parts.append(f"#{int(ids[i])}")
    if style.show_scores and np.isfinite(box_score):
        parts.append(f"{box_score:.2f}")
    anchor = _label_anchor(kpts, visible, box, radius)
    if not parts or anchor is None:
        return
    text = " ".join(parts)
    height, width = image.shape[:2]
    font_scale = max(0.4, min(height, width) / 1200.0)
    text_thick = max(1, round(font_scale * 2))
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, text_thick)
    pad = max(2, th // 4)
    x0 = int(np.clip(anchor[0] - tw // 2 - pad, 0, max(0, width - tw - 2 * pad)))
    y1 = int(np.clip(anchor[1], th + 2 * pad + baseline, height))
    y0 = y1 - th - baseline - 2 * pad
    color = _UNTRACKED_COLOR if ids is None else id_color(int(ids[i]))
    cv2.rectangle(image, (x0, y0), (x0 + tw + 2 * pad, y1), color, -1)
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luma > 140 else (255, 255, 255)
    org = (x0 + pad, y1 - pad - baseline)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, text_color, text_thick, cv2.LINE_AA)
