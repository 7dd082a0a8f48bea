"""What the pseudo-labeller reads: image and video files from paths, the frames it labels
from them, the ``--exclude`` patterns, and the person boxes of ``--boxes`` files.

Kept apart from the teachers so that reading and checking inputs (which `pseudo_label.main`
does before any model loads) needs no model code.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

__all__ = ["Frame", "collect_inputs", "iter_frames", "exclusion", "BoxedImage", "read_box_file"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One image to label: ``name`` is its file name under DIR/images, ``origin`` where it came from."""

    name: str
    image: np.ndarray
    origin: str


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
