"""COCO keypoint label files: the writer the pseudo-labeller fills, LSP's human labels, and merging.

Files are rewritten atomically (`sdpose_core.jsonio`), so an interrupted run leaves a valid file.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.geometry import box_xyxy_to_xywh
from sdpose_core.jsonio import write_json_atomic
from sdpose_core.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, SKELETON, oks_iou
from sdpose_core.labels.lsp import LSP, LspSet, lsp_person_box, lsp_to_coco
from sdpose_core.progress import track

__all__ = [
    "CocoKeypointWriter",
    "coco_categories",
    "add_lsp_people",
    "body_agreement",
    "FaceFill",
    "merge_annotation_files",
    "JPEG_QUALITY",
    "FLUSH_EVERY",
]

logger = logging.getLogger(__name__)

JPEG_QUALITY = 95
FLUSH_EVERY = 200  # frames between atomic rewrites of the label file
FACE_JOINTS = (0, 1, 2, 3, 4)  # COCO nose, eyes, ears: the slots LSP does not label


def coco_categories() -> list[dict]:
    """The COCO person category with the 17 keypoint names and the 1-based skeleton."""
    return [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(KEYPOINT_NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in SKELETON],
        }
    ]


def _r(value: float) -> float:
    return round(float(value), 2)


class CocoKeypointWriter:
    """Collects images and people, copies frames to ``DIR/images`` and writes ``DIR/annotations.json``."""

    def __init__(self, output_dir: str | os.PathLike, info: dict, flush_every: int = FLUSH_EVERY) -> None:
        self.output_dir = Path(output_dir)
        self.images_dir = self.output_dir / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.output_dir / "annotations.json"
        self.info = info
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.sources: Counter[str] = Counter()
        self.flush_every = flush_every
        self._names: set[str] = set()
        self._since_flush = 0

    def _unique(self, name: str) -> str:
        stem, suffix = os.path.splitext(name)
        candidate, k = name, 1
        while candidate in self._names:
            k += 1
            candidate = f"{stem}_{k}{suffix}"
        self._names.add(candidate)
        return candidate

    def add_image(self, image_bgr: np.ndarray, name: str) -> int:
        """Save the frame as JPEG (quality 95) under a unique name; returns its image id."""
        name = self._unique(Path(name).with_suffix(".jpg").name)
        ok, data = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise UserError(f"cannot encode {name} as JPEG")
        (self.images_dir / name).write_bytes(data.tobytes())
        image_id = len(self.images) + 1
        h, w = image_bgr.shape[:2]
        self.images.append({"id": image_id, "file_name": name, "width": int(w), "height": int(h)})
        return image_id

    def add_person(
        self,
        image_id: int,
        box_xyxy: np.ndarray,
        score: float,
        keypoints: np.ndarray,
        source: str,
        kpt_scores: np.ndarray | None = None,
        teacher_joints: Sequence[int] = (),
        orientation: float | None = None,
    ) -> None:
        """One person: bbox xywh from the box, area = box area (no masks), keypoints (17,3) x,y,v.

        ``teacher_joints`` lists the joints of a human-labelled person that a teacher filled in;
        ``orientation`` the angle (degrees) orientation TTA read the person in.
        """
        x, y, w, h = box_xyxy_to_xywh(box_xyxy)[0]
        keypoints = np.asarray(keypoints, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
        flat: list[float] = []
        for px, py, v in keypoints:
            flat.extend((_r(px), _r(py), int(v)) if v > 0 else (0, 0, 0))
        annotation = {
            "id": len(self.annotations) + 1,
            "image_id": image_id,
            "category_id": 1,
            "bbox": [_r(x), _r(y), _r(w), _r(h)],
            "area": _r(w * h),
            "iscrowd": 0,
            "keypoints": flat,
            "num_keypoints": int((keypoints[:, 2] > 0).sum()),
            "score": round(float(score), 4),
            "source": source,
        }
        if kpt_scores is not None:
            annotation["keypoint_scores"] = [round(float(v), 3) for v in kpt_scores]
        if teacher_joints:
            annotation["teacher_joints"] = list(teacher_joints)
        if orientation is not None:
            annotation["orientation"] = float(orientation)
        self.annotations.append(annotation)
        self.sources[source] += 1

    def data(self) -> dict:
        info = dict(self.info, counts={"images": len(self.images), "annotations": len(self.annotations)})
        info["counts"].update({f"source:{k}": v for k, v in sorted(self.sources.items())})
        return {
            "info": info,
            "images": self.images,
            "annotations": self.annotations,
            "categories": coco_categories(),
        }

    def flush(self) -> None:
        write_json_atomic(self.path, self.data())
        self._since_flush = 0

    def step(self) -> None:
        """Count one processed frame; rewrite the json every ``flush_every`` frames."""
        self._since_flush += 1
        if self._since_flush >= self.flush_every:
            self.flush()


# A top-down teacher: (image_bgr, boxes (N,4) xyxy) -> (keypoints (N,17,2), scores (N,17)).
Teacher = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FaceFill:
    """How `add_lsp_people` fills LSP's empty face slots (nose, eyes, ears) from a teacher.

    A face joint is taken when the teacher scores it at least ``min_kpt_score`` inside the
    image, and only for people whose body the teacher sees as the human labeller did: the OKS
    of its body joints against the human ones (box area as the scale) is at least
    ``min_body_oks``. Without faces, LSP's seated, crouched and bent people (nearly all such
    poses in the pool) teach no face at all.
    """

    teacher: Teacher
    min_kpt_score: float = 0.3
    min_body_oks: float = 0.8


def body_agreement(human: np.ndarray, teacher_xy: np.ndarray, area: float) -> float:
    """OKS of a teacher's body joints (5-16) against the labelled human ones, (17,3) and (17,2);
    0 when no body joint is labelled."""
    body = np.asarray(human, dtype=np.float64).copy()
    body[:5, 2] = 0  # faces are what the teacher is asked for, not what it is judged on
    teacher = np.column_stack([teacher_xy, np.ones(len(teacher_xy))])
    return float(oks_iou(body.reshape(-1), teacher.reshape(1, -1), area, [area], vis_thr=0.0)[0])


def add_lsp_people(
    writer: CocoKeypointWriter,
    lsp_dir: str | os.PathLike,
    limit: int | None = None,
    faces: FaceFill | None = None,
    lsp_set: LspSet = LSP,
    exclude: Callable[[str], bool] | None = None,
    progress: bool = False,
) -> tuple[int, int]:
    """Copy LSP (or LSPET) images and add their human-labelled person (source "lsp-human" or
    "lspet-human"), skipping images whose stem ``exclude`` names (a validation split).

    Returns (people added, people given teacher faces). The box is the extent of the 14
    labelled joints enlarged 1.2x and clipped to the image; joints outside the image get v=0
    (COCO never labels outside the frame). With ``faces``, the face slots LSP leaves empty are
    filled from the teacher (see `FaceFill`) and the annotation lists them in ``teacher_joints``.
    With ``progress``, how far it has got is shown (`sdpose_core.progress.track`): the teacher's
    face pass takes minutes.
    """
    paths, joints = lsp_set.read(lsp_dir)
    added = filled = 0
    people = list(zip(paths[:limit], joints[:limit], strict=True))
    for path, joints14 in track(people, desc=lsp_set.source, unit="image", enabled=progress):
        if exclude is not None and exclude(path.stem):
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            logger.warning("cannot read %s, skipped", path)
            continue
        h, w = image.shape[:2]
        keypoints = lsp_to_coco(joints14, lsp_set.extended)
        xy = keypoints[:, :2]
        outside = (xy[:, 0] < 0) | (xy[:, 0] >= w) | (xy[:, 1] < 0) | (xy[:, 1] >= h)
        keypoints[outside] = 0
        box = lsp_person_box(joints14, (w, h), extended=lsp_set.extended)
        teacher_joints: list[int] = []
        if faces is not None:
            teacher_joints = _teacher_faces(image, box, keypoints, faces)
            filled += bool(teacher_joints)
        image_id = writer.add_image(image, f"{lsp_set.name}_{path.stem}.jpg")
        writer.add_person(image_id, box, 1.0, keypoints, lsp_set.source, teacher_joints=teacher_joints)
        writer.step()
        added += 1
    return added, filled


def _teacher_faces(image: np.ndarray, box: np.ndarray, keypoints: np.ndarray, faces: FaceFill) -> list[int]:
    """Write the teacher's confident face joints into ``keypoints`` (v=2); their indices."""
    xy, scores = faces.teacher(image, box[None])
    xy, scores = xy[0], scores[0]
    area = float((box[2] - box[0]) * (box[3] - box[1]))
    if body_agreement(keypoints, xy, area) < faces.min_body_oks:
        return []
    h, w = image.shape[:2]
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    confident = (scores >= faces.min_kpt_score) & inside & (keypoints[:, 2] == 0)
    taken = [j for j in FACE_JOINTS if confident[j]]
    for j in taken:
        keypoints[j] = (xy[j, 0], xy[j, 1], 2.0)
    return taken


