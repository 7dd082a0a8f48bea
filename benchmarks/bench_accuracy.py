"""Accuracy of our pose model vs the MoveNet Thunder teacher on held-out, human-labelled people.

    .venv/bin/python benchmarks/bench_accuracy.py [--weights PATH] [--model sdpose_t] [--flip-test] [--refine]
        [--backend onnx|torch] [--threads 1] [--with-yolo] [--per-person] [--json PATH] [--self-check]
        [--compare-int8 [qdq/channel qdq/tensor ...]]

Top-down with ground-truth boxes: every model gets the same GT person boxes (xyxy) of every
image in `shared/data/` `coco_sample` and `humanart` (COCO-17), `crowdpose` (CrowdPose-14),
`aic` (AI Challenger-14), `mhp` (MHP-16), `jhmdb` (JHMDB-15) and `mpii` (MPII-16, list format:
its box is the extent of the 16 joints, head top included, widened by 15 % per side, as the
set has no boxes). Other layouts are mapped onto COCO by joint name: their 12 limb joints
land in COCO 5..16; head top, neck, pelvis and thorax are dropped and COCO's face slots stay
unlabelled. Every annotated person with a box and >= 1 labelled joint
counts; none of these images is in the training data. Metrics per set and pooled ("all"):

- OKS: the COCO formula with `OKS_SIGMAS`, area = GT `area` (box w*h where absent), over the
  labelled joints only; the table shows the mean over people.
- PCK@0.2: a labelled joint is correct when within 0.2 x the torso size (mean of the labelled
  shoulder-to-opposite-hip distances) of the GT, or 0.2 x half the box diagonal when no
  diagonal is labelled; pooled over labelled joints.

A second table scores the LSPET validation set (`pool2/lspet` im08501-im09000, 500 people
the training never sees, human joints): PCK@0.2 of the visible limb joints, torso = |left
shoulder - right hip| from the labels (people without both are left out), the whole image as
the box. These are inverted, mid-air and crouched athletes, where the teacher is weak.
`--lspet-box joints` boxes them around their labelled joints instead (15 % a side), as a
detector would: the gap to the whole-image figure is what finding a small person costs.
`--lspet-box detector` gives each athlete the app's own person detector's box (`detector:` in
`configs/app.yaml`) that best overlaps their labelled joints, what `main.py` would crop on these
photos; an athlete it misses (no box at IoU >= 0.3) scores none of their joints. The table
groups athletes by turn (upright, sideways, upside down) and by how many pixels of the model's
256-pixel-high input the tolerance spans once they are cropped from their box: a whole-image box
leaves a small athlete a tolerance of a heatmap cell or less, which bounds what any model scores.

`--per-person` lists each person's OKS, ours against the teacher, worst first (also in `--json`).
`--with-yolo` adds YOLO11n-pose run on the full image, matched to GT boxes by IoU (an unmatched
person scores 0). `--self-check` scores the GT keypoints themselves (must give 1.0 and 1.0)
and loads no model. Forty-one people: read the numbers as a sanity check, not a benchmark.

`--refine` reads every person a second time in a box redrawn around their first-pass joints
(`app/refine.py` with `configs/app.yaml`'s `refine:` settings), ours and the teacher alike, so
the two rows stay comparable: it is the pipeline's gain, not the model's.

`--compare-int8` scores ONNX Runtime fp32 against `--precision int8` of the same `--weights`
(each MODE given, quantized and cached as the app does) on both tables, and prints what int8
loses in mean OKS and PCK and how many pixels its keypoints lie from fp32's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch load; --threads sets the rest

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
sys.path.insert(0, str(REPO))

from sdpose_core.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, oks_terms  # noqa: E402

MOVENET = DATA / "models" / "movenet" / "movenet-thunder.onnx"
YOLO = DATA / "models" / "yolo11n-pose" / "yolo11n-pose.onnx"
PCK_ALPHA = 0.2
# (left shoulder, right hip), (right shoulder, left hip) in COCO order.
TORSO_DIAGONALS = ((5, 12), (6, 11))
COCO_NAMES = (
    "nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow right_elbow "
    "left_wrist right_wrist left_hip right_hip left_knee right_knee left_ankle right_ankle"
).split()


@dataclass
class Person:
    box: np.ndarray | None  # (4,) xyxy; None: no box (a detector missed them), no joints found
    keypoints: np.ndarray  # (17, 2) COCO order
    labelled: np.ndarray  # (17,) bool
    area: float


@dataclass
class Image:
    path: Path
    people: list[Person] = field(default_factory=list)


def _coco_index(names: list[str], json_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(source, target) indices mapping a keypoint layout onto COCO-17 by joint name.

    Names are compared case-blind with spaces and dashes as underscores ("Right-ankle" and
    "Right Ankle" are COCO's right_ankle); joints COCO lacks are dropped.
    """
    normal = [name.strip().lower().replace(" ", "_").replace("-", "_") for name in names]
    pairs = [(i, COCO_NAMES.index(name)) for i, name in enumerate(normal) if name in COCO_NAMES]
    if len(pairs) < 12:
        raise SystemExit(f"{json_path}: cannot map keypoints {names} onto COCO-17 by name")
    source, target = (np.array(column) for column in zip(*pairs, strict=True))
    return source, target


