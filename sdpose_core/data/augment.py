"""Top-down training augmentation, step by step as MMPose 0.29's train pipeline.

Order (the caller keeps it): center shift -> flip -> half-body -> scale/rotation -> affine
crop. Every random step takes an explicit ``np.random.Generator`` and draws its numbers in
the same order and under the same conditions as the MMPose transform, so a fixed seed gives
one fixed sample. Joints are (K,2) pixel coordinates, ``visible`` is (K,) 0/1.

`random_photometric` is not in SDPose's recipe (its config has no colour augmentation): it is
an opt-in for small, narrow training sets (``DataConfig.photometric_prob``) and draws its random
numbers after all geometric steps, so a seed's crop geometry is the same with it on or off.
`random_occlusion` (a flat rectangle over the crop) and `random_truncation` (the crop cut off
past a line, the joints there unlabelled) are opt-ins of the same kind, drawn after it.
`refit_rotated_box` (a rotated whole-body crop re-boxed around the turned person) is one too,
drawn right after scale/rotation and only when ``DataConfig.rotation_refit_prob`` is above 0.

Flip without flipping the image: MMPose mirrors the whole image (``img[:, ::-1]``), sets
``center_x = width - 1 - center_x`` and mirrors the joints the same way. Here the joints and
the centre move exactly like that (so half-body, scale and rotation see MMPose's numbers),
but the pixels are not copied: `crop_matrices` composes the mirror ``x -> width - 1 - x`` into
the image->crop affine. Mirroring maps the pixel grid onto itself and the zero border onto
itself, so ``warpAffine(image, M @ F)`` samples exactly the pixels ``warpAffine(image[:, ::-1], M)``
would: the crop, joints and targets are the same sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sdpose_core.geometry import PIXEL_STD, apply_affine, boxes_to_center_scale, get_affine_matrix, warp_crops
from sdpose_core.keypoints import FLIP_INDEX, UPPER_BODY_IDS

__all__ = [
    "random_shift_center",
    "flip_joints",
    "random_flip",
    "half_body_center_scale",
    "random_half_body",
    "random_scale_rotation",
    "refit_rotated_box",
    "flip_matrix",
    "crop_matrices",
    "affine_crop",
    "transform_joints",
    "random_photometric",
    "random_occlusion",
    "random_truncation",
    "random_turn",
    "random_zoom_out",
]


def random_shift_center(
    center: np.ndarray, scale: np.ndarray, rng: np.random.Generator, prob: float = 0.3, factor: float = 0.16
) -> np.ndarray:
    """MMPose ``TopDownRandomShiftBboxCenter`` (prob 0.3, shift_factor 0.16).

    With probability ``prob``: center += uniform(-1, 1, 2) * factor * scale * 200, i.e. up to
    ±16 % of the *padded* box size per axis. Returns a new center (2,) float64.
    """
    center = np.array(center, dtype=np.float64)
    if rng.random() < prob:
        center += rng.uniform(-1.0, 1.0, 2) * factor * np.asarray(scale, dtype=np.float64) * PIXEL_STD
    return center


def flip_joints(
    joints: np.ndarray, visible: np.ndarray, image_width: int, flip_index: np.ndarray = FLIP_INDEX
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``fliplr_joints``: swap left/right joints, x -> width - 1 - x, zero invisible joints."""
    index = np.asarray(flip_index, dtype=np.int64)
    out = np.array(joints, dtype=np.float64)[index]
    vis = np.array(visible, dtype=np.float64)[index]
    out[:, 0] = image_width - 1 - out[:, 0]
    out *= vis[:, None]
    return out, vis


