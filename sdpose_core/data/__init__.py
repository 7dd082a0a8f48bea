"""Training/validation data: settings (`config`), COCO-format top-down samples (`coco`), their
loader (`loader`), MMPose 0.29 augmentation (`augment`), targets (`targets`)."""

from __future__ import annotations

from sdpose_core.data.augment import (
    affine_crop,
    crop_matrices,
    flip_joints,
    flip_matrix,
    half_body_center_scale,
    random_flip,
    random_half_body,
    random_occlusion,
    random_photometric,
    random_scale_rotation,
    random_shift_center,
    random_truncation,
    refit_rotated_box,
    transform_joints,
)
from sdpose_core.data.coco import CocoKeypointDataset, DataError
from sdpose_core.data.config import DataConfig
from sdpose_core.data.loader import build_loader, set_loader_epoch
from sdpose_core.data.targets import gaussian_targets

__all__ = [
    "CocoKeypointDataset",
    "DataConfig",
    "DataError",
    "build_loader",
    "set_loader_epoch",
    "gaussian_targets",
    "affine_crop",
    "crop_matrices",
    "flip_joints",
    "flip_matrix",
    "half_body_center_scale",
    "random_flip",
    "random_half_body",
    "random_occlusion",
    "random_photometric",
    "random_truncation",
    "random_scale_rotation",
    "random_shift_center",
    "refit_rotated_box",
    "transform_joints",
]