def _load_set(json_path: Path, image_dir: Path, strip_prefix: str = "") -> list[Image]:
    """Images with their people in COCO-17 order (see `_coco_index`)."""
    return _images_from_coco(json.loads(json_path.read_text()), image_dir, strip_prefix, json_path)


def _images_from_coco(
    data: dict, image_dir: Path, strip_prefix: str = "", json_path: Path | None = None
) -> list[Image]:
    """`_load_set` on a loaded COCO keypoint dict."""
    source, target = _coco_index(data["categories"][0]["keypoints"], json_path or image_dir)
    images = {}
    for info in data["images"]:
        name = info["file_name"]
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix) :]
        images[info["id"]] = Image(image_dir / name)
    for ann in data["annotations"]:
        raw = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        kpts = np.zeros((NUM_KEYPOINTS, 2))
        vis = np.zeros(NUM_KEYPOINTS)
        kpts[target], vis[target] = raw[source, :2], raw[source, 2]
        x, y, w, h = (float(v) for v in ann.get("bbox", (0, 0, 0, 0)))
        if not (vis > 0).any() or w <= 0 or h <= 0:
            continue
        area = float(ann["area"]) if ann.get("area") else w * h
        images[ann["image_id"]].people.append(Person(np.array([x, y, x + w, y + h]), kpts, vis > 0, area))
    return [image for image in images.values() if image.people]


