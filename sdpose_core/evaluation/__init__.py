"""Evaluation: run a model over a validation set (`predict`) and score it (`metrics`: COCO
keypoint AP/AR, PCK). `python -m sdpose_core.evaluation.evaluate` does both for a checkpoint."""

from __future__ import annotations

from sdpose_core.evaluation.metrics import (
    LIMB_JOINTS,
    PCK_ALPHA,
    STAT_NAMES,
    coco_keypoint_eval,
    format_table,
    oks_iou,
    oks_nms,
    pck_against_annotations,
    rescore,
    torso_pck,
)
from sdpose_core.evaluation.predict import infer_heatmaps, predict_dataset

__all__ = [
    "STAT_NAMES",
    "oks_iou",
    "oks_nms",
    "rescore",
    "coco_keypoint_eval",
    "format_table",
    "PCK_ALPHA",
    "LIMB_JOINTS",
    "torso_pck",
    "pck_against_annotations",
    "infer_heatmaps",
    "predict_dataset",
]
