"""The labeller: a person detector feeding the teacher (or YOLO on its own), keeping only
confident joints; its settings, its model files and what the annotation file records about them.

Separate from the `pseudo_label` run so that other code (the training set's soft targets) can
find the teacher's model file without the labelling command.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.keypoints import NUM_KEYPOINTS
from sdpose_core.labels.coco_labels import FaceFill
from sdpose_core.labels.teachers import DEFAULT_FLIP_AGREE, MoveNetTeacher, YoloPoseTeacher

__all__ = ["LabelSettings", "PseudoLabeler", "default_model_path", "teacher_info"]


_MODELS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "models"
_DEFAULT_MODELS = {"movenet": "movenet/movenet-thunder.onnx", "yolo": "yolo11n-pose/yolo11n-pose.onnx"}
_LICENSES = {
    "movenet": "Apache-2.0 (MoveNet Thunder v4, TF Hub)",
    "yolo": "AGPL-3.0 (Ultralytics YOLO11n-pose)",
}


@dataclass(frozen=True)
class LabelSettings:
    """Teacher and filtering settings; all of them are recorded in the file's ``info``."""

    teacher: str = "movenet"
    min_kpt_score: float = 0.3
    min_kpts: int = 6
    min_box_score: float = 0.5
    min_box_height: float = 32.0
    flip_tta: bool = False
    flip_agree: float = DEFAULT_FLIP_AGREE
    det_size: int = 640
    det_iou: float = 0.6
    crop_padding: float = 1.25
    orientations: tuple[float, ...] = (0.0,)
    orientation_accept: float | None = None