def merge_annotation_files(files: Sequence[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Merge COCO keypoint files into ``out``, re-numbering image and annotation ids.

    Each file's ``file_name`` is relative to the ``images/`` folder beside it; in the merged file it
    becomes relative to ``out``'s own ``images/`` folder (``../run1/images/x.jpg`` when elsewhere),
    so the same rule resolves every image. Each input's ``info`` is kept under ``merged_from``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    target_images = out.parent.resolve() / "images"
    images: list[dict] = []
    annotations: list[dict] = []
    merged_from = []
    for file in files:
        file = Path(file)
        if not file.is_file():
            raise UserError(f"annotation file not found: {file}")
        data = json.loads(file.read_text(encoding="utf-8"))
        cats = data.get("categories") or []
        if [c.get("keypoints") for c in cats] != [list(KEYPOINT_NAMES)]:
            raise UserError(f"{file} is not a COCO-17 person keypoint file")
        source_images = file.parent.resolve() / "images"
        id_map = {}
        for image in data.get("images", []):
            new = dict(image, id=len(images) + 1)
            absolute = source_images / image["file_name"]
            new["file_name"] = Path(os.path.relpath(absolute, target_images)).as_posix()
            id_map[image["id"]] = new["id"]
            images.append(new)
        for annotation in data.get("annotations", []):
            if annotation["image_id"] not in id_map:
                raise UserError(f"{file}: annotation {annotation.get('id')} points to a missing image")
            annotations.append(
                dict(annotation, id=len(annotations) + 1, image_id=id_map[annotation["image_id"]])
            )
        merged_from.append({"file": str(file), "info": data.get("info", {})})
    merged = {
        "info": {
            "description": "merged COCO keypoint files (sdpose_core.labels.pseudo_label)",
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
            "merged_from": merged_from,
            "counts": {"images": len(images), "annotations": len(annotations)},
        },
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(),
    }
    write_json_atomic(out, merged)
    return merged
