"""Crop refinement: loose boxes are redrawn around the first pass's joints and read again."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.cli import _apply_flags, build_parser
from app.engine import PoseEngine
from app.pipeline import AppConfig
from app.refine import CropRefinement, refined_boxes
from sdpose_core.evaluation import torso_pck
from sdpose_core.labels.lsp import lspet_validation_set

REFINE = CropRefinement(enabled=True, min_score=0.2, min_joints=6, pad=0.2, max_area=0.4)


def _person(x0: float, y0: float, x1: float, y1: float, score: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """17 joints spread over the rectangle x0..x1, y0..y1 (corners included), all at `score`."""
    xs = np.linspace(x0, x1, 17)
    ys = np.linspace(y0, y1, 17)[::-1]
    return np.stack([xs, ys], axis=1)[None].astype(np.float32), np.full((1, 17), score, np.float32)


def test_a_loose_box_is_redrawn_around_the_joints_with_padding():
    keypoints, scores = _person(400, 200, 500, 400)
    whole_frame = np.array([[0, 0, 1000, 800]], np.float32)
    again, boxes = refined_boxes(keypoints, scores, whole_frame, (1000, 800), REFINE)
    assert again.tolist() == [0]
    np.testing.assert_allclose(boxes[0], [380, 160, 520, 440])  # 20 % of 100 x 200 a side


def test_a_fitting_box_or_too_few_confident_joints_keep_the_first_pass():
    keypoints, scores = _person(400, 200, 500, 400)
    fitting = np.array([[385, 170, 515, 430]], np.float32)
    assert refined_boxes(keypoints, scores, fitting, (1000, 800), REFINE)[0].size == 0
    unsure = scores.copy()
    unsure[0, 5:] = 0.1  # five confident joints, six needed
    loose = np.array([[0, 0, 1000, 800]], np.float32)
    assert refined_boxes(keypoints, unsure, loose, (1000, 800), REFINE)[0].size == 0


def test_redrawn_boxes_stay_inside_the_frame():
    keypoints, scores = _person(-50, 600, 100, 790)
    again, boxes = refined_boxes(
        keypoints, scores, np.array([[0, 0, 1000, 800]], np.float32), (1000, 800), REFINE
    )
    assert again.tolist() == [0]
    assert boxes[0, 0] == 0 and boxes[0, 3] == 800


def test_refine_flag_and_config():
    assert AppConfig.load().refine.enabled is False, "off by default: it costs a second pass"
    args = build_parser().parse_args(["--source", "clip.mp4", "--refine"])
    assert _apply_flags(AppConfig.load(), args).refine.enabled is True
    on = AppConfig.load()
    on.refine.enabled, on.flip_test = True, True
    args = build_parser().parse_args(["--source", "clip.mp4", "--no-refine", "--no-flip-test"])
    off = _apply_flags(on, args)
    assert off.refine.enabled is False and off.flip_test is False, "--no-* turns a configured pass off"
    with pytest.raises(ValueError):
        CropRefinement(min_joints=0)


def test_refinement_reads_whole_image_athletes_better(shared_dir):
    """LSPET validation athletes with the whole image as the box (the project's hardest figure):
    the bundled model finds more of their limb joints when it reads them a second time."""
    lspet = shared_dir / "data" / "pool2" / "lspet"
    data = lspet_validation_set(lspet, "im08501", "im08560")
    engine = PoseEngine()
    preds = {False: [], True: []}
    gts, labelled = [], []
    for image_info, ann in zip(data["images"], data["annotations"], strict=True):
        frame = cv2.imread(str(lspet / "images" / image_info["file_name"]))
        x, y, w, h = ann["bbox"]
        box = np.array([[x, y, x + w, y + h]], np.float32)
        for refine in (False, True):
            engine.refine = REFINE if refine else None
            preds[refine].append(engine.estimate(frame, box)[0][0])
        kpts = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
        gts.append(kpts[:, :2])
        labelled.append(kpts[:, 2] > 0)
    gts, labelled = np.stack(gts), np.stack(labelled)
    one_pass = torso_pck(np.stack(preds[False]), gts, labelled)
    two_pass = torso_pck(np.stack(preds[True]), gts, labelled)
    assert one_pass[1] == two_pass[1] > 300  # the same labelled joints
    assert two_pass[0] >= one_pass[0] * 1.15, f"hits {one_pass[0]} -> {two_pass[0]} of {one_pass[1]}"