def default_model_path(kind: str, explicit: str | os.PathLike | None = None, flag: str = "") -> Path:
    """``explicit`` if given, else ``../shared/data/models/...`` beside the repository.

    A missing default is a one-line error saying where to put the file.
    """
    if explicit is not None:
        return Path(explicit)
    path = _MODELS_DIR / _DEFAULT_MODELS[kind]
    if not path.is_file():
        role = "detector" if flag == "--detector-model" else "teacher"
        raise UserError(
            f"{role} model not found: {path} — put {path.name} there (the files are in "
            f"shared/data/models/) or pass {flag or '--teacher-model'} PATH"
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def teacher_info(settings: LabelSettings, teacher_path: Path) -> dict:
    """The teacher's file and settings, as recorded in the annotation file's ``info``."""
    s = settings
    teacher = {
        "name": s.teacher,
        "model": str(teacher_path),
        "sha256": _sha256(teacher_path),
        "license": _LICENSES[s.teacher],
        "min_kpt_score": s.min_kpt_score,
        "min_kpts": s.min_kpts,
        "flip_tta": s.flip_tta,
        "flip_agree": s.flip_agree if s.flip_tta else None,
    }
    if s.teacher == "movenet":
        teacher["crop"] = f"box enlarged {s.crop_padding}x, black-padded to a square, 256x256"
        teacher["orientations"] = list(s.orientations)
        if len(s.orientations) > 1:
            teacher["orientation_tta"] = (
                "the crop turned by each angle (degrees, counter-clockwise), joints turned back; "
                "the orientation with the highest mean joint score is kept (per person: 'orientation')"
            )
            teacher["orientation_accept"] = s.orientation_accept
    return teacher


class PseudoLabeler:
    """``labeler(image_bgr) -> list of people`` (dicts: box xyxy, box_score, keypoints (17,3), kpt_scores).

    keypoints' third column is COCO visibility: 2 where the teacher's score >= ``min_kpt_score``
    and the point lies inside the image, else 0 (with x = y = 0). A person is kept when its box
    score >= ``min_box_score``, its box is at least ``min_box_height`` px tall and it has
    >= ``min_kpts`` kept joints.
    """

    def __init__(
        self,
        settings: LabelSettings,
        teacher_model: str | os.PathLike | None = None,
        detector_model: str | os.PathLike | None = None,
        threads: int | None = None,
    ) -> None:
        if settings.teacher not in _DEFAULT_MODELS:
            raise UserError(f"unknown teacher {settings.teacher!r}; choose movenet or yolo")
        self.settings = s = settings
        if s.teacher == "yolo":
            # YOLO is its own detector; either flag may name its file.
            path = default_model_path("yolo", teacher_model or detector_model, "--teacher-model")
            self.teacher_path = self.detector_path = path
            self.detector = YoloPoseTeacher(
                path, s.det_size, s.min_box_score, s.det_iou, threads, s.flip_tta, s.flip_agree
            )
            self.movenet = None
        else:
            self.teacher_path = default_model_path("movenet", teacher_model, "--teacher-model")
            self.movenet = MoveNetTeacher(
                self.teacher_path,
                threads,
                s.flip_tta,
                s.flip_agree,
                s.crop_padding,
                s.orientations,
                s.orientation_accept,
            )
            self.detector_path = default_model_path("yolo", detector_model, "--detector-model")
            self.detector = YoloPoseTeacher(
                self.detector_path, s.det_size, s.min_box_score, s.det_iou, threads, role="detector"
            )

    def info(self) -> dict:
        """The teacher and detector settings for the annotation file's ``info``."""
        s = self.settings
        teacher = teacher_info(s, self.teacher_path)
        detector = {
            "name": "yolo11n-pose",
            "model": str(self.detector_path),
            "sha256": teacher["sha256"]
            if self.detector_path == self.teacher_path
            else _sha256(self.detector_path),
            "imgsz": s.det_size,
            "conf": s.min_box_score,
            "nms_iou": s.det_iou,
            "min_box_score": s.min_box_score,
            "min_box_height": s.min_box_height,
        }
        return {"teacher": teacher, "detector": detector}

    def __call__(self, image_bgr: np.ndarray) -> list[dict]:
        """People in an image, found by the detector."""
        s = self.settings
        boxes, box_scores, kpts, kpt_scores = self.detector(image_bgr)
        heights = boxes[:, 3] - boxes[:, 1]
        keep = (box_scores >= s.min_box_score) & (heights >= s.min_box_height)
        boxes, box_scores, kpts, kpt_scores = boxes[keep], box_scores[keep], kpts[keep], kpt_scores[keep]
        orientations = np.zeros(len(boxes))
        if self.movenet is not None and len(boxes):
            poses = self.movenet.predict(image_bgr, boxes)
            kpts, kpt_scores, orientations = poses.keypoints, poses.scores, poses.orientations
        return self._confident(image_bgr, boxes, box_scores, kpts, kpt_scores, orientations)

    def label_boxes(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> list[dict]:
        """People in given (human-drawn) boxes: the teacher reads each box, no detector runs.
        Boxes shorter than ``min_box_height`` are skipped."""
        if self.movenet is None:
            raise UserError("person boxes from a file (--boxes) need the movenet teacher")
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        boxes = boxes[boxes[:, 3] - boxes[:, 1] >= self.settings.min_box_height]
        if not len(boxes):
            return []
        poses = self.movenet.predict(image_bgr, boxes)
        return self._confident(
            image_bgr, boxes, np.ones(len(boxes)), poses.keypoints, poses.scores, poses.orientations
        )

    def _confident(self, image_bgr, boxes, box_scores, kpts, kpt_scores, orientations) -> list[dict]:
        """Confident joints inside the image only; people with fewer than ``min_kpts`` dropped."""
        s = self.settings
        h, w = image_bgr.shape[:2]
        people = []
        for box, box_score, xy, score, angle in zip(
            boxes, box_scores, kpts, kpt_scores, orientations, strict=True
        ):
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
            visible = (score >= s.min_kpt_score) & inside
            if int(visible.sum()) < s.min_kpts:
                continue
            keypoints = np.zeros((NUM_KEYPOINTS, 3))
            keypoints[visible, :2] = xy[visible]
            keypoints[visible, 2] = 2
            people.append(
                {
                    "box": box,
                    "box_score": float(box_score),
                    "keypoints": keypoints,
                    "kpt_scores": score,
                    "orientation": float(angle),
                }
            )
        return people


def _face_fill(labeler, settings, teacher_model, threads, info) -> FaceFill:
    """LSP faces from the labeller's MoveNet when there is one (one session, one hash)."""
    if labeler is not None:
        face_teacher, face_info = labeler.movenet, info["teacher"]
    else:
        s = settings
        face_path = default_model_path("movenet", teacher_model, "--teacher-model")
        face_teacher = MoveNetTeacher(
            face_path, threads, s.flip_tta, s.flip_agree, s.crop_padding, s.orientations, s.orientation_accept
        )
        face_info = teacher_info(settings, face_path)
    faces = FaceFill(face_teacher, min_kpt_score=settings.min_kpt_score)
    info["visibility"] += " unless the teacher filled them (teacher_joints)"
    info["lsp_faces"] = {
        "teacher": face_info,
        "joints": "nose, eyes, ears",
        "min_kpt_score": faces.min_kpt_score,
        "min_body_oks": faces.min_body_oks,
    }
    return faces
