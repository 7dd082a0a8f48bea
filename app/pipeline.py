"""The runtime path: frames in, `FrameResult`s out.

detector (every N frames) -> batched SDPose engine -> tracker. Between detections a person's
box comes from the extent of their last confident keypoints, so the detector's cost is paid
rarely; a person entering is picked up at the next detection. The CLI and the GUI both
consume `PosePipeline.run`, a generator that never collects results.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from app.detector import Detections
from app.tracker import Tracker, box_iou
from app.types import Frame, FrameResult
from sdpose_core.config import CONFIG_DIR, from_dict, load_yaml

MIN_PERSON_SPREAD = 8.0  # pixels: the confident joints of a tracked person span at least this

__all__ = ["AppConfig", "DetectorConfig", "DetectionSchedule", "PosePipeline", "boxes_from_keypoints"]


@dataclass
class DetectorConfig:
    imgsz: int = 640
    conf: float = 0.3
    iou: float = 0.6
    max_people: int = 50


@dataclass
class DetectionSchedule:
    """When to run the detector and how to carry boxes between detections."""

    every: int = 5
    adaptive: bool = False
    adaptive_max_every: int = 15
    kpt_score: float = 0.3
    min_kpts: int = 4
    box_expand: float = 1.15
    duplicate_iou: float = 0.6

    def __post_init__(self) -> None:
        if self.every < 1 or self.adaptive_max_every < 1:
            raise ValueError("detection intervals must be at least 1")


@dataclass
class AppConfig:
    """`configs/app.yaml`: engine, detector and detection-schedule defaults."""

    model: str = "sdpose_t"
    backend: str = "onnx"
    device: str = "cpu"
    flip_test: bool = False
    threads: int = 0
    precision: str = "fp32"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    detection: DetectionSchedule = field(default_factory=DetectionSchedule)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AppConfig:
        path = Path(path) if path else CONFIG_DIR / "app.yaml"
        return from_dict(cls, load_yaml(path), where=path.name)


def boxes_from_keypoints(
    keypoints: np.ndarray, scores: np.ndarray, min_score: float, min_kpts: int, expand: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (M, 4) xyxy around each person's confident keypoints, grown by `expand` about their
    centre, and the indices (M,) of the people that had at least `min_kpts` such joints."""
    confident = scores >= min_score
    keep = np.flatnonzero(confident.sum(axis=1) >= min_kpts)
    if keep.size:  # joints collapsed onto one spot are no person
        masked = np.where(confident[keep][..., None], keypoints[keep], np.nan)
        spread = np.nanmax(masked, axis=1) - np.nanmin(masked, axis=1)  # (M, 2)
        keep = keep[spread.max(axis=1) >= MIN_PERSON_SPREAD]
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), keep
    pts = keypoints[keep]
    mask = confident[keep][..., None]
    lo = np.where(mask, pts, np.inf).min(axis=1)
    hi = np.where(mask, pts, -np.inf).max(axis=1)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * expand
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32), keep


def _suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices to keep when propagated boxes converge onto one person (greedy, by score)."""
    order = np.argsort(-scores)
    overlaps = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(overlaps[i, j] < iou for j in keep):
            keep.append(int(i))
    return np.array(sorted(keep), dtype=np.int64)


class PosePipeline:
    """`pipeline.process(frame) -> FrameResult`; `pipeline.run(source)` yields them.

    Args:
        detector: callable image -> `Detections` (e.g. `app.detector.PersonDetector`).
        engine: object with `estimate(image, boxes) -> (keypoints, scores)` and `last_timings`.
        tracker: an `app.tracker.Tracker`, or None for untracked output.
        schedule: when to detect and how to propagate boxes.
    """

    def __init__(self, detector, engine, tracker: Tracker | None, schedule: DetectionSchedule | None = None):
        self.detector = detector
        self.engine = engine
        self.tracker = tracker
        self.schedule = schedule or DetectionSchedule()
        self.reset()

    def reset(self) -> None:
        """Forget all people (a new source, or a seek)."""
        self._boxes = np.zeros((0, 4), np.float32)
        self._box_scores = np.zeros((0,), np.float32)
        self._since_detection = 0
        self._interval = self.schedule.every
        self._first = True
        if self.tracker is not None:
            self.tracker.reset()

    def set_schedule(self, every: int, adaptive: bool) -> None:
        """Change the detection interval live (GUI); the next detection follows the new rule."""
        self.schedule = replace(self.schedule, every=max(1, int(every)), adaptive=bool(adaptive))
        self._interval = self.schedule.every

    def _should_detect(self) -> bool:
        return self._first or self._since_detection >= self._interval

    def _adapt_interval(self, detected: int, propagated: int) -> None:
        """Adaptive mode: the interval doubles while detections agree with the people carried
        over, and drops to 1 when someone appears or disappears."""
        if not self.schedule.adaptive:
            return
        if detected != propagated:
            self._interval = 1
        else:
            self._interval = min(max(self._interval * 2, 2), self.schedule.adaptive_max_every)

    def process(self, frame: Frame) -> FrameResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        detected = self._should_detect()
        if detected:
            detections: Detections = self.detector(frame.image)
            self._adapt_interval(len(detections), len(self._boxes))
            boxes, box_scores = detections.boxes, detections.scores
            self._since_detection = 0
            self._first = False
        else:
            boxes, box_scores = self._boxes, self._box_scores
        self._since_detection += 1
        timings["detect"] = (time.perf_counter() - t0) * 1e3 if detected else 0.0

        keypoints, kpt_scores = self.engine.estimate(frame.image, boxes)
        timings.update(self.engine.last_timings)
        self._carry_boxes(keypoints, kpt_scores, box_scores)

        result = FrameResult(
            frame, boxes.astype(np.float32), box_scores.astype(np.float32), keypoints, kpt_scores
        )
        t1 = time.perf_counter()
        if self.tracker is not None:
            result = self.tracker.update(result)
        timings["track"] = (time.perf_counter() - t1) * 1e3
        result.timings.update(timings)
        return result

    def _carry_boxes(self, keypoints: np.ndarray, scores: np.ndarray, box_scores: np.ndarray) -> None:
        s = self.schedule
        boxes, keep = boxes_from_keypoints(keypoints, scores, s.kpt_score, s.min_kpts, s.box_expand)
        carried = box_scores[keep].astype(np.float32)
        if len(boxes) > 1:
            unique = _suppress_duplicates(boxes, carried, s.duplicate_iou)
            boxes, carried = boxes[unique], carried[unique]
        self._boxes, self._box_scores = boxes, carried

    def run(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """Process frames as they come; `timings["read"]` is the time spent waiting for each."""
        iterator = iter(frames)
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(iterator)
            except StopIteration:
                return
            read_ms = (time.perf_counter() - t0) * 1e3
            result = self.process(frame)
            yield replace(result, timings={"read": read_ms, **result.timings})
