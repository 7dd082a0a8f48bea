"""Real person crops to calibrate int8 quantization, taken from the training pools.

Static quantization fixes each activation's int8 range from what the network sees on a few
hundred inputs. Random noise or blank crops would set ranges no video produces, so the crops are
real people, cut exactly as the app cuts them (`person_crops`): Stanford 40 actions (seated,
waist-up, everyday; a human-drawn box each, `annotations.json`) and LSP athletes (the extent of
their joints, as the trainer boxes them). Only training pools are read: the held-out sets that
`benchmarks/bench_accuracy.py` scores (and LSPET im08501-im09000) never feed calibration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.geometry import normalize_crops, person_crops
from sdpose_core.labels.lsp import lsp_person_box, read_lsp_joints

__all__ = ["PersonBox", "pool_people", "calibration_crops"]

PersonBox = tuple[Path, np.ndarray]  # (image path, (4,) xyxy box)


def _coco_boxes(annotations: Path) -> list[PersonBox]:
    """Every annotated person box of a COCO-style file (images under `images/` beside it)."""
    data = json.loads(annotations.read_text())
    names = {image["id"]: image["file_name"] for image in data["images"]}
    root = annotations.parent / "images"
    people = []
    for ann in data["annotations"]:
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w > 0 and h > 0:
            people.append((root / names[ann["image_id"]], np.array([x, y, x + w, y + h], np.float32)))
    return people


def _lsp_boxes(folder: Path) -> list[PersonBox]:
    """LSP's one person per image, boxed by the extent of the joints (`lsp_person_box`), not
    clipped to the image: the crop's zero border covers what lies beyond, as in the app."""
    paths, joints = read_lsp_joints(folder)
    unclipped = (1 << 16, 1 << 16)
    boxes = [lsp_person_box(j, unclipped).astype(np.float32) for j in joints]
    return list(zip(paths, boxes, strict=True))


def pool_people(folder: str | os.PathLike) -> list[PersonBox]:
    """The people of one training pool folder: a COCO `annotations.json` with boxes, or LSP."""
    folder = Path(folder)
    if (folder / "annotations.json").is_file():
        return _coco_boxes(folder / "annotations.json")
    if (folder / "joints.mat").is_file():
        return _lsp_boxes(folder)
    raise UserError(
        f"no calibration people in {folder}: expected annotations.json (COCO boxes) or joints.mat (LSP)"
    )


def calibration_crops(folders: Sequence[str | os.PathLike], count: int, seed: int = 0) -> np.ndarray:
    """(count, 3, 256, 192) float32 network inputs: people drawn at random, evenly over `folders`."""
    if count < 1:
        raise UserError(f"calibration needs at least one crop, not {count}")
    pools = [pool_people(folder) for folder in folders]
    if not pools:
        raise UserError("no calibration folders given")
    rng = np.random.default_rng(seed)
    crops = []
    for number, people in enumerate(pools):
        share = count // len(pools) + (number < count % len(pools))
        for index in sorted(rng.choice(len(people), min(share, len(people)), replace=False)):
            path, box = people[index]
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise UserError(f"cannot read calibration image {path}")
            crops.append(person_crops(image, box[None])[0])
    return normalize_crops(np.concatenate(crops))