def joint_box(xy: np.ndarray, pad: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """The (n, 2) joints' extent as an xyxy box widened by ``pad`` of its size per side, as a
    detector boxes a person; clipped to an image of ``size`` (w, h) when given."""
    (x1, y1), (x2, y2) = xy.min(axis=0), xy.max(axis=0)
    dx, dy = pad * (x2 - x1), pad * (y2 - y1)
    box = np.array([x1 - dx, y1 - dy, x2 + dx, y2 + dy])
    if size is not None:
        box = np.clip(box, 0, [size[0], size[1], size[0], size[1]])
    return box


# MPII-16 joint order (the list format has no names): index -> COCO name.
MPII_NAMES = (
    "right_ankle right_knee right_hip left_hip left_knee left_ankle pelvis thorax upper_neck head_top "
    "right_wrist right_elbow right_shoulder left_shoulder left_elbow left_wrist"
).split()


def _load_mpii(json_path: Path, image_dir: Path, pad: float = 0.15) -> list[Image]:
    """MPII list-format people in COCO-17 order; box = joint extent widened by ``pad`` per side."""
    source, target = _coco_index(MPII_NAMES, json_path)
    images: dict[str, Image] = {}
    for entry in json.loads(json_path.read_text()):
        raw, vis = np.asarray(entry["joints"], dtype=np.float64), np.asarray(entry["joints_vis"]) > 0
        if not vis.any():
            continue
        kpts, labelled = np.zeros((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS, dtype=bool)
        kpts[target], labelled[target] = raw[source], vis[source]
        box = joint_box(raw[vis], pad)
        area = float((box[2] - box[0]) * (box[3] - box[1]))
        image = images.setdefault(entry["image"], Image(image_dir / entry["image"]))
        image.people.append(Person(box, kpts, labelled, area))
    return [image for image in images.values() if image.people]


def load_datasets() -> dict[str, list[Image]]:
    return {
        "coco_sample": _load_set(DATA / "coco_sample" / "test_coco.json", DATA / "coco_sample"),
        "crowdpose": _load_set(DATA / "crowdpose" / "test_crowdpose.json", DATA / "crowdpose"),
        "humanart": _load_set(
            DATA / "humanart" / "test_humanart.json", DATA / "humanart", "HumanArt/images/"
        ),
        "aic": _load_set(DATA / "aic" / "test_aic.json", DATA / "aic"),
        "mhp": _load_set(DATA / "mhp" / "test_mhp.json", DATA / "mhp"),
        "jhmdb": _load_set(DATA / "jhmdb" / "test_jhmdb_sub1.json", DATA / "jhmdb"),
        "mpii": _load_mpii(DATA / "mpii" / "test_mpii.json", DATA / "mpii"),
    }


LSPET = DATA / "pool2" / "lspet"


LSPET_BOXES = {
    "image": "whole image as the box",
    "joints": "box around the labelled joints, 15 % a side",
    "detector": "the app's detector box that best overlaps the labelled joints",
}


def load_lspet_validation(
    first: str = "im08501", last: str = "im09000", box: str = "image", detector=None
) -> list[Image]:
    """LSPET's validation people, one per image, the whole image as the box (the issue's figure).

    ``box="joints"`` boxes each person as a detector would instead (the visible joints' extent,
    widened by 15 % a side, clipped to the image): the gap between the two says how much of what
    is lost is finding a small person in a big box rather than reading their pose.
    ``box="detector"`` runs ``detector`` (image -> `app.detector.Detections`; by default the app's
    own, as `configs/app.yaml` sets it) on each image and keeps its box nearest the athlete
    (`matched_detection`); an athlete without one keeps no box and scores no joints.
    """
    from sdpose_core.labels.lsp import lspet_validation_set

    data = lspet_validation_set(LSPET, first, last)
    images = _images_from_coco(data, LSPET / "images")
    if box == "joints":
        sizes = {info["file_name"]: (info["width"], info["height"]) for info in data["images"]}
        for image in images:
            for person in image.people:
                person.box = joint_box(person.keypoints[person.labelled], 0.15, sizes[image.path.name])
    elif box == "detector":
        detector = detector or app_detector()
        for image in images:
            frame = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            if frame is None:
                raise SystemExit(f"cannot read image {image.path}")
            found = detector(frame)
            for person in image.people:
                athlete = joint_box(person.keypoints[person.labelled], 0.15)
                person.box = matched_detection(found.boxes, athlete)
    return images


def app_detector():
    """The person detector `main.py` runs, with `configs/app.yaml`'s settings."""
    from app.detector import DetectorError, PersonDetector
    from app.pipeline import AppConfig

    try:
        return PersonDetector.from_config(AppConfig.load().detector, None, "cpu")
    except DetectorError as exc:
        raise SystemExit(f"error: {exc}") from None


def matched_detection(boxes: np.ndarray, person_box: np.ndarray) -> np.ndarray | None:
    """The xyxy box among ``boxes`` (N, 4) that overlaps ``person_box`` most, if by IoU >= 0.3
    (`sdpose_core.labels.detector_boxes.best_overlap`, as training matches them); else None (the
    detector missed this person)."""
    from sdpose_core.labels.detector_boxes import best_overlap

    best = best_overlap(boxes, person_box)
    return None if best is None else np.asarray(boxes[best], np.float64)


# How far a person's torso is turned from upright (degrees), in groups: upside-down athletes are
# where heatmap models trained on upright people fail, so the LSPET table shows each group.
TURNS = {"upright": (0.0, 60.0), "sideways": (60.0, 120.0), "upside down": (120.0, 180.1)}


def torso_angles(gts: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """(N,) angle between the hips-to-shoulders line and image up, 0-180 degrees; NaN where
    the two shoulders and two hips are not all labelled."""
    shoulders, hips = gts[:, [5, 6]].mean(axis=1), gts[:, [11, 12]].mean(axis=1)
    up = shoulders - hips
    angles = np.degrees(np.abs(np.arctan2(up[:, 0], -up[:, 1])))
    return np.where(labelled[:, [5, 6, 11, 12]].all(axis=1), angles, np.nan)


# How many pixels of the 256-pixel-high model input the PCK@0.2 tolerance spans for a person, in
# groups: the input is 4 pixels per heatmap cell, so below 4 a joint must land in the right cell.
# A small athlete in a whole-image box is read at a few pixels: the figure is bound by resolution.
TOLERANCE_PX = {"under 4 px": (0.0, 4.0), "4-8 px": (4.0, 8.0), "8 px up": (8.0, np.inf)}
INPUT_HEIGHT, INPUT_ASPECT = 256, 0.75  # SDPose's 256x192 input (all four variants)


def tolerance_in_input(gts: np.ndarray, labelled: np.ndarray, boxes: list[np.ndarray | None]) -> np.ndarray:
    """(N,) PCK@0.2's tolerance, 0.2 x |left shoulder - right hip|, in model-input pixels for each
    person cropped from their box as the engine crops it (`boxes_to_center_scale`: the box
    widened to 3:4, padded 1.25x, scaled to 256 high); NaN without a box or a torso."""
    from sdpose_core.geometry import PIXEL_STD, boxes_to_center_scale

    a, b = TORSO_DIAGONALS[0]  # left shoulder, right hip: the LSPET torso
    torso = np.linalg.norm(gts[:, a] - gts[:, b], axis=1)
    has = np.array([box is not None for box in boxes]) & labelled[:, a] & labelled[:, b]
    crop_h = np.full(len(boxes), np.nan)
    if has.any():
        _, scale = boxes_to_center_scale(np.stack([boxes[i] for i in np.flatnonzero(has)]), INPUT_ASPECT)
        crop_h[has] = scale[:, 1] * PIXEL_STD
    return PCK_ALPHA * torso * INPUT_HEIGHT / crop_h


def evaluate_torso_pck(predict, images: list[Image]) -> dict:
    """PCK@0.2 with the LSPET convention (`sdpose_core.evaluation.torso_pck`), pooled, per
    `TURNS` group and per `TOLERANCE_PX` group."""
    from sdpose_core.evaluation import torso_pck

    preds, gts, labelled, boxes, seconds = [], [], [], [], 0.0
    for image in images:
        frame = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        if frame is None:
            raise SystemExit(f"cannot read image {image.path}")
        boxed = [p for p in image.people if p.box is not None]
        start = time.perf_counter()
        found = iter(predict(frame, np.stack([p.box for p in boxed]), boxed) if boxed else [])
        seconds += time.perf_counter() - start
        out = [next(found) if p.box is not None else None for p in image.people]
        for pred, person in zip(out, image.people, strict=True):
            preds.append(np.full((NUM_KEYPOINTS, 2), np.inf) if pred is None else np.asarray(pred))
            gts.append(person.keypoints)
            labelled.append(person.labelled)
            boxes.append(person.box)
    preds, gts, labelled = np.stack(preds), np.stack(gts), np.stack(labelled)
    read = sum(box is not None for box in boxes)
    hits, joints, people = torso_pck(preds, gts, labelled, PCK_ALPHA)

    def grouped(values: np.ndarray, groups: dict[str, tuple[float, float]]) -> dict[str, dict]:
        out = {}
        for name, (low, high) in groups.items():
            group = (values >= low) & (values < high)
            g_hits, g_joints, g_people = torso_pck(preds[group], gts[group], labelled[group], PCK_ALPHA)
            out[name] = {"pck": g_hits / max(g_joints, 1), "people": g_people}
        return out

    return {
        "pck": hits / joints,
        "joints": joints,
        "people": people,
        "ms_per_person": 1e3 * seconds / max(read, 1),  # over the people read (a missed one costs none)
        "by_turn": grouped(torso_angles(gts, labelled), TURNS),
        "by_tolerance": grouped(tolerance_in_input(gts, labelled, boxes), TOLERANCE_PX),
    }


def load_training_sample(ann_file: Path, image_root: Path, per_source: int, seed: int = 0) -> dict:
    """Up to ``per_source`` random people from each source folder of a training file.

    The source is the first real folder of each image's path (``pool``, ``lsp``, ``vtest`` ...
    in a `pseudo_label --merge` file). Scoring on them says how well the model fits its own
    training data, to set beside the held-out figures.
    """
    images = _load_set(ann_file, image_root)
    people = [(image.path, person) for image in images for person in image.people]
    by_source: dict[str, list] = {}
    for path, person in people:
        parts = [part for part in Path(path).relative_to(image_root).parts if part not in ("..", ".")]
        by_source.setdefault(parts[0] if len(parts) > 1 else "(root)", []).append((path, person))
    rng = np.random.default_rng(seed)
    sample = {}
    for source, items in sorted(by_source.items()):
        chosen = [
            items[i] for i in sorted(rng.choice(len(items), min(per_source, len(items)), replace=False))
        ]
        grouped: dict[Path, Image] = {}
        for path, person in chosen:
            grouped.setdefault(path, Image(path)).people.append(person)
        sample[source] = list(grouped.values())
    return sample


def joint_similarity(pred: np.ndarray, person: Person) -> np.ndarray:
    """(17,) each joint's term of COCO OKS, exp(-d^2 / 2 s^2 k^2), labelled or not."""
    d2 = ((pred - person.keypoints) ** 2).sum(axis=1)
    return oks_terms(d2, person.area + np.spacing(1))


def oks(pred: np.ndarray, person: Person) -> float:
    """COCO object keypoint similarity over the person's labelled joints."""
    return float(joint_similarity(pred, person)[person.labelled].mean())


def pck_reference(person: Person) -> tuple[float, bool]:
    """(normaliser, is_torso): mean labelled torso diagonal, else half the box diagonal."""
    diagonals = [
        np.linalg.norm(person.keypoints[a] - person.keypoints[b])
        for a, b in TORSO_DIAGONALS
        if person.labelled[a] and person.labelled[b]
    ]
    if diagonals and max(diagonals) > 0:
        return float(np.mean(diagonals)), True
    return float(np.linalg.norm(person.box[2:] - person.box[:2]) / 2), False


def pck_hits(pred: np.ndarray, person: Person) -> tuple[int, int]:
    """(correct, labelled) joints at PCK@0.2."""
    ref, _ = pck_reference(person)
    dist = np.linalg.norm(pred - person.keypoints, axis=1)[person.labelled]
    return int((dist <= PCK_ALPHA * ref).sum()), int(person.labelled.sum())


# --- predictors: (image_bgr, gt boxes (N,4) xyxy, people) -> keypoints (N,17,2) or None per person ---


def ground_truth_predictor():
    def predict(image, boxes, people):
        return [p.keypoints.copy() for p in people]

    return predict


def engine_predictor(args, precision: str = "fp32", int8_mode: str | None = None):
    from app.engine import EngineError, PoseEngine
    from sdpose_core.quantize import QuantizeConfig

    try:
        engine = PoseEngine(
            args.model,
            args.weights,
            backend=args.backend,
            flip_test=args.flip_test,
            refine=refinement(args),
            threads=args.threads,
            precision=precision,
            int8=QuantizeConfig.load().with_mode(int8_mode) if int8_mode else None,
        )
    except EngineError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(
        f"ours: {engine.model_name} weights={engine.weights} backend={engine.backend_name} "
        f"precision={engine.precision}{f' {int8_mode}' if int8_mode else ''} flip={args.flip_test}"
    )

    def predict(image, boxes, people):
        keypoints, _ = engine.estimate(image, boxes.astype(np.float32))
        return list(keypoints.astype(np.float64))

    return predict


def refinement(args):
    """`configs/app.yaml`'s crop refinement, switched on, with `--refine`; else None."""
    if not args.refine:
        return None
    from dataclasses import replace

    from app.pipeline import AppConfig

    return replace(AppConfig.load().refine, enabled=True)


def movenet_predictor(args):
    from app.refine import refined_boxes
    from sdpose_core.labels.teachers import MoveNetTeacher

    teacher = MoveNetTeacher(args.movenet, threads=args.threads)
    refine = refinement(args)

    def predict(image, boxes, people):
        keypoints, scores = teacher(image, boxes)
        if refine is not None:  # the same second pass the engine runs for ours
            keypoints, scores = np.array(keypoints), np.array(scores)
            h, w = image.shape[:2]
            again, new_boxes = refined_boxes(keypoints, scores, boxes, (w, h), refine)
            if again.size:
                keypoints[again] = np.asarray(teacher(image, new_boxes)[0])
        return list(keypoints)

    return predict


def yolo_predictor(args, matched: list[int]):
    from sdpose_core.geometry import box_iou
    from sdpose_core.labels.teachers import YoloPoseTeacher

    teacher = YoloPoseTeacher(args.yolo, imgsz=args.yolo_imgsz, threads=args.threads)

    def predict(image, boxes, people):
        det_boxes, _, keypoints, _ = teacher(image)
        out: list[np.ndarray | None] = [None] * len(boxes)
        if len(det_boxes):
            ious = box_iou(boxes, det_boxes)
            # Greedy one-to-one matching, highest IoU first.
            used = set()
            for flat in np.argsort(-ious, axis=None):
                i, j = np.unravel_index(flat, ious.shape)
                if ious[i, j] < args.yolo_iou:
                    break
                if out[i] is None and j not in used:
                    out[i] = keypoints[j]
                    used.add(j)
        matched[0] += sum(o is not None for o in out)
        matched[1] += len(out)
        return out

    return predict


def recorded(predict, store: list[np.ndarray]):
    """`predict` that also appends each person's keypoints (17, 2) to `store`, in call order."""

    def wrapper(image, boxes, people):
        out = predict(image, boxes, people)
        store.extend(np.asarray(p, dtype=np.float64) for p in out)
        return out

    return wrapper


def distance_summary(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    """Pixel distance between two models' keypoints of the same people, all joints pooled:
    "mean / p95 / max" ("-" when nobody was scored)."""
    if not a:
        return "-"
    d = np.linalg.norm(np.stack(a) - np.stack(b), axis=-1).reshape(-1)
    return f"{d.mean():.2f} / {np.percentile(d, 95):.2f} / {d.max():.1f}"


def compare_int8(args, datasets: dict[str, list[Image]], lspet: list[Image]) -> str:
    """fp32 against int8 of the same weights (ONNX Runtime), on the held-out people and LSPET:
    mean OKS and PCK of each, what int8 loses, and how far its keypoints lie from fp32's."""
    runs = [("fp32", "fp32", None), *((f"int8 {mode}", "int8", mode) for mode in args.compare_int8)]
    rows: dict[str, dict] = {}
    lspet_rows: dict[str, dict] = {}
    kept: dict[str, tuple[list, list]] = {}
    for label, precision, mode in runs:
        predict, held, val = engine_predictor(args, precision, mode), [], []
        if datasets:
            rows[label] = evaluate(recorded(predict, held), datasets)
        if lspet:
            lspet_rows[label] = evaluate_torso_pck(recorded(predict, val), lspet)
        kept[label] = (held, val)
    lines = []
    if rows:
        lines += ["", format_table(rows, [*datasets, "all"], None)]
    if lspet_rows:
        boxes = LSPET_BOXES[args.lspet_box]
        lines += ["", f"LSPET validation (im08501-im09000, {len(lspet)} people, {boxes}):"]
        lines.append(format_lspet(lspet_rows))
    nan = float("nan")
    lines += [
        "",
        "int8 against fp32 of the same weights (goal: at most 0.01 lost); keypoints to fp32 in pixels",
        f"{'model':<22} | OKS lost | PCK lost | LSPET PCK lost | "
        "held-out mean / p95 / max | LSPET mean / p95 / max",
    ]
    for label, *_ in runs[1:]:
        oks_lost = rows["fp32"]["all"]["oks"] - rows[label]["all"]["oks"] if rows else nan
        pck_lost = rows["fp32"]["all"]["pck"] - rows[label]["all"]["pck"] if rows else nan
        lspet_lost = lspet_rows["fp32"]["pck"] - lspet_rows[label]["pck"] if lspet_rows else nan
        held, val = (distance_summary(kept["fp32"][i], kept[label][i]) for i in (0, 1))
        lines.append(
            f"{label:<22} | {oks_lost:+8.4f} | {pck_lost:+8.4f} | {lspet_lost:+14.4f} | {held:>25} | {val}"
        )
    return "\n".join(lines)


def evaluate(predict, datasets: dict[str, list[Image]]) -> dict[str, dict]:
    """Per set and pooled: mean OKS, PCK@0.2, people, joints, torso-normalised people, seconds."""
    per_set: dict[str, dict] = {}
    joint_sums, joint_counts = np.zeros(NUM_KEYPOINTS), np.zeros(NUM_KEYPOINTS, dtype=int)
    for name, images in datasets.items():
        oks_values, hits, joints, torso, seconds, who = [], 0, 0, 0, 0.0, []
        for image in images:
            frame = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            if frame is None:
                raise SystemExit(f"cannot read image {image.path}")
            boxes = np.stack([p.box for p in image.people])
            start = time.perf_counter()
            preds = predict(frame, boxes, image.people)
            seconds += time.perf_counter() - start
            for number, (pred, person) in enumerate(zip(preds, image.people, strict=True)):
                width, height = person.box[2:] - person.box[:2]
                who.append(f"{image.path.name} #{number} ({width:.0f}x{height:.0f})")
                torso += pck_reference(person)[1]
                if pred is None:  # missed person (YOLO unmatched): OKS 0, no joint correct
                    oks_values.append(0.0)
                    joints += int(person.labelled.sum())
                    continue
                similarity = joint_similarity(np.asarray(pred, dtype=np.float64), person)
                oks_values.append(float(similarity[person.labelled].mean()))
                joint_sums += np.where(person.labelled, similarity, 0.0)
                joint_counts += person.labelled
                h, n = pck_hits(np.asarray(pred, dtype=np.float64), person)
                hits, joints = hits + h, joints + n
        per_set[name] = {
            "oks_values": oks_values,
            "who": who,
            "hits": hits,
            "joints": joints,
            "torso": torso,
            "s": seconds,
        }
    pooled = {
        "oks_values": [v for s in per_set.values() for v in s["oks_values"]],
        **{k: sum(s[k] for s in per_set.values()) for k in ("hits", "joints", "torso", "s")},
    }
    result = {}
    for name, s in {**per_set, "all": pooled}.items():
        n = len(s["oks_values"])
        result[name] = {
            "oks": float(np.mean(s["oks_values"])) if n else float("nan"),
            "pck": s["hits"] / s["joints"] if s["joints"] else float("nan"),
            "people": n,
            "joints": s["joints"],
            "torso_normalised": s["torso"],
            "ms_per_person": 1e3 * s["s"] / n if n else float("nan"),
        }
        if name != "all":
            result[name]["per_person"] = list(zip(s["who"], s["oks_values"], strict=True))
    # Missed people (None) add nothing here: per joint, how close the found ones are.
    result["all"]["per_joint"] = {
        joint: (float(total / count) if count else float("nan"), int(count))
        for joint, total, count in zip(KEYPOINT_NAMES, joint_sums, joint_counts, strict=True)
    }
    return result


def format_per_joint(rows: dict[str, dict[str, dict]], ours: str, other: str) -> str:
    """Per joint over all sets: people labelled, mean OKS term of ours and the teacher."""
    lines = [f"{'joint':16s} {'people':>6s} {'ours':>6s} {'teacher':>8s} {'diff':>7s}"]
    for joint, (a, n) in rows[ours]["all"]["per_joint"].items():
        b = rows[other]["all"]["per_joint"][joint][0]
        lines.append(f"{joint:16s} {n:6d} {a:6.3f} {b:8.3f} {a - b:+7.3f}")
    return "\n".join(lines)


def format_per_person(rows: dict[str, dict[str, dict]], ours: str, other: str) -> str:
    """One line per held-out person, worst against ``other`` first: where the model fails."""
    people = [  # both rows scored the same people in the same order
        (name, who, value, theirs)
        for name, stats in rows[ours].items()
        if name != "all"
        for (who, value), (_, theirs) in zip(
            stats["per_person"], rows[other][name]["per_person"], strict=True
        )
    ]
    width = max(len("person (box w x h)"), *(len(p[1]) for p in people))
    lines = [f"{'set':12s} {'person (box w x h)':{width}s} {'ours':>6s} {'teacher':>8s} {'diff':>7s}"]
    for name, who, a, b in sorted(people, key=lambda p: p[2] - p[3]):
        lines.append(f"{name:12s} {who:{width}s} {a:6.3f} {b:8.3f} {a - b:+7.3f}")
    return "\n".join(lines)


def format_lspet(rows: dict[str, dict]) -> str:
    """One line per model: LSPET PCK@0.2 of the limb joints, people and joints counted."""
    width = max(26, *(len(label) for label in rows))
    first = next(iter(rows.values()))
    grouping = ("by_turn", "by_tolerance")
    titles = [f"{name} n={group['people']}" for key in grouping for name, group in first[key].items()]
    lines = [
        f"{'model':<{width}} | PCK@0.2 | people | joints | ms/person" + "".join(f" | {t}" for t in titles)
    ]
    for label, r in rows.items():
        counts = f"{r['people']:6d} | {r['joints']:6d}"
        groups = [group for key in grouping for group in r[key].values()]
        cells = "".join(f" | {g['pck']:{len(t)}.3f}" for t, g in zip(titles, groups, strict=True))
        lines.append(f"{label:<{width}} | {r['pck']:7.3f} | {counts} | {r['ms_per_person']:9.1f}{cells}")
    lines.append(
        f"PCK@{PCK_ALPHA}: visible limb joints within {PCK_ALPHA} x |left shoulder - right hip| (labels); "
        f"{first['people']} people have both. By turn: the hips-to-shoulders line within "
        + ", ".join(f"{low:.0f}-{min(high, 180):.0f}" for low, high in TURNS.values())
        + " degrees of image up (both shoulders and hips labelled). By tolerance: 0.2 x the torso in "
        f"pixels of the {INPUT_HEIGHT}-pixel-high model input, the person cropped from their box as the "
        "engine crops (4 pixels a heatmap cell)"
    )
    return "\n".join(lines)


def format_table(rows: dict[str, dict[str, dict]], sets: list[str], diff: tuple[str, str] | None) -> str:
    """Rows = models; per set (and pooled) mean OKS and PCK@0.2; then ours - teacher."""
    first = next(iter(rows.values()))
    label_w = max(26, *(len(r) for r in rows))
    cell_w = 17
    titles = [f"{s} n={first[s]['people']}" for s in sets]
    head1 = f"{'':<{label_w}}" + "".join(f" | {t:^{cell_w}}" for t in titles)
    head2 = f"{'model':<{label_w}}" + "".join(f" | {'OKS':>6}   {'PCK':>6}  " for _ in sets) + " | ms/person"
    lines = [head1, head2, "-" * len(head2)]

    def line(label: str, values: dict[str, dict], signed: bool = False) -> str:
        fmt = "{:+6.3f}" if signed else "{:6.3f}"
        cells = "".join(f" | {fmt.format(values[s]['oks'])}   {fmt.format(values[s]['pck'])}  " for s in sets)
        ms = "" if signed else f" | {values['all']['ms_per_person']:9.1f}"
        return f"{label:<{label_w}}{cells}{ms}"

    for label, values in rows.items():
        lines.append(line(label, values))
    if diff:
        a, b = (rows[k] for k in diff)
        delta = {s: {m: a[s][m] - b[s][m] for m in ("oks", "pck")} for s in sets}
        lines.append("-" * len(head2))
        lines.append(line("ours - teacher", delta, signed=True))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="our checkpoint (.pth) or .onnx; default: bundled")
    parser.add_argument("--model", default="sdpose_t")
    parser.add_argument("--backend", default="onnx", choices=["onnx", "torch"])
    parser.add_argument("--flip-test", action="store_true")
    parser.add_argument(
        "--refine",
        action="store_true",
        help="a second pass in boxes around the first pass's joints (both models)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--movenet", type=Path, default=MOVENET)
    parser.add_argument("--with-yolo", action="store_true", help="add YOLO11n-pose, full image, IoU-matched")
    parser.add_argument("--yolo", type=Path, default=YOLO)
    parser.add_argument("--yolo-imgsz", type=int, default=640)
    parser.add_argument("--yolo-iou", type=float, default=0.5, help="min IoU to match a YOLO box to a GT box")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    parser.add_argument("--self-check", action="store_true", help="score the GT itself (1.0 / 1.0)")
    parser.add_argument("--train-ann", type=Path, help="also score ours on a sample of this training file")
    parser.add_argument("--train-root", type=Path, help="image folder of --train-ann")
    parser.add_argument("--train-per-source", type=int, default=40, help="people per source folder")
    parser.add_argument(
        "--per-person", action="store_true", help="also list every person's OKS, ours vs the teacher"
    )
    parser.add_argument(
        "--per-joint", action="store_true", help="also list each joint's mean OKS term, ours vs the teacher"
    )
    parser.add_argument("--no-lspet", action="store_true", help="skip the LSPET validation table")
    parser.add_argument(
        "--lspet-only", action="store_true", help="only the LSPET validation table (choosing checkpoints)"
    )
    parser.add_argument(
        "--lspet-box",
        choices=sorted(LSPET_BOXES),
        default="image",
        help="LSPET boxes: the whole image (default, the validation figure), around the labelled joints, "
        "or the app's detector's",
    )
    parser.add_argument(
        "--compare-int8",
        nargs="*",
        metavar="MODE",
        help="score fp32 and int8 of the same --weights (ONNX Runtime) instead of the teacher; MODEs "
        "as qdq/channel (default: the one in configs/app.yaml)",
    )
    args = parser.parse_args()
    if (args.train_ann is None) != (args.train_root is None):
        parser.error("--train-ann and --train-root go together")

    cv2.setNumThreads(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    datasets = {} if args.lspet_only else load_datasets()
    sets = [*datasets, "all"]
    rows: dict[str, dict[str, dict]] = {}
    lspet_rows: dict[str, dict] = {}
    lspet = [] if args.no_lspet else load_lspet_validation(box=args.lspet_box)
    diff = None
    ours_label = (
        f"ours {args.model}" + (" +flip" if args.flip_test else "") + (" +refine" if args.refine else "")
    )
    if args.compare_int8 is not None:
        from sdpose_core.quantize import QuantizeConfig

        args.backend = "onnx"
        args.compare_int8 = args.compare_int8 or [QuantizeConfig.load().mode]
        print(compare_int8(args, datasets, lspet))
        return 0
    if args.self_check:
        rows["ground truth (self-check)"] = evaluate(ground_truth_predictor(), datasets)
        if lspet:
            lspet_rows["ground truth (self-check)"] = evaluate_torso_pck(ground_truth_predictor(), lspet)
    elif args.lspet_only:
        lspet_rows[ours_label] = evaluate_torso_pck(engine_predictor(args), lspet)
    else:
        teacher_label = "movenet thunder (teacher)" + (" +refine" if args.refine else "")
        ours = engine_predictor(args)
        teacher = movenet_predictor(args)
        rows[ours_label] = evaluate(ours, datasets)
        rows[teacher_label] = evaluate(teacher, datasets)
        if lspet:
            lspet_rows[ours_label] = evaluate_torso_pck(ours, lspet)
            lspet_rows[teacher_label] = evaluate_torso_pck(teacher, lspet)
        diff = (ours_label, teacher_label)
        if args.with_yolo:
            matched = [0, 0]
            result = evaluate(yolo_predictor(args, matched), datasets)
            rows[f"yolo11n-pose ({matched[0]}/{matched[1]} matched)"] = result
        if args.train_ann:
            fit_sets = load_training_sample(args.train_ann, args.train_root, args.train_per_source)
            fit = {ours_label: evaluate(ours, fit_sets)}
            print("\nFit on the training data (labels: the teacher's, or LSP's human ones):")
            print(format_table(fit, [*fit_sets, "all"], None))

    if rows:
        print()
        print(format_table(rows, sets, diff))
        first = next(iter(rows.values()))["all"]
        print(
            f"OKS: mean over people, COCO sigmas, GT area. PCK@{PCK_ALPHA}: over labelled joints "
            f"({first['joints']}), normalised by the torso (mean shoulder-to-opposite-hip) for "
            f"{first['torso_normalised']}/{first['people']} people, by half the box diagonal for the rest."
        )
    if lspet_rows:
        boxes = LSPET_BOXES[args.lspet_box]
        if args.lspet_box == "detector":
            boxes += f"; it boxed {sum(p.box is not None for image in lspet for p in image.people)} of them"
        print(f"\nLSPET validation (im08501-im09000, {len(lspet)} people, {boxes}):")
        print(format_lspet(lspet_rows))
    if args.per_person and diff:
        print("\nPer person, OKS (worst against the teacher first):")
        print(format_per_person(rows, *diff))
    if args.per_joint and diff:
        print("\nPer joint, mean OKS term exp(-d^2 / 2 s^2 k^2) over the people labelled there:")
        print(format_per_joint(rows, *diff))
    if args.json:
        payload = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "rows": rows,
            "lspet_validation": lspet_rows,
        }
        if diff:
            payload["ours_minus_teacher"] = {
                s: {m: rows[diff[0]][s][m] - rows[diff[1]][s][m] for m in ("oks", "pck")} for s in sets
            }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    if args.self_check:
        ok = all(
            abs(r[s]["oks"] - 1.0) < 1e-9 and abs(r[s]["pck"] - 1.0) < 1e-9
            for r in rows.values()
            for s in sets
        ) and all(abs(r["pck"] - 1.0) < 1e-9 for r in lspet_rows.values())
        print("self-check:", "OK (OKS 1.0, PCK 1.0)" if ok else "FAILED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
