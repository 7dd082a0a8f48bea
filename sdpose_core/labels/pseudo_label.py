"""Pseudo-labelling: turn unlabelled images and videos into a COCO keypoint file with a teacher.

    python -m sdpose_core.labels.pseudo_label --inputs clips/ photo.jpg --output-dir labels/ --flip-tta

A person detector (YOLO11n-pose, boxes only) feeds MoveNet Thunder top-down (Apache-2.0, the
default), or YOLO11n-pose labels on its own (``--teacher yolo``; its weights are AGPL-3.0).
Only confident joints are kept (v=2); the others are written as 0,0,0, so training sees
"unlabelled", never a guess. The frames used are copied to ``DIR/images/`` (JPEG, quality 95)
and ``DIR/annotations.json`` records the teacher and its settings in ``info``. LSP's human
labels (``--lsp``) can go in the same file, and `merge_annotation_files` mixes finished files.
The json is rewritten atomically every ``FLUSH_EVERY`` frames, so an interrupted run leaves a
valid file for what it has done.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from sdpose_core.cli import run_cli
from sdpose_core.errors import UserError
from sdpose_core.keypoints import NUM_KEYPOINTS
from sdpose_core.labels.coco_labels import (
    FLUSH_EVERY,
    CocoKeypointWriter,
    FaceFill,
    add_lsp_people,
    merge_annotation_files,
)
from sdpose_core.labels.lsp import LSP, LSPET
from sdpose_core.labels.teachers import DEFAULT_FLIP_AGREE, MoveNetTeacher, YoloPoseTeacher
from sdpose_core.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

__all__ = [
    "LabelSettings",
    "Frame",
    "PseudoLabeler",
    "collect_inputs",
    "iter_frames",
    "default_model_path",
    "pseudo_label",
    "exclusion",
    "read_box_file",
    "BoxedImage",
    "SourceCount",
    "parse_orientations",
    "main",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FLUSH_EVERY",
]

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Frame:
    """One image to label: ``name`` is its file name under DIR/images, ``origin`` where it came from."""

    name: str
    image: np.ndarray
    origin: str


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


def collect_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image and video files from files and folders (a folder's own files, sorted; not recursive)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            children = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            )
            if not children:
                logger.warning("no images or videos in %s", path)
            found.extend(children)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
                raise UserError(f"not an image or video file: {path}")
            found.append(path)
        else:
            raise UserError(f"input not found: {path}")
    return found


def _video_sample_count(path: Path, every: int, max_frames: int | None) -> int:
    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    n = math.ceil(count / every) if count > 0 else 0
    return min(n, max_frames) if max_frames else n


def _expected_frames(paths: Sequence[Path], every: int, max_frames: int | None) -> int:
    return sum(
        _video_sample_count(p, every, max_frames) if p.suffix.lower() in VIDEO_EXTENSIONS else 1
        for p in paths
    )


def iter_frames(
    paths: Sequence[Path], every: int = 1, max_frames_per_video: int | None = None
) -> Iterator[Frame]:
    """Frames to label: each image once, and every ``every``-th frame of each video (0, N, 2N...).

    Images are named ``<parent folder>_<stem>.jpg``, video frames ``<video stem>_<frame:06d>.jpg``.
    Unreadable files are skipped with a warning.
    """
    if every < 1:
        raise UserError(f"--every must be >= 1, got {every}")
    for path in paths:
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                logger.warning("cannot read image %s, skipped", path)
                continue
            prefix = path.parent.name or "image"
            yield Frame(f"{prefix}_{path.stem}.jpg", image, str(path))
            continue
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            logger.warning("cannot open video %s, skipped", path)
            continue
        index, taken = 0, 0
        try:
            while max_frames_per_video is None or taken < max_frames_per_video:
                if not cap.grab():
                    break
                if index % every == 0:
                    ok, image = cap.retrieve()
                    if ok and image is not None:
                        taken += 1
                        yield Frame(f"{path.stem}_{index:06d}.jpg", image, f"{path}#{index}")
                index += 1
        finally:
            cap.release()


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


def exclusion(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A predicate on image stems: True for a stem a pattern names, to keep a validation split
    (or held-out images) out of the labels. ``FIRST..LAST`` is an inclusive range of stems of
    the same length (``im08501..im09000``); anything else is a shell pattern (``000000000785``,
    ``im085*``)."""
    ranges, globs = [], []
    for pattern in patterns:
        if ".." in pattern:
            first, last = pattern.split("..", 1)
            if not first or len(first) != len(last) or first > last:
                raise UserError(f"--exclude {pattern!r}: a range is FIRST..LAST, same length, FIRST <= LAST")
            ranges.append((first, last))
        else:
            globs.append(pattern)

    def excluded(stem: str) -> bool:
        return any(len(stem) == len(a) and a <= stem <= b for a, b in ranges) or any(
            fnmatch.fnmatchcase(stem, g) for g in globs
        )

    return excluded


