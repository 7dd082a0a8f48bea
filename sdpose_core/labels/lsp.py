"""Leeds Sports Pose (LSP) and LSP-extended (LSPET) human labels, mapped to COCO-17, to mix
with teacher pseudo-labels.

LSP's ``joints.mat`` holds ``joints`` of shape (3, 14, N) = (x, y, flag) x 14 joints x image, in
pixels, in the LSP-14 order: R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow,
R shoulder, L shoulder, L elbow, L wrist, neck, head top. Left/right are the person's own sides,
as in COCO.

The flag is read as **1 = occluded, 0 = visible** (the reverse of what LSP's README suggests):
image 1 (``im0001.jpg``) shows one fully visible person and all its 14 flags are 0, and only
about 7 % of all flags are 1, which fits "occluded" and not "visible". Visible joints become
COCO v=2, occluded ones v=1 (labelled, not visible). LSP has no nose, eyes or ears, so COCO slots
0-4 are v=0; neck and head top have no COCO slot and are only used for the person's box.

LSPET (``joints.npy``, the same (3, 14, N) layout, images ``im00001.webp`` ...) flags the other
way round: **1 = visible, 0 = not**, and its invisible joints carry no position at all (zeros or
negative placeholders), so they become v=0 (unlabelled) and never shape the person's box.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.keypoints import NUM_KEYPOINTS

__all__ = [
    "LSP_TO_COCO",
    "LSP_JOINT_NAMES",
    "LspSet",
    "LSP",
    "LSPET",
    "read_lsp",
    "read_lsp_joints",
    "read_lspet_joints",
    "lsp_to_coco",
    "lsp_person_box",
]

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


@dataclass(frozen=True)
class LspSet:
    """How one of the two releases is read: its annotation ``source`` name and flag meaning."""

    name: str
    source: str
    extended: bool  # LSPET: flag 1 = visible, invisible joints have no position

    def read(self, folder: str | os.PathLike) -> tuple[list[Path], np.ndarray]:
        """Image paths and raw (M,14,3) joints of this release in ``folder``."""
        return read_lspet_joints(folder) if self.extended else read_lsp_joints(folder)


LSP = LspSet("lsp", "lsp-human", extended=False)
LSPET = LspSet("lspet", "lspet-human", extended=True)


def _joints_with_images(
    joints: np.ndarray, label_path: Path, image_name: str
) -> tuple[list[Path], np.ndarray]:
    """(3,14,N) raw joints -> the image paths that exist under ``images/`` and their (M,14,3)
    joints, file order kept. ``image_name`` formats the 1-based index (``im{:04d}.jpg``)."""
    if joints.ndim != 3 or joints.shape[:2] != (3, 14):
        raise UserError(f"{label_path}: expected joints of shape (3, 14, N), got {joints.shape}")
    per_image = joints.transpose(2, 1, 0)  # (N,14,3)
    images = label_path.parent / "images"
    paths, kept = [], []
    for i in range(per_image.shape[0]):
        path = images / image_name.format(i + 1)
        if path.is_file():
            paths.append(path)
            kept.append(per_image[i])
    if not paths:
        raise UserError(f"no labelled images ({image_name.format(1)} ...) in {images}")
    if per_image.shape[0] != len(paths):
        logger.info("%d of %d labelled images present in %s", len(paths), per_image.shape[0], images)
    return paths, np.asarray(kept, dtype=np.float64).reshape(-1, 14, 3)


def read_lsp_joints(lsp_dir: str | os.PathLike) -> tuple[list[Path], np.ndarray]:
    """Image paths that exist and their raw LSP joints (M,14,3) = (x, y, flag), file order kept.

    The shared folder has only the 1,000-image training half; ``joints.mat`` may hold 2,000
    entries (the full release), so entries without an image are skipped.
    """
    from scipy.io import loadmat

    mat_path = Path(lsp_dir) / "joints.mat"
    if not mat_path.is_file():
        raise UserError(
            f"LSP labels not found: {mat_path} (expected the LSP folder with joints.mat and images/)"
        )
    joints = np.asarray(loadmat(str(mat_path))["joints"], dtype=np.float64)
    return _joints_with_images(joints, mat_path, "im{:04d}.jpg")


def read_lspet_joints(lspet_dir: str | os.PathLike) -> tuple[list[Path], np.ndarray]:
    """LSPET's image paths that exist and their raw joints (M,14,3) = (x, y, flag 1 = visible)."""
    npy_path = Path(lspet_dir) / "joints.npy"
    if not npy_path.is_file():
        raise UserError(
            f"LSPET labels not found: {npy_path} (expected the LSPET folder with joints.npy and images/)"
        )
    return _joints_with_images(np.asarray(np.load(npy_path), dtype=np.float64), npy_path, "im{:05d}.webp")


def _visibility(flags: np.ndarray, extended: bool) -> np.ndarray:
    """COCO visibility of raw flags: LSP 0 -> 2 (visible), 1 -> 1 (occluded); LSPET 1 -> 2, 0 -> 0."""
    flags = np.asarray(flags) > 0.5
    if extended:
        return np.where(flags, 2.0, 0.0)
    return np.where(flags, 1.0, 2.0)


