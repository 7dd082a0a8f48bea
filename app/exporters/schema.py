"""The one JSON schema for a frame's people; every file format is derived from `frame_to_dict`.

Rounding (pixels 2 decimals, scores 4, time in ms) and the xyxy -> xywh box change happen here
only, so JSONL, COCO and OpenPose files always agree with each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.types import SCHEMA_VERSION, Frame, FrameResult
from sdpose_core.keypoints import NUM_KEYPOINTS

__all__ = ["frame_to_dict", "frame_from_dict"]

PIXEL_DECIMALS = 2
SCORE_DECIMALS = 4
TIME_DECIMALS = 3


def _rounded(values: np.ndarray, decimals: int) -> np.ndarray:
    """Round for JSON; non-finite values become 0 (JSON has no NaN) and -0.0 becomes 0.0."""
    clean = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.round(clean, decimals) + 0.0


def frame_to_dict(result: FrameResult) -> dict[str, Any]:
    """Plain-JSON dict of one frame.

    `{"schema_version", "frame", "time", "people": [{"track_id", "bbox": [x, y, w, h], "score",
    "keypoints": [[x, y, score] x 17]}]}`, keypoints in COCO order, track_id -1 when untracked.
    """
    n = len(result)
    boxes = np.asarray(result.boxes, dtype=np.float64).reshape(n, 4)
    xywh = _rounded(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1), PIXEL_DECIMALS)
    box_scores = _rounded(np.asarray(result.box_scores).reshape(n), SCORE_DECIMALS)
    kpts = _rounded(np.asarray(result.keypoints).reshape(n, NUM_KEYPOINTS, 2), PIXEL_DECIMALS)
    kpt_scores = _rounded(np.asarray(result.kpt_scores).reshape(n, NUM_KEYPOINTS, 1), SCORE_DECIMALS)
    triples = np.concatenate([kpts, kpt_scores], axis=2).tolist()
    if result.track_ids is None:
        ids = [-1] * n
    else:
        ids = [int(t) for t in np.asarray(result.track_ids).reshape(n)]
    bbox_list = xywh.tolist()
    score_list = box_scores.tolist()
    people = [
        {"track_id": ids[i], "bbox": bbox_list[i], "score": score_list[i], "keypoints": triples[i]}
        for i in range(n)
    ]
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "frame": int(result.frame.index),
        "time": round(float(result.frame.timestamp), TIME_DECIMALS),
    }
    if result.frame.name:  # a folder of images: say which image this is
        record["image"] = result.frame.name
    record["people"] = people
    return record


def frame_from_dict(
    data: dict[str, Any], image: np.ndarray | None = None, source_id: str = ""
) -> FrameResult:
    """Read a `frame_to_dict` dict back into arrays (boxes back to xyxy).

    The image is not stored in the schema: pass it if you have it, else the frame holds an empty
    (0, 0, 3) image. `track_ids` is None when every person is untracked (-1).
    """
    try:
        people = list(data["people"])
        frame = Frame(int(data["frame"]), float(data["time"]), _image(image), source_id)
        n = len(people)
        xywh = np.array([p["bbox"] for p in people], dtype=np.float32).reshape(n, 4)
        triples = np.array([p["keypoints"] for p in people], dtype=np.float32).reshape(n, NUM_KEYPOINTS, 3)
        scores = np.array([p["score"] for p in people], dtype=np.float32).reshape(n)
        ids = np.array([p.get("track_id", -1) for p in people], dtype=np.int64).reshape(n)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a pose frame record ({type(e).__name__}: {e})") from None
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return FrameResult(
        frame=frame,
        boxes=boxes,
        box_scores=scores,
        keypoints=np.ascontiguousarray(triples[..., :2]),
        kpt_scores=np.ascontiguousarray(triples[..., 2]),
        track_ids=None if n == 0 or bool((ids == -1).all()) else ids,
    )


def _image(image: np.ndarray | None) -> np.ndarray:
    return np.zeros((0, 0, 3), dtype=np.uint8) if image is None else image
