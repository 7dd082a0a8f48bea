"""Crop refinement: a second pose pass on each person's box redrawn around their first-pass joints.

Why: a top-down model reads a person at the size it was trained on only when the box fits them.
A loose box (a whole photo as the box, a detector box with much background around a crouched or
stretched person) leaves the person small in the 256x192 crop, and the joints come out coarse or
wrong. The first pass still finds the head, torso and most limbs roughly; a box around its
confident joints, widened by `pad` a side, frames the person the way the training crops did, and
the second pass reads them there. It costs a second forward pass for each refined person.

Measured (`benchmarks/bench_accuracy.py --refine`, LSPET's validation athletes with the whole
image as the box, PCK@0.2): the stage-28 bundle of SDPose-T 0.303 -> 0.409 (the current
bundle's figure is in the README's `--refine` bullet), its teacher MoveNet Thunder 0.340 -> 0.454
with the same rule: the gain is the pipeline's, for any top-down model. Boxes that already fit
are left alone (`max_area`): redrawing them from a weak model's joints cost the stage-28 bundle
0.707 -> 0.694 mean OKS on the 41 held-out people with labelled boxes; with the rule, 0.701 (one
loose box).
Off by default: the app's detector boxes fit, and a video's frame rate is worth more; the
window's "Refine loose boxes" checkbox switches it live (`PosePipeline.set_refine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.limits import bounded, check_bounds
from sdpose_core.geometry import box_areas

__all__ = ["CropRefinement", "refined_boxes"]


@dataclass
class CropRefinement:
    """`refine:` in `configs/app.yaml` (`--refine` turns it on)."""

    enabled: bool = False
    min_score: float = bounded(0.2, 0.0, 1.0)  # joints at least this confident draw the new box
    min_joints: int = bounded(6, 1, 17)  # fewer confident joints: keep the first pass
    pad: float = bounded(0.2, 0.0, 2.0)  # the joints' extent widened by this share a side
    max_area: float = bounded(0.4, 0.0, 10.0)  # refine only where the new box is under this share of the old

    def __post_init__(self) -> None:
        check_bounds(self)


def refined_boxes(
    keypoints: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    frame_size: tuple[int, int],
    refine: CropRefinement,
) -> tuple[np.ndarray, np.ndarray]:
    """Which people to read again and their new xyxy boxes.

    `keypoints` (N, 17, 2) and `scores` (N, 17) from the first pass in `boxes` (N, 4) xyxy,
    `frame_size` (w, h). A person with at least `min_joints` joints scoring >= `min_score` gets
    the box around those joints, widened by `pad` of its width and height a side and clipped to
    the frame, if that box is smaller than `max_area` of the first one: a box that already fits
    (a detector's, a labelled one) is kept, as a second reading there gains nothing and a
    missed foot would cut it short. Returns (indices (M,), boxes (M, 4) float32).
    """
    confident = scores >= refine.min_score
    chosen = np.flatnonzero(confident.sum(axis=1) >= refine.min_joints)
    if chosen.size == 0:
        return chosen, np.zeros((0, 4), np.float32)
    masked = np.where(confident[chosen][..., None], keypoints[chosen], np.nan)
    low, high = np.nanmin(masked, axis=1), np.nanmax(masked, axis=1)  # (M, 2)
    margin = refine.pad * (high - low)
    w, h = frame_size
    new = np.concatenate([low - margin, high + margin], axis=1)
    new = np.clip(new, 0, [w, h, w, h]).astype(np.float32)
    new_area = box_areas(new)
    keep = (new_area > 0) & (new_area < refine.max_area * box_areas(np.asarray(boxes)[chosen]))
    return chosen[keep], new[keep]