def random_flip(
    center: np.ndarray,
    joints: np.ndarray,
    visible: np.ndarray,
    image_width: int,
    rng: np.random.Generator,
    prob: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """MMPose ``TopDownRandomFlip`` (flip_prob 0.5) on the centre and joints only.

    Returns (center, joints, visible, flipped). When ``flipped``, the crop must be cut with
    ``crop_matrices(..., flip_width=image_width)`` (see the module docstring). MMPose tests
    ``rand() <= prob``; ``<`` is used so that prob 0 never flips (they differ with chance 2^-53).
    """
    center = np.array(center, dtype=np.float64)
    joints = np.array(joints, dtype=np.float64)
    visible = np.array(visible, dtype=np.float64)
    if rng.random() < prob:
        joints, visible = flip_joints(joints, visible, image_width)
        center[0] = image_width - 1 - center[0]
        return center, joints, visible, True
    return center, joints, visible, False


def half_body_center_scale(
    joints: np.ndarray,
    visible: np.ndarray,
    rng: np.random.Generator,
    aspect_ratio: float = 0.75,
    padding: float = 1.5,
    upper_ids: Sequence[int] = UPPER_BODY_IDS,
) -> tuple[np.ndarray, np.ndarray] | None:
    """MMPose ``TopDownHalfBodyTransform.half_body_transform``: a box around one body half.

    Keeps MMPose's quirk of choosing the upper half when ``randn() < 0.5`` (about 69 %, not
    50 %) and it has more than 2 visible joints, else the lower half if it has more than 2,
    else the upper half. center = mean of the chosen joints; their extent is widened to
    ``aspect_ratio`` and scale = (w, h) / 200 * ``padding`` (1.5). None if < 2 joints.
    """
    joints = np.asarray(joints, dtype=np.float64)[:, :2]
    vis = np.asarray(visible) > 0
    is_upper = np.zeros(len(joints), dtype=bool)
    is_upper[list(upper_ids)] = True
    upper, lower = joints[vis & is_upper], joints[vis & ~is_upper]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    elif len(lower) > 2:
        selected = lower
    else:
        selected = upper
    if len(selected) < 2:
        return None
    center = selected.mean(axis=0)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w, h]) / PIXEL_STD * padding


