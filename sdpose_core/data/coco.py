"""COCO-format top-down keypoint dataset (MMPose 0.29 ``TopDownCocoDataset``).

One sample = one person box. Training uses the annotated people (boxes cleaned as MMPose's
``_load_coco_keypoint_annotation_kernel``) with the augmentation of `augment`; validation
uses GT boxes or a person-detection results file and no augmentation (the flip test is the
evaluator's job). Any COCO keypoints json works, including the real COCO 2017 layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sdpose_core.data import augment
from sdpose_core.data.config import DataConfig
from sdpose_core.data.targets import gaussian_targets
from sdpose_core.errors import DataError
from sdpose_core.geometry import box_xywh_to_xyxy, boxes_to_center_scale, normalize_crops
from sdpose_core.keypoints import NUM_KEYPOINTS

__all__ = ["DataError", "CocoKeypointDataset"]


@dataclass(frozen=True)
class _Record:
    """One person box: everything a sample needs except the pixels."""

    image_id: int
    file_name: str
    width: int
    center: np.ndarray  # (2,)
    scale: np.ndarray  # (2,)
    joints: np.ndarray  # (K,2) image pixels
    visible: np.ndarray  # (K,) 0/1
    bbox_score: float
    # GT boxes only, for tools that rewrite the file: the COCO annotation and its cleaned box.
    annotation: dict[str, Any] | None = None
    clean_box: tuple[float, float, float, float] | None = None
    # The person detector's box ("detector_bbox"), as center/scale, where the annotation has one.
    detector_center: np.ndarray | None = None
    detector_scale: np.ndarray | None = None

    @property
    def source(self) -> str | None:
        """The annotation's "source" label (`pseudo_label` writes it), for `source_repeats`."""
        return self.annotation.get("source") if self.annotation is not None else None


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{what} {path} is unreadable or not JSON: {exc}") from None


