"""Leeds Sports Pose (LSP) human labels, mapped to COCO-17, to mix with teacher pseudo-labels.

``joints.mat`` holds ``joints`` of shape (3, 14, N) = (x, y, flag) x 14 joints x image, in
pixels, in the LSP-14 order: R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow,
R shoulder, L shoulder, L elbow, L wrist, neck, head top. Left/right are the person's own sides,
as in COCO.

The flag is read as **1 = occluded, 0 = visible** (the reverse of what LSP's README suggests):
image 1 (``im0001.jpg``) shows one fully visible person and all its 14 flags are 0, and only
about 7 % of all flags are 1, which fits "occluded" and not "visible". Visible joints become
COCO v=2, occluded ones v=1 (labelled, not visible). LSP has no nose, eyes or ears, so COCO slots
0-4 are v=0; neck and head top have no COCO slot and are only used for the person's box.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sdpose_core.cli import UserError
from sdpose_core.keypoints import NUM_KEYPOINTS

__all__ = ["LSP_TO_COCO", "LSP_JOINT_NAMES", "read_lsp", "read_lsp_joints", "lsp_to_coco", "lsp_person_box"]

logger = logging.getLogger(__name__)

LSP_JOINT_NAMES: tuple[str, ...] = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "neck",
    "head_top",
)

# COCO index of LSP joints 0..11 (neck and head top have none).
LSP_TO_COCO: tuple[int, ...] = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9)


def read_lsp_joints(lsp_dir: str | os.PathLike) -> tuple[list[Path], np.ndarray]:
    """Image paths that exist and their raw LSP joints (M,14,3) = (x, y, flag), file order kept.

    The shared folder has only the 1,000-image training half; ``joints.mat`` may hold 2,000
    entries (the full release), so entries without an image are skipped.
    """
    from scipy.io import loadmat

    root = Path(lsp_dir)
    mat_path = root / "joints.mat"
    if not mat_path.is_file():
        raise UserError(
            f"LSP labels not found: {mat_path} (expected the LSP folder with joints.mat and images/)"
        )
    joints = np.asarray(loadmat(str(mat_path))["joints"], dtype=np.float64)
    if joints.ndim != 3 or joints.shape[:2] != (3, 14):
        raise UserError(f"{mat_path}: expected joints of shape (3, 14, N), got {joints.shape}")
    per_image = joints.transpose(2, 1, 0)  # (N,14,3)
    paths, kept = [], []
    for i in range(per_image.shape[0]):
        path = root / "images" / f"im{i + 1:04d}.jpg"
        if path.is_file():
            paths.append(path)
            kept.append(per_image[i])
    if per_image.shape[0] != len(paths):
        logger.info("LSP: %d of %d labelled images present in %s", len(paths), per_image.shape[0], root)
    return paths, np.asarray(kept, dtype=np.float64).reshape(-1, 14, 3)


def lsp_to_coco(joints14: np.ndarray) -> np.ndarray:
    """(14,3) LSP (x, y, flag) -> (17,3) COCO (x, y, v): v=2 visible, 1 occluded, 0 face slots."""
    joints14 = np.asarray(joints14, dtype=np.float64)
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    for lsp_index, coco_index in enumerate(LSP_TO_COCO):
        x, y, flag = joints14[lsp_index]
        out[coco_index] = (x, y, 1.0 if flag > 0.5 else 2.0)
    return out


def read_lsp(lsp_dir: str | os.PathLike) -> list[tuple[Path, np.ndarray]]:
    """[(image_path, keypoints (17,3) COCO order)] for each LSP image present (one person each)."""
    paths, joints = read_lsp_joints(lsp_dir)
    return [(path, lsp_to_coco(j)) for path, j in zip(paths, joints, strict=True)]


def lsp_person_box(joints14: np.ndarray, image_wh: tuple[int, int], expand: float = 1.2) -> np.ndarray:
    """(4,) xyxy: the extent of all 14 labelled joints (head top included) enlarged ``expand``
    times about its centre and clipped to the image; LSP has no person boxes of its own."""
    xy = np.asarray(joints14, dtype=np.float64)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * expand
    w, h = image_wh
    box = np.concatenate([centre - half, centre + half])
    return np.clip(box, 0, [w, h, w, h])