def random_half_body(
    center: np.ndarray,
    scale: np.ndarray,
    joints: np.ndarray,
    visible: np.ndarray,
    rng: np.random.Generator,
    prob: float = 0.3,
    min_joints: int = 8,
    aspect_ratio: float = 0.75,
    padding: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``TopDownHalfBodyTransform`` (prob_half_body 0.3, num_joints_half_body 8).

    Only people with *more than* ``min_joints`` visible joints qualify, and the probability
    is drawn only for them (as MMPose's short-circuit ``and``). Returns (center, scale).
    """
    center = np.array(center, dtype=np.float64)
    scale = np.array(scale, dtype=np.float64)
    if np.sum(np.asarray(visible) > 0) > min_joints and rng.random() < prob:
        half = half_body_center_scale(joints, visible, rng, aspect_ratio, padding)
        if half is not None:
            return half
    return center, scale


def random_scale_rotation(
    scale: np.ndarray,
    rng: np.random.Generator,
    scale_factor: float = 0.35,
    rot_factor: float = 45.0,
    rot_prob: float = 0.6,
) -> tuple[np.ndarray, float]:
    """MMPose ``TopDownGetRandomScaleRotation`` (scale_factor 0.35, rot_factor 45, rot_prob 0.6).

    scale *= clip(randn * sf + 1, 1 - sf, 1 + sf); rot = clip(randn * rf, -2 rf, 2 rf) degrees,
    kept with probability ``rot_prob`` (else 0). Both normals are always drawn, as in MMPose.
    """
    s = np.clip(rng.standard_normal() * scale_factor + 1.0, 1.0 - scale_factor, 1.0 + scale_factor)
    r = float(np.clip(rng.standard_normal() * rot_factor, -2.0 * rot_factor, 2.0 * rot_factor))
    rot = r if rng.random() < rot_prob else 0.0
    return np.asarray(scale, dtype=np.float64) * s, rot


def random_turn(rot: float, rng: np.random.Generator, prob: float) -> float:
    """With probability ``prob``: a rotation drawn uniformly from [-180, 180) degrees instead of
    ``rot``, so upright training people also come upside down, lying and cartwheeling, as
    athletes and fallen people do (MMPose's normal draw stays within 90 degrees). Not in SDPose's
    recipe (`DataConfig.turn_prob`); no draw at all when ``prob`` is 0."""
    if prob <= 0.0 or rng.random() >= prob:
        return rot
    return float(rng.uniform(-180.0, 180.0))


def random_zoom_out(
    center: np.ndarray,
    scale: np.ndarray,
    rng: np.random.Generator,
    prob: float,
    max_zoom: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """With probability ``prob``: the box grown by a factor drawn from [1.5, ``max_zoom``] and its
    centre moved by up to a quarter of the added margin, so the person fills a third to two
    thirds of the crop, off-centre, as in a loose or whole-image box. Not in SDPose's recipe
    (`DataConfig.zoom_out_prob`); no draw at all when ``prob`` is 0."""
    if prob <= 0.0 or rng.random() >= prob:
        return center, scale
    zoom = rng.uniform(1.5, max_zoom)
    grown = scale * zoom
    shift = rng.uniform(-1.0, 1.0, 2) * (grown - scale) * 200.0 * 0.25
    return center + shift, grown


def refit_rotated_box(
    box_size: Sequence[float],
    rot: float,
    aspect_ratio: float = 0.75,
    padding: float = 1.25,
    zoom: float = 1.0,
) -> np.ndarray:
    """The scale of a rotated crop re-boxed as a detector boxes a tilted or lying person.

    MMPose rotates the crop inside the unrotated box, so a standing person turned 90 degrees
    still sits in a tall crop, and the model never sees a person in the wide box a seated,
    crouched or lying person gets. Here the person's box (``box_size`` = (w, h) pixels) is
    turned by ``rot`` degrees and its upright bounding box, (w|cos| + h|sin|, w|sin| + h|cos|),
    is fixed to ``aspect_ratio``, padded by ``padding`` like any box and multiplied by ``zoom``
    (the random scale the crop had). Returns scale (2,) in 200 px units; the center stays.
    Not in SDPose's recipe: `DataConfig.rotation_refit_prob` opts in.
    """
    w, h = (float(v) for v in box_size)
    rad = np.deg2rad(rot)
    cos, sin = abs(np.cos(rad)), abs(np.sin(rad))
    turned = np.array([[0.0, 0.0, w * cos + h * sin, w * sin + h * cos]])
    return boxes_to_center_scale(turned, aspect_ratio, padding)[1][0] * zoom


def flip_matrix(image_width: int) -> np.ndarray:
    """(3,3) homogeneous mirror x -> width - 1 - x, the pixel map of ``img[:, ::-1]``."""
    return np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def crop_matrices(
    center: np.ndarray,
    scale: np.ndarray,
    rot: float,
    image_size: Sequence[int],
    flip_width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(joints_matrix, image_matrix), both (2,3), for MMPose ``TopDownAffine`` (non-UDP).

    ``center``/``scale``/``rot`` and the joints live in the frame MMPose works in (mirrored
    when flipped), so joints take ``joints_matrix`` = ``get_affine_matrix(center, scale, rot)``.
    The pixels come from the un-flipped image, so ``image_matrix`` has the mirror of
    ``flip_width`` composed in (identical to ``joints_matrix`` when not flipped).
    """
    joints_matrix = get_affine_matrix(center, scale, rot, image_size)
    image_matrix = joints_matrix if flip_width is None else joints_matrix @ flip_matrix(flip_width)
    return joints_matrix, image_matrix


def affine_crop(image_bgr: np.ndarray, matrix: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """(H,W,3) uint8 image -> (h,w,3) uint8 crop, ``cv2.warpAffine`` INTER_LINEAR, zero border."""
    return warp_crops(image_bgr, np.asarray(matrix)[None], image_size)[0]


def transform_joints(joints: np.ndarray, visible: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (K,2) joints with the crop matrix; invisible joints become (0, 0).

    MMPose leaves invisible joints untransformed; their value is never used (weight 0), so
    zeros keep the output free of meaningless image coordinates.
    """
    out = apply_affine(np.asarray(joints, dtype=np.float64)[:, :2], matrix)
    out[np.asarray(visible) <= 0] = 0.0
    return out


def random_photometric(
    crop_bgr: np.ndarray,
    rng: np.random.Generator,
    prob: float = 0.5,
    brightness: float = 32.0,
    contrast: tuple[float, float] = (0.6, 1.4),
    saturation: tuple[float, float] = (0.6, 1.4),
    hue: float = 12.0,
    gray_prob: float = 0.1,
    blur_prob: float = 0.1,
) -> np.ndarray:
    """Colour and sharpness jitter of a (h,w,3) uint8 BGR crop: a new uint8 crop, or the same
    array when the ``prob`` draw says no jitter.

    With probability ``prob`` each of brightness (+-``brightness`` levels), contrast, saturation
    and hue (+-``hue`` OpenCV hue units, i.e. degrees / 2) is applied in that order, each with
    chance 1/2, as MMDetection's ``PhotoMetricDistortion``; then grayscale (``gray_prob``) and a
    3x3 or 5x5 Gaussian blur (``blur_prob``), for faded footage and motion blur. Every number is
    drawn whether or not it is used, so the draws per sample are fixed. ``prob`` 0 draws nothing.
    """
    if prob <= 0.0:
        return crop_bgr
    apply, coins = rng.random() < prob, rng.random(6)
    delta = rng.uniform(-brightness, brightness)
    alpha, sat = rng.uniform(*contrast), rng.uniform(*saturation)
    shift, blur_size = rng.uniform(-hue, hue), int(rng.choice([3, 5]))
    if not apply:
        return crop_bgr
    out = crop_bgr.astype(np.float32)
    if coins[0] < 0.5:
        out += delta
    if coins[1] < 0.5:
        out *= alpha
    if coins[2] < 0.5 or coins[3] < 0.5:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
        if coins[2] < 0.5:
            hsv[..., 1] *= sat
        if coins[3] < 0.5:
            hsv[..., 0] = np.mod(hsv[..., 0] + shift, 180.0)
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if coins[4] < gray_prob:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if coins[5] < blur_prob:
        out = cv2.GaussianBlur(out, (blur_size, blur_size), 0)
    return out


def random_occlusion(
    crop_bgr: np.ndarray,
    rng: np.random.Generator,
    prob: float = 0.5,
    side: tuple[float, float] = (0.2, 0.4),
) -> np.ndarray:
    """Paint one rectangle of a random flat colour over a (h,w,3) uint8 crop, in place.

    Each side is ``side`` x the crop's (RTMPose's CoarseDropout proportions). The joints under it
    keep their labels, so the model learns to place a joint hidden behind a bag, a pole or
    another person from the rest of the body. Draws the same numbers whether it paints or not.
    """
    if prob <= 0.0:
        return crop_bgr
    apply, fw, fh, fx, fy = rng.random(5)
    colour = rng.integers(0, 256, 3)
    if apply < prob:
        h, w = crop_bgr.shape[:2]
        rw = int(round(w * (side[0] + fw * (side[1] - side[0]))))
        rh = int(round(h * (side[0] + fh * (side[1] - side[0]))))
        x0, y0 = int(fx * (w - rw + 1)), int(fy * (h - rh + 1))
        crop_bgr[y0 : y0 + rh, x0 : x0 + rw] = colour.astype(np.uint8)
    return crop_bgr


def random_truncation(
    crop_bgr: np.ndarray,
    crop_joints: np.ndarray,
    visible: np.ndarray,
    rng: np.random.Generator,
    prob: float = 0.2,
    keep: tuple[float, float] = (0.4, 0.85),
) -> np.ndarray:
    """Cut the crop off past a random line, as the frame's edge cuts off a close-up person.

    With probability ``prob``: the bottom (70 %), left or right part of the crop beyond
    ``keep`` x its height or width turns black (the zero border of `affine_crop`), and the
    joints there lose their labels: returns the new ``visible`` (the crop changes in place).
    Without it, a pool of full-body people teaches the model that legs are always in the crop,
    and on a waist-up frame it squeezes a whole body into it. Draws 3 numbers whenever ``prob`` > 0.
    """
    visible = np.asarray(visible).copy()
    if prob <= 0.0:
        return visible
    apply, which, fraction = rng.random(3)
    if apply >= prob:
        return visible
    h, w = crop_bgr.shape[:2]
    kept = keep[0] + fraction * (keep[1] - keep[0])
    if which < 0.7:
        cut = int(round(h * kept))
        crop_bgr[cut:] = 0
        gone = crop_joints[:, 1] >= cut
    elif which < 0.85:
        cut = int(round(w * (1.0 - kept)))
        crop_bgr[:, :cut] = 0
        gone = crop_joints[:, 0] < cut
    else:
        cut = int(round(w * kept))
        crop_bgr[:, cut:] = 0
        gone = crop_joints[:, 0] >= cut
    visible[gone] = 0
    return visible