def lsp_to_coco(joints14: np.ndarray, extended: bool = False) -> np.ndarray:
    """(14,3) raw (x, y, flag) -> (17,3) COCO (x, y, v); face slots and unlabelled joints are 0,0,0.

    ``extended``: the flags are LSPET's (1 = visible), else LSP's (1 = occluded).
    """
    joints14 = np.asarray(joints14, dtype=np.float64)
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    visibility = _visibility(joints14[:12, 2], extended)
    for lsp_index, coco_index in enumerate(LSP_TO_COCO):
        if visibility[lsp_index] > 0:
            out[coco_index] = (*joints14[lsp_index, :2], visibility[lsp_index])
    return out


def read_lsp(lsp_dir: str | os.PathLike) -> list[tuple[Path, np.ndarray]]:
    """[(image_path, keypoints (17,3) COCO order)] for each LSP image present (one person each)."""
    paths, joints = read_lsp_joints(lsp_dir)
    return [(path, lsp_to_coco(j)) for path, j in zip(paths, joints, strict=True)]


def lsp_person_box(
    joints14: np.ndarray, image_wh: tuple[int, int], expand: float = 1.2, extended: bool = False
) -> np.ndarray:
    """(4,) xyxy: the extent of the 14 labelled joints (head top included) enlarged ``expand``
    times about its centre and clipped to the image; LSP has no person boxes of its own.
    ``extended`` (LSPET): only the visible joints count, the others have no position."""
    joints14 = np.asarray(joints14, dtype=np.float64)
    xy = joints14[:, :2]
    if extended:
        labelled = _visibility(joints14[:, 2], True) > 0
        xy = xy[labelled] if labelled.any() else np.array([[0.0, 0.0], image_wh], dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * expand
    w, h = image_wh
    box = np.concatenate([centre - half, centre + half])
    return np.clip(box, 0, [w, h, w, h])


def lspet_validation_set(lspet_dir: str | os.PathLike, first: str, last: str) -> dict:
    """LSPET's people ``first``..``last`` (image stems) as a COCO keypoint dict for validation:
    each image's file name relative to ``images/``, the whole image as the person's box (the
    convention the teacher's LSPET figures use), visible joints v=2, the rest unlabelled."""
    import cv2

    from sdpose_core.labels.coco_labels import coco_categories

    paths, joints = read_lspet_joints(lspet_dir)
    images, annotations = [], []
    for path, joints14 in zip(paths, joints, strict=True):
        if not first <= path.stem <= last or len(path.stem) != len(first):
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"cannot read LSPET image {path}")
        h, w = image.shape[:2]
        keypoints = lsp_to_coco(joints14, extended=True)
        xy = keypoints[:, :2]
        keypoints[(xy[:, 0] < 0) | (xy[:, 0] >= w) | (xy[:, 1] < 0) | (xy[:, 1] >= h)] = 0
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": path.name, "width": w, "height": h})
        annotations.append(
            {
                "id": image_id,
                "image_id": image_id,
                "category_id": 1,
                "bbox": [0.0, 0.0, float(w), float(h)],
                "area": float(w * h),
                "iscrowd": 0,
                "keypoints": [round(float(v), 2) for v in keypoints.reshape(-1)],
                "num_keypoints": int((keypoints[:, 2] > 0).sum()),
                "source": LSPET.source,
            }
        )
    if not images:
        raise UserError(f"no LSPET images from {first} to {last} in {lspet_dir}")
    info = {
        "description": f"LSPET {first}..{last}, human joints, whole image as the box",
        "lspet": str(lspet_dir),
    }
    return {"info": info, "images": images, "annotations": annotations, "categories": coco_categories()}


def main(argv: list[str] | None = None) -> int:
    """Write LSPET people as a COCO keypoint file (a validation set for `train --val-ann`)."""
    import argparse

    from sdpose_core.jsonio import write_json_atomic

    parser = argparse.ArgumentParser(prog="python -m sdpose_core.labels.lsp", description=main.__doc__)
    parser.add_argument("--lspet", required=True, metavar="DIR", help="LSPET folder (joints.npy, images/)")
    parser.add_argument("--only", default="im08501..im09000", metavar="FIRST..LAST", help="image stems")
    parser.add_argument("--output", required=True, metavar="JSON")
    args = parser.parse_args(argv)
    first, _, last = args.only.partition("..")
    if not first or len(first) != len(last) or first > last:
        raise UserError(f"--only {args.only!r}: expected FIRST..LAST stems of the same length")
    data = lspet_validation_set(args.lspet, first, last)
    write_json_atomic(args.output, data)
    print(
        f"wrote {len(data['annotations'])} LSPET people ({first}..{last}) -> {args.output}; "
        f"images: --val-root {Path(args.lspet) / 'images'}"
    )
    return 0


if __name__ == "__main__":
    import sys

    from sdpose_core.cli import run_cli

    sys.exit(run_cli(main))
