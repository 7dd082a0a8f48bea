"""Give human-labelled training people the person detector's box, so training crops them as the app will.

    python -m sdpose_core.labels.detector_boxes --train-ann data/compact3/annotations.json \\
        --data-root data/compact3/images --output data/compact3/annotations_det.json

Why: LSP and LSPET athletes carry no person box; their training box is their joints' extent,
widened a little. The app crops what its detector boxes instead: the whole body to the head's
top and the feet, and on stretched or upside-down athletes often less than all of it. A model
that only ever saw joint-framed athletes reads them worse in detector boxes (LSPET validation,
stage-35 bundle: PCK@0.2 0.607 in joint boxes, 0.588 in the detector's; MoveNet 0.651 / 0.654),
most where the detector's box is much smaller than the joints (0.524 -> 0.437). With
``detector_box_prob`` in the recipe's ``data:`` section the trainer crops such people from this
box instead, some of the time.

For each person of the chosen ``--sources`` the detector (YOLO11n-pose as ONNX, as the labelling
commands use) runs on their image, and the box that overlaps their own box most, by IoU at least
``--min-iou``, becomes ``detector_bbox`` ([x, y, w, h]) with ``detector_score``; a person the
detector misses keeps none and is always cropped from their own box. Every other field is kept.
Boxes found so far go to ``OUTPUT.partial.jsonl`` as they come, so an interrupted run of the
same input and settings resumes there; the output is written at the end, atomically. The
detector reads the training file's own images (for `data/compact3`, the cut-outs: for LSP and
LSPET nearly the whole photo) where the app reads whole frames.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sdpose_core.cli import ArgumentParser, run_cli
from sdpose_core.errors import UserError
from sdpose_core.geometry import box_iou, box_xywh_to_xyxy
from sdpose_core.jsonio import atomic_write_text, write_json_atomic
from sdpose_core.labels.labeler import default_model_path
from sdpose_core.progress import track

__all__ = ["best_overlap", "add_detector_boxes", "DEFAULT_SOURCES", "MIN_IOU"]

log = logging.getLogger(__name__)

DEFAULT_SOURCES = ("lsp-human", "lspet-human")  # the people whose box is their joints' extent
MIN_IOU = 0.3  # a detector box overlapping the person's own box less is someone else


def best_overlap(boxes_xyxy: np.ndarray, person_xyxy: np.ndarray, min_iou: float = MIN_IOU) -> int | None:
    """Index of the box among ``boxes_xyxy`` (N, 4) that overlaps ``person_xyxy`` most, if by IoU
    >= ``min_iou``; else None (the detector missed this person). The benchmark's LSPET detector
    boxes are matched with it too."""
    if len(boxes_xyxy) == 0:
        return None
    overlaps = box_iou(np.asarray(boxes_xyxy, np.float64), np.asarray(person_xyxy, np.float64)[None])[:, 0]
    best = int(np.argmax(overlaps))
    return best if overlaps[best] >= min_iou else None


def _resume(partial: Path, run: dict[str, Any]) -> dict[int, list[dict]]:
    """Image id -> its detections from an earlier, interrupted run of the same ``run`` (input file
    and detector settings, the partial file's first line), and the partial file rewritten to
    hold just those (a torn last line dropped). A partial file of another run is started afresh."""
    done: dict[int, list[dict]] = {}
    lines = partial.read_text(encoding="utf-8").splitlines() if partial.is_file() else []
    try:
        same_run = bool(lines) and json.loads(lines[0]).get("run") == run
    except (json.JSONDecodeError, AttributeError):
        same_run = False
    if lines and not same_run:
        log.info("%s is from another input or detector setting: detecting afresh", partial)
    for line in lines[1:] if same_run else []:
        try:
            row = json.loads(line)
            done[int(row["image_id"])] = row["detections"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line torn by an interrupt
    rows = [json.dumps({"run": run})] + [
        json.dumps({"image_id": k, "detections": v}) for k, v in done.items()
    ]
    atomic_write_text(partial, "\n".join(rows) + "\n")
    return done


def add_detector_boxes(
    coco: dict[str, Any],
    image_root: Path,
    detect,
    sources: Iterable[str] = DEFAULT_SOURCES,
    min_iou: float = MIN_IOU,
    partial: Path | None = None,
    run: dict[str, Any] | None = None,
    progress: bool = True,
) -> Counter:
    """Add ``detector_bbox``/``detector_score`` to ``coco``'s people of ``sources`` (in place).

    ``detect(image_bgr) -> (boxes (N, 4) xyxy, scores (N,))``. Each image's detections go to
    ``partial`` (JSON Lines) as they come, under ``run`` (what identifies this input and detector);
    a later call with the same ``run`` reads them instead of detecting again. Returns per-source
    counts of people offered and matched ("<source>" and "<source> boxed").
    """
    sources = set(sources)
    images = {int(im["id"]): im for im in coco["images"]}
    wanted = [a for a in coco["annotations"] if a.get("source") in sources and "bbox" in a]
    image_ids = sorted({int(a["image_id"]) for a in wanted})
    done = _resume(partial, run or {}) if partial is not None else {}
    todo = [image_id for image_id in image_ids if image_id not in done]
    with open(partial, "a", encoding="utf-8") if partial is not None else nullcontext() as sink:
        for image_id in track(todo, total=len(todo), desc="detect", unit="image", enabled=progress):
            path = image_root / images[image_id]["file_name"]
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise UserError(f"cannot read image {path}: check --data-root")
            boxes, scores = detect(frame)
            found = [
                {"box": [float(v) for v in box], "score": float(score)}
                for box, score in zip(boxes, scores, strict=True)
            ]
            done[image_id] = found
            if sink is not None:
                sink.write(json.dumps({"image_id": image_id, "detections": found}) + "\n")
                sink.flush()
    counts: Counter = Counter()
    for ann in wanted:
        counts[ann["source"]] += 1
        found = done[int(ann["image_id"])]
        boxes = np.array([d["box"] for d in found], np.float64).reshape(-1, 4)
        own = box_xywh_to_xyxy(np.asarray(ann["bbox"][:4], np.float64))[0]
        match = best_overlap(boxes, own, min_iou)
        ann.pop("detector_bbox", None)
        ann.pop("detector_score", None)
        if match is not None:
            x1, y1, x2, y2 = boxes[match]
            ann["detector_bbox"] = [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]
            ann["detector_score"] = round(found[match]["score"], 4)
            counts[f"{ann['source']} boxed"] += 1
    return counts


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m sdpose_core.labels.detector_boxes", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--train-ann", required=True, help="COCO keypoint training file")
    p.add_argument("--data-root", required=True, help="folder of its images")
    p.add_argument(
        "--output", required=True, help="the file with detector boxes added (written anew; not --train-ann)"
    )
    p.add_argument("--sources", nargs="+", default=list(DEFAULT_SOURCES), help="annotation sources to box")
    p.add_argument("--detector-model", default=None, help="YOLO11n-pose ONNX (default: shared/data/models)")
    p.add_argument("--det-size", type=int, default=640, help="detector input size (longer side)")
    p.add_argument("--det-conf", type=float, default=0.1, help="lowest box score kept (the app's: 0.1)")
    p.add_argument("--min-iou", type=float, default=MIN_IOU, help="least overlap with the person's own box")
    p.add_argument("--threads", type=int, default=None, help="detector CPU threads")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from sdpose_core.labels.teachers import YoloPoseTeacher

    args = _parser().parse_args(argv)
    ann_file, output = Path(args.train_ann), Path(args.output)
    if output.resolve() == ann_file.resolve():
        raise UserError("--output must be a new file, not --train-ann itself")
    if not ann_file.is_file():
        raise UserError(f"annotation file not found: {ann_file}")
    if not Path(args.data_root).is_dir():
        raise UserError(f"image folder not found: {args.data_root}")
    try:
        with open(ann_file, encoding="utf-8") as fh:
            coco = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{ann_file} is unreadable or not JSON: {exc}") from None
    if not isinstance(coco, dict) or not all(
        isinstance(coco.get(k), list) for k in ("images", "annotations")
    ):
        raise UserError(f"{ann_file} is not a COCO keypoint file (no images/annotations lists)")
    found = {a.get("source") for a in coco["annotations"] if isinstance(a, dict)}
    missing = sorted(set(args.sources) - found)
    if missing:
        raise UserError(f"{ann_file} has no people of {missing}; its sources: {sorted(map(str, found))}")
    model = default_model_path("yolo", args.detector_model, "--detector-model")
    detector = YoloPoseTeacher(
        model, imgsz=args.det_size, conf=args.det_conf, threads=args.threads, role="detector"
    )

    def detect(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores, _, _ = detector(frame)
        return boxes, scores

    partial = output.with_name(output.name + ".partial.jsonl")
    output.parent.mkdir(parents=True, exist_ok=True)
    stat = ann_file.stat()
    run = {
        "train_ann": str(ann_file.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "model": str(model),
        "det_size": args.det_size,
        "det_conf": args.det_conf,
    }
    counts = add_detector_boxes(
        coco, Path(args.data_root), detect, args.sources, args.min_iou, partial, run, not args.no_progress
    )
    coco.setdefault("info", {})["detector_boxes"] = {
        "model": str(model),
        "det_size": args.det_size,
        "det_conf": args.det_conf,
        "min_iou": args.min_iou,
        "sources": list(args.sources),
        "counts": dict(counts),
    }
    write_json_atomic(output, coco)
    partial.unlink(missing_ok=True)
    for source in args.sources:
        print(f"{source}: {counts[f'{source} boxed']} of {counts[source]} people boxed by the detector")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
