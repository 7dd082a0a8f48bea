"""Records that flow through the runtime: one `Frame` in, one `FrameResult` out.

Stages fill fields of `FrameResult`; nothing changes data to suit display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["Frame", "FrameResult", "Poses", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded image from a source.

    Attributes:
        index: 0-based frame number within the source.
        timestamp: seconds since the source started (file: from its timeline).
        image: BGR uint8 array (H, W, 3); never copied by the pipeline.
        source_id: a short name of the source (file name, "webcam:0", ...).
        name: the image's own file name when the source is a folder of images, else "".
    """

    index: int
    timestamp: float
    image: np.ndarray
    source_id: str = ""
    name: str = ""


class Poses(NamedTuple):
    """What the pose engine returns for N person boxes (`PoseEngine.poses`).

    Attributes:
        keypoints: (N, 17, 2) float32 keypoint x, y in image pixels (COCO order).
        scores: (N, 17) float32 keypoint confidences.
        timings: milliseconds spent on this call: "crop", "pose" (the network) and "decode".
    """

    keypoints: np.ndarray
    scores: np.ndarray
    timings: dict[str, float]


def _empty(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


@dataclass(slots=True)
class FrameResult:
    """The people found in one frame.

    Attributes:
        frame: the input frame.
        boxes: (N, 4) float32 person boxes, x1 y1 x2 y2 in image pixels.
        box_scores: (N,) float32 detector (or propagated) box confidence.
        keypoints: (N, 17, 2) float32 keypoint x, y in image pixels (COCO order).
        kpt_scores: (N, 17) float32 keypoint confidences.
        track_ids: (N,) int64 stable ids, or None before tracking.
        timings: stage name -> milliseconds spent on this frame.
    """

    frame: Frame
    boxes: np.ndarray = field(default_factory=lambda: _empty((0, 4)))
    box_scores: np.ndarray = field(default_factory=lambda: _empty((0,)))
    keypoints: np.ndarray = field(default_factory=lambda: _empty((0, 17, 2)))
    kpt_scores: np.ndarray = field(default_factory=lambda: _empty((0, 17)))
    track_ids: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])