def _clean_bbox(bbox: Sequence[float], width: int, height: int, area: float | None) -> list[float] | None:
    """MMPose 0.29 box cleaning: clip to the image with its "-1" convention; None if empty."""
    x, y, w, h = (float(v) for v in bbox[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if (area is None or area > 0) and x2 > x1 and y2 > y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


class CocoKeypointDataset(Dataset):
    """Top-down COCO-17 person samples from a COCO keypoints json.

    ``train``: annotated people (``num_keypoints > 0``, not crowd, MMPose-cleaned box) with
    random augmentation. Otherwise validation: GT boxes (``use_gt_boxes``, the default when
    no ``det_file``) or detections from ``det_file`` (COCO results format, category 1, score
    >= ``det_score_thr``, images of the json only), no augmentation.

    Image paths: ``image_root / file_name``; ``strip_prefix`` is removed from the front of
    ``file_name`` first (HumanArt's ``HumanArt/images/``). If that file does not exist,
    leading folders of ``file_name`` are dropped one at a time until one does, so layouts
    like ``humanart/real_human/...`` work without configuration.

    A training set is ``cfg.repeats`` passes over its people: sample ``index`` is entry
    ``index % len(pass)`` of one pass, with augmentation drawn for ``index`` itself. A pass lists
    every person once in file order, then, when ``cfg.source_repeats`` names their source, the
    extra copies (copy 2 of each such person in file order, then copy 3, ...).

    Randomness: sample ``index`` in epoch ``e`` uses ``np.random.default_rng((seed, e, index))``,
    independent of worker count and order, so ``--resume`` reproduces samples. Call
    `set_epoch` (or `set_loader_epoch`) before iterating each epoch; the epoch lives in
    shared memory, so persistent workers see it.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike[str],
        image_root: str | os.PathLike[str],
        train: bool,
        det_file: str | os.PathLike[str] | None = None,
        use_gt_boxes: bool | None = None,
        det_score_thr: float = 0.0,
        cfg: DataConfig | None = None,
        seed: int = 0,
        strip_prefix: str | None = None,
    ) -> None:
        self.cfg = cfg if cfg is not None else DataConfig()
        self.train = bool(train)
        self.seed = int(seed)
        self.image_root = Path(image_root)
        self.strip_prefix = strip_prefix
        self.ann_file = Path(ann_file)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        if use_gt_boxes is None:
            use_gt_boxes = det_file is None
        if train and det_file is not None:
            raise DataError("a det_file is for validation only; training uses the annotated boxes")
        if not use_gt_boxes and det_file is None:
            raise DataError("use_gt_boxes=False needs a det_file of person detections")
        if use_gt_boxes and det_file is not None and not train:
            raise DataError("use_gt_boxes=True contradicts the det_file given; pass one or the other")
        self.use_gt_boxes = bool(use_gt_boxes)

        coco = _read_json(self.ann_file, "annotation file")
        if (
            not isinstance(coco, dict)
            or not isinstance(coco.get("images"), list)
            or not isinstance(coco.get("annotations"), list)
        ):
            raise DataError(
                f"annotation file {self.ann_file} is not COCO format (no images/annotations lists)"
            )
        if not self.image_root.is_dir():
            raise DataError(f"image folder not found: {self.image_root}")
        try:
            self.info: dict[str, Any] = dict(coco.get("info") or {})
            self._images = {int(im["id"]): im for im in coco["images"]}
            if self.use_gt_boxes:
                self.records = self._gt_records(coco["annotations"])
            else:
                self.records = self._det_records(Path(det_file), float(det_score_thr))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"annotation file {self.ann_file} is malformed: {exc!r}") from None
        if not self.records:
            if self.use_gt_boxes:
                raise DataError(f"annotation file {self.ann_file} has no people with keypoints")
            raise DataError(
                f"det file {det_file} has no person boxes with score >= {det_score_thr} "
                f"for the images of {self.ann_file}"
            )
        self._pass = self._one_pass()
        # Fail fast on a wrong image_root instead of inside a worker later.
        self.image_path(0)
        self.teacher = self._teacher() if self.train else None

    def _teacher(self):
        """MoveNet heatmaps for soft targets (`DataConfig.teacher_heatmap_weight`), or None."""
        if not self.cfg.teacher_heatmap_weight:
            return None
        from sdpose_core.errors import UserError
        from sdpose_core.labels.labeler import default_model_path
        from sdpose_core.labels.teacher_targets import TeacherHeatmaps

        try:
            path = default_model_path("movenet", self.cfg.teacher_model or None, "teacher_model")
            return TeacherHeatmaps(path)
        except UserError as exc:
            raise DataError(str(exc)) from None

    # ---------------------------------------------------------------- loading
    def _one_pass(self) -> np.ndarray:
        """Record indices of one training pass (see the class docstring); validation: each once."""
        order = np.arange(len(self.records))
        wanted = self.cfg.source_repeats if self.train else {}
        if not wanted:
            return order
        sources = [rec.source for rec in self.records]
        unknown = set(wanted) - set(sources)
        if unknown:
            found = sorted({str(source) for source in sources})
            raise DataError(
                f"source_repeats names {sorted(unknown)}, but {self.ann_file} has people from {found} only"
            )
        counts = np.array([wanted.get(source, 1) for source in sources])
        extra = [order[counts >= copy] for copy in range(2, int(counts.max()) + 1)]
        return np.concatenate([order, *extra])

    def _gt_records(self, annotations: list[dict[str, Any]]) -> list[_Record]:
        """People with keypoints, boxes cleaned like ``_load_coco_keypoint_annotation_kernel``."""
        records = []
        for ann in annotations:
            if ann.get("category_id", 1) != 1 or ann.get("iscrowd", 0) or "bbox" not in ann:
                continue
            kpts = ann.get("keypoints")
            if not kpts or max(kpts) == 0 or ann.get("num_keypoints", 1) == 0:
                continue
            if len(kpts) != 3 * NUM_KEYPOINTS:
                raise ValueError(f"annotation {ann.get('id')} has {len(kpts) // 3} keypoints, not 17")
            image = self._images[int(ann["image_id"])]
            box = _clean_bbox(ann["bbox"], int(image["width"]), int(image["height"]), ann.get("area"))
            if box is None:
                continue
            kpts = np.asarray(kpts, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
            record = self._record(image, box, kpts[:, :2], np.minimum(1.0, kpts[:, 2]), 1.0, ann)
            detector_box = ann.get("detector_bbox")
            if self.train and detector_box is not None:
                clean = _clean_bbox(detector_box, int(image["width"]), int(image["height"]), None)
                if clean is not None:
                    center, scale = self._center_scale(clean)
                    record = replace(record, detector_center=center, detector_scale=scale)
            records.append(record)
        return records

    def _det_records(self, det_file: Path, thr: float) -> list[_Record]:
        """Detections as MMPose ``_load_coco_person_detection_results`` (boxes used as given)."""
        dets = _read_json(det_file, "det file")
        if not isinstance(dets, list):
            raise DataError(f"det file {det_file} is not a COCO results list")
        zeros = np.zeros((NUM_KEYPOINTS, 2))
        hidden = np.zeros(NUM_KEYPOINTS)
        records = []
        try:
            for det in dets:
                if det.get("category_id", 1) != 1 or float(det["score"]) < thr:
                    continue
                image = self._images.get(int(det["image_id"]))
                if image is not None:
                    records.append(self._record(image, det["bbox"], zeros, hidden, float(det["score"])))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"det file {det_file} is malformed: {exc!r}") from None
        return records

    def _record(
        self,
        image: dict[str, Any],
        box: Sequence[float],
        joints: np.ndarray,
        vis: np.ndarray,
        score: float,
        annotation: dict[str, Any] | None = None,
    ) -> _Record:
        """One person's record, their box cropped as `_center_scale` says."""
        center, scale = self._center_scale(box)
        name, width = str(image["file_name"]), int(image["width"])
        clean_box = tuple(float(v) for v in box[:4]) if annotation is not None else None
        return _Record(
            int(image["id"]), name, width, center, scale, joints, vis, score, annotation, clean_box
        )

    def _center_scale(self, box: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Box (x, y, w, h) -> MMPose center/scale (padding 1.25, aspect 0.75) via geometry."""
        xyxy = box_xywh_to_xyxy(np.asarray(box[:4], dtype=np.float64))
        center, scale = boxes_to_center_scale(xyxy, self.cfg.aspect_ratio, self.cfg.padding)
        return center[0], scale[0]

    def image_path(self, index: int) -> Path:
        """Resolve a sample's image file (see the class docstring); DataError if none exists."""
        name = self.records[self._pass[index % len(self._pass)]].file_name
        if self.strip_prefix and name.startswith(self.strip_prefix):
            name = name[len(self.strip_prefix) :]
        parts = Path(name).parts
        for start in range(len(parts)):
            path = self.image_root.joinpath(*parts[start:])
            if path.is_file():
                return path
        raise DataError(f"image not found: {self.image_root / name}")

    # ---------------------------------------------------------------- samples
    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (shared with running workers)."""
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def __len__(self) -> int:
        return len(self._pass) * (self.cfg.repeats if self.train else 1)

    def _augment(
        self, rec: _Record, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray, int | None]:
        """MMPose train order: shift, flip, half-body, scale/rotation; then the opt-in turn, rotation
        refit and zoom-out. Before all of them, the opt-in choice of the detector's box.

        Returns the mirrored frame.
        """
        cfg = self.cfg
        center, start_scale, from_detector = rec.center, rec.scale, False
        if cfg.detector_box_prob > 0.0:  # one draw for every person when on; none when off
            from_detector = rng.random() < cfg.detector_box_prob and rec.detector_center is not None
            if from_detector:
                center, start_scale = rec.detector_center, rec.detector_scale
        center = augment.random_shift_center(center, start_scale, rng, cfg.shift_prob, cfg.shift_factor)
        center, joints, vis, flipped = augment.random_flip(
            center, rec.joints, rec.visible, rec.width, rng, cfg.flip_prob
        )
        center, scale = augment.random_half_body(
            center,
            start_scale,
            joints,
            vis,
            rng,
            cfg.half_body_prob,
            cfg.half_body_min_joints,
            cfg.aspect_ratio,
            cfg.half_body_padding,
        )
        box_scale = scale
        scale, rot = augment.random_scale_rotation(scale, rng, cfg.scale_factor, cfg.rot_factor, cfg.rot_prob)
        rot = augment.random_turn(rot, rng, cfg.turn_prob)
        # refit turns the person's own box: not the detector's, not a half-body one
        whole_box = rec.clean_box is not None and not from_detector and np.array_equal(box_scale, rec.scale)
        refit = rot != 0.0 and whole_box and cfg.rotation_refit_prob > 0.0
        if refit and rng.random() < cfg.rotation_refit_prob:
            zoom = scale[0] / box_scale[0]
            scale = augment.refit_rotated_box(rec.clean_box[2:], rot, cfg.aspect_ratio, cfg.padding, zoom)
        center, scale = augment.random_zoom_out(center, scale, rng, cfg.zoom_out_prob, cfg.zoom_out_max)
        return center, scale, rot, joints, vis, (rec.width if flipped else None)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec, cfg = self.records[self._pass[index % len(self._pass)]], self.cfg
        path = self.image_path(index)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # the one decode of this sample
        if image is None:
            raise DataError(f"cannot read image {path}")
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, int(index)))
            center, scale, rot, joints, vis, flip_width = self._augment(rec, rng)
        else:
            center, scale, rot, flip_width = rec.center, rec.scale, 0.0, None
            joints, vis = rec.joints, rec.visible
        joints_matrix, image_matrix = augment.crop_matrices(center, scale, rot, cfg.image_size, flip_width)
        crop = augment.affine_crop(image, image_matrix, cfg.image_size)
        crop_joints = augment.transform_joints(joints, vis, joints_matrix)
        if self.train:  # the crop is this sample's own array: occlusion and truncation paint on it
            gray = cfg.photometric_gray_prob
            crop = augment.random_photometric(crop, rng, cfg.photometric_prob, gray_prob=gray)
            crop = augment.random_occlusion(crop, rng, cfg.occlusion_prob)
            vis = augment.random_truncation(crop, crop_joints, vis, rng, cfg.truncation_prob)
            crop_joints[vis <= 0] = 0.0
        sigma = cfg.sigma_at(self.epoch) if self.train else cfg.sigma
        target, weight = gaussian_targets(
            crop_joints, vis, cfg.heatmap_size, cfg.image_size, sigma, cfg.unbiased_encoding
        )
        if self.teacher is not None and rec.source in cfg.teacher_heatmap_sources:
            unlabelled = weight[:, 0] == 0  # the teacher was unsure, or the joint left the crop
            if unlabelled.any():
                target[unlabelled] = self.teacher(crop)[unlabelled]
                weight[unlabelled] = cfg.teacher_heatmap_weight
        joints_out = np.concatenate([crop_joints, vis[:, None]], axis=1).astype(np.float32)
        return {
            "image": torch.from_numpy(normalize_crops(crop[None])[0]),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "joints": torch.from_numpy(joints_out),
            "center": torch.from_numpy(np.asarray(center, dtype=np.float64)),
            "scale": torch.from_numpy(np.asarray(scale, dtype=np.float64)),
            "rotation": float(rot),
            "image_id": rec.image_id,
            "bbox_score": rec.bbox_score,
            "index": int(index),
        }