@dataclass(frozen=True)
class BoxedImage:
    """An image of a box file and its human-drawn person boxes (N,4) xyxy."""

    path: Path
    name: str
    boxes: np.ndarray


def read_box_file(path: str | os.PathLike, exclude: Callable[[str], bool] | None = None) -> list[BoxedImage]:
    """The images of a COCO-style box file (``images`` and ``annotations`` with ``bbox``), each
    with its boxes; images without a box are left out.

    ``file_name`` is relative to ``images/`` beside the file when that folder exists, else to the
    file's own folder. Output names are ``<folder of the file>_<file_name with / as _>``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"box file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
        boxes: dict[int, list[list[float]]] = {}
        for ann in data["annotations"]:
            x, y, w, h = (float(v) for v in ann["bbox"])
            if w > 0 and h > 0 and not ann.get("iscrowd", 0):
                boxes.setdefault(int(ann["image_id"]), []).append([x, y, x + w, y + h])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a COCO box file with images and annotations[].bbox ({exc})") from None
    root = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    prefix = path.parent.resolve().name
    out = []
    for image_id, file_name in images.items():
        if image_id not in boxes or (exclude is not None and exclude(Path(file_name).stem)):
            continue
        flat = Path(file_name).with_suffix(".jpg").as_posix().replace("/", "_")
        out.append(BoxedImage(root / file_name, f"{prefix}_{flat}", np.asarray(boxes[image_id])))
    return out


@dataclass
class SourceCount:
    """What survived of one source: people offered (boxes, or human-labelled people), people
    kept with enough confident joints, and their labelled joints."""

    offered: int = 0
    people: int = 0
    joints: int = 0
    teacher_joints: int = 0  # of those joints, filled by the teacher into a human label

    def line(self, name: str) -> str:
        kept = f"{self.people:,} of {self.offered:,} people" if self.offered else f"{self.people:,} people"
        share = f" ({100 * self.people / self.offered:.0f} %)" if self.offered else ""
        per = f", {self.joints / self.people:.1f} per person" if self.people else ""
        filled = f" ({self.teacher_joints:,} from the teacher)" if self.teacher_joints else ""
        return f"  {name}: {kept}{share}, {self.joints:,} joints{filled}{per}"


def _count_since(writer: CocoKeypointWriter, first: int, offered: int) -> SourceCount:
    added = writer.annotations[first:]
    return SourceCount(
        offered=offered,
        people=len(added),
        joints=sum(a["num_keypoints"] for a in added),
        teacher_joints=sum(len(a.get("teacher_joints", ())) for a in added),
    )


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


def pseudo_label(
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    settings: LabelSettings | None = None,
    teacher_model: str | os.PathLike | None = None,
    detector_model: str | os.PathLike | None = None,
    every: int = 1,
    max_frames_per_video: int | None = None,
    lsp_dir: str | os.PathLike | None = None,
    keep_empty: bool = False,
    threads: int | None = None,
    progress: bool = True,
    lsp_faces: bool = False,
    lspet_dir: str | os.PathLike | None = None,
    box_files: Sequence[str | os.PathLike] = (),
    exclude: Sequence[str] = (),
) -> dict:
    """Label ``inputs`` with the detector, the people of ``box_files`` in their given boxes, and
    add LSP's / LSPET's human labels (``lsp_dir``, ``lspet_dir``); returns a summary dict with
    a `SourceCount` per source.

    Frames with no kept person are not copied unless ``keep_empty``. With ``lsp_faces`` the
    MoveNet teacher fills LSP's and LSPET's empty face slots (`coco_labels.FaceFill`). Images
    whose stem an ``exclude`` pattern names are skipped everywhere (see `exclusion`).
    """
    from tqdm import tqdm

    settings = settings or LabelSettings()
    excluded = exclusion(exclude) if exclude else None
    paths = [p for p in collect_inputs(inputs) if excluded is None or not excluded(p.stem)]
    boxed = {str(f): read_box_file(f, excluded) for f in box_files}
    human_sets = [(d, s) for d, s in ((lsp_dir, LSP), (lspet_dir, LSPET)) if d is not None]
    if not paths and not box_files and not human_sets:
        raise UserError("nothing to label: give --inputs, --boxes, --lsp and/or --lspet")
    if lsp_faces and (not human_sets or settings.teacher != "movenet"):
        raise UserError("--lsp-faces needs --lsp or --lspet DIR and the movenet teacher")
    if box_files and settings.teacher != "movenet":
        raise UserError("person boxes from a file (--boxes) need the movenet teacher")
    needs_teacher = bool(paths or box_files)
    labeler = PseudoLabeler(settings, teacher_model, detector_model, threads) if needs_teacher else None
    info = {
        "description": "SDPose pseudo-labels (sdpose_core.labels.pseudo_label)",
        "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(labeler.info() if labeler else {"teacher": None, "detector": None}),
        "settings": asdict(settings),
        "inputs": [str(p) for p in inputs],
        "boxes": [str(f) for f in box_files],
        "exclude": list(exclude),
        "every": every,
        "max_frames_per_video": max_frames_per_video,
        "keep_empty": keep_empty,
        "lsp": str(lsp_dir) if lsp_dir is not None else None,
        "lspet": str(lspet_dir) if lspet_dir is not None else None,
        "visibility": "v=2: teacher score >= min_kpt_score (inside the image); v=0 with x=y=0: dropped. "
        "lsp-human: v=2 visible, v=1 occluded, v=0 face slots; lspet-human: v=2 visible, v=0 "
        "invisible and face slots",
    }
    if box_files and labeler is not None:
        info["detector"] = {"name": "none: human person boxes from --boxes", "files": info["boxes"]}
        if not paths:
            info["detector"]["note"] = "no --inputs, so the detector did not run"
    faces = _face_fill(labeler, settings, teacher_model, threads, info) if lsp_faces else None
    writer = CocoKeypointWriter(output_dir, info)
    counts: dict[str, SourceCount] = {}
    frames_seen = 0
    bar = partial(tqdm, unit="image", disable=None if progress else True)

    def add(image, name: str, people: list[dict]) -> None:
        if people or keep_empty:
            image_id = writer.add_image(image, name)
            for person in people:
                writer.add_person(
                    image_id,
                    person["box"],
                    person["box_score"],
                    person["keypoints"],
                    settings.teacher,
                    person["kpt_scores"],
                    orientation=person["orientation"] if len(settings.orientations) > 1 else None,
                )
        writer.step()

    try:
        for folder, lsp_set in human_sets:
            first = len(writer.annotations)
            n, filled = add_lsp_people(writer, folder, faces=faces, lsp_set=lsp_set, exclude=excluded)
            counts[lsp_set.name] = _count_since(writer, first, n)
            if faces is not None:
                writer.info["lsp_faces"][f"people_filled_{lsp_set.name}"] = filled
                writer.info["lsp_faces"]["people_filled"] = (
                    writer.info["lsp_faces"].get("people_filled", 0) + filled
                )
        for file, images in boxed.items():
            first = len(writer.annotations)
            for item in bar(images, desc=Path(file).parent.name):
                frames_seen += 1
                image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
                if image is None:
                    logger.warning("cannot read image %s, skipped", item.path)
                    continue
                add(image, item.name, labeler.label_boxes(image, item.boxes))
            name = Path(file).parent.resolve().name
            counts[name] = _count_since(writer, first, sum(len(i.boxes) for i in images))
        if paths:
            first = len(writer.annotations)
            total = _expected_frames(paths, every, max_frames_per_video)
            for frame in bar(iter_frames(paths, every, max_frames_per_video), total=total, unit="frame"):
                frames_seen += 1
                add(frame.image, frame.name, labeler(frame.image))
            counts["inputs (detector boxes)"] = _count_since(writer, first, 0)
    finally:
        writer.info["frames_seen"] = frames_seen
        writer.info["per_source"] = {k: asdict(v) for k, v in counts.items()}
        writer.flush()
    return {
        "annotations_file": str(writer.path),
        "frames_seen": frames_seen,
        "images": len(writer.images),
        "annotations": len(writer.annotations),
        "sources": dict(writer.sources),
        "per_source": counts,
    }


def _parser() -> argparse.ArgumentParser:
    from sdpose_core.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m sdpose_core.labels.pseudo_label",
        description="Write a COCO keypoint file from unlabelled images/videos with a teacher pose model.",
    )
    parser.add_argument("--inputs", nargs="+", default=[], metavar="PATH", help="images, folders, videos")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="gets annotations.json + images/")
    parser.add_argument("--teacher", choices=sorted(_DEFAULT_MODELS), default="movenet")
    parser.add_argument("--teacher-model", metavar="PATH", help="teacher ONNX (default: shared/data/models)")
    parser.add_argument("--detector-model", metavar="PATH", help="yolo11n-pose.onnx for the boxes")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="video frame step")
    parser.add_argument("--max-frames-per-video", type=int, default=None, metavar="N")
    parser.add_argument("--min-kpt-score", type=float, default=0.3)
    parser.add_argument("--min-kpts", type=int, default=6, help="confident joints a person needs")
    parser.add_argument("--min-box-score", type=float, default=0.5)
    parser.add_argument("--min-box-height", type=float, default=32.0, help="skip smaller people (px)")
    parser.add_argument("--flip-tta", action="store_true", help="keep joints the mirrored pass agrees on")
    parser.add_argument("--flip-agree", type=float, default=DEFAULT_FLIP_AGREE, help="fraction of box size")
    parser.add_argument("--det-size", type=int, default=640, help="YOLO input size (960-1280: small people)")
    parser.add_argument(
        "--boxes",
        nargs="+",
        default=[],
        metavar="JSON",
        help="COCO box files (images + annotations[].bbox): the teacher reads these person boxes, "
        "no detector; file names relative to images/ beside each file",
    )
    parser.add_argument("--lsp", metavar="DIR", help="add LSP human labels (folder with joints.mat)")
    parser.add_argument("--lspet", metavar="DIR", help="add LSPET human labels (folder with joints.npy)")
    parser.add_argument(
        "--lsp-faces",
        action="store_true",
        help="fill LSP's / LSPET's unlabelled nose, eyes, ears from the MoveNet teacher where it "
        "agrees on the body",
    )
    parser.add_argument(
        "--orientations",
        default="0",
        metavar="DEG,...",
        help="orientation TTA: also read each person turned by these angles (e.g. 0,90,180,270) and "
        "keep the one the teacher is most sure of (default 0: one orientation)",
    )
    parser.add_argument(
        "--orientation-accept",
        type=float,
        default=None,
        metavar="SCORE",
        help="with --orientations: keep the first angle whose mean joint score reaches SCORE "
        "without trying the others (faster on mostly upright people; 0.5 is a safe value)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="skip images by stem: FIRST..LAST ranges (im08501..im09000) or shell patterns; "
        "keeps validation and held-out images out of training labels",
    )
    parser.add_argument("--keep-empty", action="store_true", help="also copy frames with nobody kept")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing annotations.json")
    parser.add_argument(
        "--merge", nargs="+", metavar="JSON", help="instead of labelling, merge these COCO keypoint files"
    )
    return parser


def parse_orientations(text: str) -> tuple[float, ...]:
    """``"0,90,180,270"`` -> (0.0, 90.0, 180.0, 270.0); distinct angles in [0, 360)."""
    try:
        angles = tuple(float(part) % 360.0 for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(
            f"--orientations: expected angles in degrees like 0,90,180,270, got {text!r}"
        ) from None
    if not angles or len(set(angles)) != len(angles):
        raise UserError(f"--orientations: expected distinct angles like 0,90,180,270, got {text!r}")
    return angles


def main(argv: list[str] | None = None) -> int:
    from sdpose_core.cli import read_json
    from sdpose_core.jsonio import check_outputs

    args = _parser().parse_args(argv)
    out_dir = Path(args.output_dir)
    target = out_dir / "annotations.json"
    check_outputs({"--output-dir": out_dir}, folders=("--output-dir",))  # before any model loads
    if target.exists() and not args.overwrite:
        raise UserError(f"{target} exists; pass --overwrite or choose another --output-dir")
    if args.merge:
        if args.inputs or args.lsp or args.lspet or args.boxes:
            raise UserError("--merge cannot be combined with --inputs, --boxes, --lsp or --lspet")
        for file in args.merge:  # every file's shape, before anything is written
            data = read_json(file, "--merge file")
            images = data.get("images") if isinstance(data, dict) else None
            annotations = data.get("annotations", []) if isinstance(data, dict) else None
            if not (
                isinstance(images, list)
                and isinstance(annotations, list)
                and all(isinstance(i, dict) and {"id", "file_name"} <= i.keys() for i in images)
                and all(isinstance(a, dict) and "image_id" in a for a in annotations)
            ):
                raise UserError(
                    f"--merge file {file} is not a COCO keypoint file (images with id and file_name)"
                )
        merged = merge_annotation_files(args.merge, target)
        print(
            f"merged {len(args.merge)} files: {len(merged['annotations'])} people on "
            f"{len(merged['images'])} images -> {target}"
        )
        return 0
    if args.orientation_accept is not None and not 0.0 < args.orientation_accept <= 1.0:
        raise UserError(f"--orientation-accept must be in (0, 1], got {args.orientation_accept}")
    if args.every < 1 or (args.max_frames_per_video is not None and args.max_frames_per_video < 1):
        raise UserError("--every and --max-frames-per-video must be >= 1")
    excluded = exclusion(args.exclude) if args.exclude else None
    paths = [p for p in collect_inputs(args.inputs) if excluded is None or not excluded(p.stem)]
    if paths and next(iter_frames(paths, args.every, 1), None) is None:  # stops at the first readable one
        raise UserError(
            f"none of the {len(paths)} input files could be read (damaged, or not images/videos?)"
        )
    settings = LabelSettings(
        teacher=args.teacher,
        min_kpt_score=args.min_kpt_score,
        min_kpts=args.min_kpts,
        min_box_score=args.min_box_score,
        min_box_height=args.min_box_height,
        flip_tta=args.flip_tta,
        flip_agree=args.flip_agree,
        det_size=args.det_size,
        orientations=parse_orientations(args.orientations),
        orientation_accept=args.orientation_accept,
    )
    summary = pseudo_label(
        args.inputs,
        out_dir,
        settings,
        teacher_model=args.teacher_model,
        detector_model=args.detector_model,
        every=args.every,
        max_frames_per_video=args.max_frames_per_video,
        lsp_dir=args.lsp,
        lspet_dir=args.lspet,
        box_files=args.boxes,
        exclude=args.exclude,
        lsp_faces=args.lsp_faces,
        keep_empty=args.keep_empty,
        threads=args.threads,
    )
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(summary["sources"].items())) or "none"
    print(
        f"wrote {summary['annotations']} people ({sources}) on {summary['images']} images "
        f"from {summary['frames_seen']} frames -> {summary['annotations_file']}"
    )
    for name, count in summary["per_source"].items():
        print(count.line(name))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
