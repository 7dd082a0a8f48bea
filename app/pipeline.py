"""The runtime path: frames in, `FrameResult`s out.

detector (every N frames) -> batched SDPose engine -> tracker. Between detections each person's
box is carried: the detector's box, moved and scaled as their confident joints moved between
the last two frames, and tagged with their track id so the tracker keeps it without
re-matching. The detector's cost is paid rarely; a person entering is picked up at the next
detection. A carried person a detection misses (motion blur, against the light, mid-air) is kept
on their carried box for up to `keep_missed` detections in a row, as long as their pose stays
confident: the detector blinking is no reason for a skeleton to vanish and return with a new id.
`PosePipeline.run(frames)`, a generator that never collects results, is what the CLI and the
batch workers consume. The window's player seeks, steps and pauses, so it reads frames itself
and hands each one to `PosePipeline.process(frame, read_ms)`, the step `run` takes for every
frame (`run` adds the read time to what `process(frame)` returns): both give the same
`FrameResult`, timings included.

Why the box is moved rather than rebuilt from the joints' extent: a rebuilt box is only as good
as the pose model. With under-confident or collapsed limbs it narrows frame by frame, the crop
gets worse, confidences fall further and the person is dropped or re-identified (77 track ids
for 2 people on the demo clip with the bundled weights). Moving the detector's box keeps the
crop the detector chose and follows the person's motion.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.detector import MAX_PEOPLE, Detections
from app.detector_export import EXPORTS
from app.engine import DEFAULT_BACKEND, EngineError, check_engine_choice
from app.limits import bounded, check_bounds, check_device
from app.refine import CropRefinement
from app.smoothing import SmoothingKind
from app.tracker import Tracker
from app.types import Frame, FrameResult
from sdpose_core.config import CONFIG_DIR, from_dict, load_yaml
from sdpose_core.geometry import box_iou
from sdpose_core.quantize import QuantizeConfig

MIN_PERSON_SPREAD = 8.0  # pixels: the confident joints of a tracked person span at least this

MAX_SCALE_STEP = 0.1  # a carried box grows or shrinks by at most 10 % a frame
MAX_SCALE_SINCE_DETECTION = 1.5  # ... and to at most 1.5x (or 1/1.5) of the detector's box

__all__ = [
    "AppConfig",
    "DetectorConfig",
    "DetectionSchedule",
    "PosePipeline",
    "confident_people",
    "follow_boxes",
    "missed_people",
]


@dataclass
class DetectorConfig:
    """The person detector's settings (`detector:` in `configs/app.yaml`, `--det-*` flags)."""

    imgsz: int = bounded(640, 32, 4096)
    conf: float = bounded(0.1, 0.0, 1.0)
    iou: float = bounded(0.6, 0.0, 1.0)
    max_people: int = bounded(MAX_PEOPLE, 1)
    export: str = "openvino"  # a .pt runs through this Ultralytics export of it (cached): see app.yaml

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.export not in EXPORTS:
            raise ValueError(f"export {self.export!r} is not one of {', '.join(EXPORTS)}")


@dataclass
class DetectionSchedule:
    """When to run the detector and how to carry boxes between detections."""

    every: int = bounded(5, 1)
    adaptive: bool = False
    adaptive_max_every: int = bounded(15, 1)
    kpt_score: float = bounded(0.3, 0.0, 1.0)
    min_kpts: int = bounded(4, 0, 17)
    duplicate_iou: float = bounded(0.6, 0.0, 1.0)
    keep_missed: int = bounded(6, 0)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class AppConfig:
    """`configs/app.yaml`: engine (and its int8 calibration), detector and detection-schedule defaults."""

    model: str = "sdpose_t"
    backend: str = DEFAULT_BACKEND
    device: str = "cpu"
    flip_test: bool = False
    threads: int = bounded(0, 0, 1024)
    precision: str = "fp32"
    onnx_spinning: bool = False
    int8: QuantizeConfig = field(default_factory=QuantizeConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    detection: DetectionSchedule = field(default_factory=DetectionSchedule)
    refine: CropRefinement = field(default_factory=CropRefinement)

    def __post_init__(self) -> None:
        check_bounds(self)
        check_device(self.device)
        try:
            check_engine_choice(self.backend, self.precision)
        except EngineError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> AppConfig:
        path = Path(path) if path else CONFIG_DIR / "app.yaml"
        return from_dict(cls, load_yaml(path), where=path.name)


def confident_people(
    keypoints: np.ndarray, scores: np.ndarray, min_score: float, min_kpts: int
) -> np.ndarray:
    """Indices of the people worth carrying to the next frame: at least `min_kpts` joints with
    score >= `min_score`, spread over at least `MIN_PERSON_SPREAD` pixels (joints collapsed
    onto one spot are no person)."""
    confident = scores >= min_score
    keep = np.flatnonzero(confident.sum(axis=1) >= min_kpts)
    if keep.size:
        masked = np.where(confident[keep][..., None], keypoints[keep], np.nan)
        spread = np.nanmax(masked, axis=1) - np.nanmin(masked, axis=1)  # (M, 2)
        keep = keep[spread.max(axis=1) >= MIN_PERSON_SPREAD]
    return keep


def follow_boxes(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    prev_keypoints: np.ndarray,
    prev_scores: np.ndarray,
    min_score: float,
    detected_sizes: np.ndarray | None = None,
) -> np.ndarray:
    """Each box (N, 4) moved by the median shift of its person's joints confident in both this
    frame and the previous one, and scaled by the change of their spread (at most
    `MAX_SCALE_STEP` a frame). A person with no such joint keeps their box; with fewer than
    three, it is only moved. Rows of `prev_*` with NaN keypoints are people seen for the first
    time. Scaling pivots on the box centre, not the joints' centroid: at 10 % a frame at most,
    the difference is a pixel or two and the next detection resets the box.

    `detected_sizes` (N, 2): the width and height of each person's box when the detector last
    gave it. Per-frame steps compound over a long (adaptive) interval, so each side is also
    kept within `MAX_SCALE_SINCE_DETECTION` of it: joints that wander apart or collapse for a
    few frames cannot balloon or shrink the crop until the next detection."""
    out = boxes.astype(np.float32, copy=True)
    shared = (scores >= min_score) & (prev_scores >= min_score) & ~np.isnan(prev_keypoints).any(-1)
    for i in np.flatnonzero(shared.any(axis=1)):
        now, before = keypoints[i, shared[i]], prev_keypoints[i, shared[i]]
        centre = (out[i, :2] + out[i, 2:]) / 2 + np.median(now - before, axis=0)
        half = (out[i, 2:] - out[i, :2]) / 2
        if len(now) >= 3:
            spread_now = np.sqrt(((now - now.mean(0)) ** 2).sum(1).mean())
            spread_before = np.sqrt(((before - before.mean(0)) ** 2).sum(1).mean())
            if spread_before > 0:
                half = half * np.clip(spread_now / spread_before, 1 - MAX_SCALE_STEP, 1 + MAX_SCALE_STEP)
                if detected_sizes is not None:
                    detected_half = detected_sizes[i] / 2
                    bound = MAX_SCALE_SINCE_DETECTION
                    half = np.clip(half, detected_half / bound, detected_half * bound)
        out[i] = np.concatenate([centre - half, centre + half])
    return out


def _suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices to keep when propagated boxes converge onto one person (greedy, by score)."""
    order = np.argsort(-scores)
    overlaps = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(overlaps[i, j] < iou for j in keep):
            keep.append(int(i))
    return np.array(sorted(keep), dtype=np.int64)


@dataclass
class _Carried:
    """People to pose in the coming frame: boxes (N, 4), box scores (N,), track ids (N,; -1 for
    none), the keypoints (N, 17, 2; NaN for none) and scores (N, 17) of the frame the boxes
    came from, which `follow_boxes` compares with the new pose to move the box on, the
    width and height (N, 2) of each box when the detector gave it, which bound its scaling, and
    how many detections in a row have missed each person (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    keypoints: np.ndarray
    kpt_scores: np.ndarray
    detected_sizes: np.ndarray
    missed: np.ndarray

    @classmethod
    def detected(cls, boxes: np.ndarray, scores: np.ndarray) -> _Carried:
        n = len(boxes)
        boxes = np.asarray(boxes, np.float32).reshape(n, 4)
        return cls(
            boxes,
            np.asarray(scores, np.float32).reshape(n),
            np.full(n, -1, np.int64),
            np.full((n, 17, 2), np.nan, np.float32),
            np.zeros((n, 17), np.float32),
            boxes[:, 2:] - boxes[:, :2],
            np.zeros(n, np.int64),
        )

    @classmethod
    def empty(cls) -> _Carried:
        return cls.detected(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def take(self, rows: np.ndarray) -> _Carried:
        return _Carried(*(getattr(self, f.name)[rows] for f in fields(self)))

    def plus(self, other: _Carried) -> _Carried:
        return _Carried(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )


def missed_people(
    carried_boxes: np.ndarray,
    carried_keypoints: np.ndarray,
    carried_scores: np.ndarray,
    detected_boxes: np.ndarray,
    min_score: float,
    match_iou: float = 0.3,
) -> np.ndarray:
    """Indices of carried people no detection accounts for. Each detection accounts for one
    person at most (Hungarian assignment on the pair strengths, as `app.tracker` matches), a pair
    counting where the box overlaps theirs by `match_iou` or more or holds most of their joints
    scoring `min_score` or more (a detector's box of the same person can sit off the carried one
    by more than that overlap). One-to-one, because two people overlapping, the commonest reason
    a detector keeps only one box, must not both be taken as found."""
    n = len(carried_boxes)
    if n == 0 or len(detected_boxes) == 0:
        return np.arange(n)
    iou = box_iou(carried_boxes, detected_boxes)  # (N, D)
    confident = carried_scores >= min_score  # (N, 17)
    xy = carried_keypoints[:, None]  # (N, 1, 17, 2)
    lo, hi = detected_boxes[None, :, None, :2], detected_boxes[None, :, None, 2:]
    inside = ((xy >= lo) & (xy <= hi)).all(axis=-1) & confident[:, None]  # (N, D, 17)
    share = inside.sum(axis=-1) / np.maximum(confident.sum(axis=-1, keepdims=True), 1)
    strength = np.maximum(np.where(iou >= match_iou, iou, 0.0), np.where(share > 0.5, share, 0.0))
    rows, cols = linear_sum_assignment(strength, maximize=True)
    found = np.zeros(n, bool)
    found[rows[strength[rows, cols] > 0.0]] = True
    return np.flatnonzero(~found)


class PosePipeline:
    """`pipeline.process(frame) -> FrameResult`; `pipeline.run(source)` yields them.

    Args:
        detector: callable image -> `Detections` (e.g. `app.detector.PersonDetector`).
        engine: object with `poses(image, boxes) -> Poses` (e.g. `app.engine.PoseEngine`).
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
        self._carried = _Carried.empty()
        self._since_detection = 0
        self._interval = self.schedule.every
        self._first = True
        if self.tracker is not None:
            self.tracker.reset()

    def set_schedule(self, every: int, adaptive: bool) -> None:
        """Change the detection interval live (GUI); the next detection follows the new rule."""
        self.schedule = replace(self.schedule, every=max(1, int(every)), adaptive=bool(adaptive))
        self._interval = self.schedule.every

    def set_engine(self, engine) -> None:
        """Pose the next frames with `engine` (another model, backend or weights); people, boxes
        and track ids are kept."""
        self.engine = engine

    def set_flip_test(self, on: bool) -> None:
        """Average each crop's heatmaps with its mirror's from the next frame on (or stop)."""
        self.engine.flip_test = bool(on)

    def set_refine(self, refine: CropRefinement) -> None:
        """Read loose boxes a second time (`app.refine`) from the next frame on, or stop."""
        self.engine.refine = refine

    def set_smoothing(self, kind: SmoothingKind, strength: float) -> None:
        """Change the tracker's keypoint filter live (`Tracker.set_smoothing`); no-op untracked."""
        if self.tracker is not None:
            self.tracker.set_smoothing(kind, strength)

    def _should_detect(self) -> bool:
        return self._first or self._since_detection >= self._interval

    def _adapt_interval(self, carried_out: int, carried_in: int) -> None:
        """Adaptive mode: the interval doubles while a detection frame ends with as many people
        to carry as it started with, and drops to 1 when that number changes.

        Both counts are of people confident enough to carry (`confident_people`), so a
        duplicate box the tracker drops, or someone whose pose stays too weak to carry, does
        not count as a change on every detection (they are still found at each detection)."""
        if not self.schedule.adaptive:
            return
        if carried_out != carried_in:
            self._interval = 1
        else:
            self._interval = min(max(self._interval * 2, 2), self.schedule.adaptive_max_every)

    def process(self, frame: Frame, read_ms: float | None = None) -> FrameResult:
        """Detect (when due), pose and track one frame. `timings` holds each stage's milliseconds,
        led by `read_ms` (the time it took to get the frame) when the caller measured it."""
        timings: dict[str, float] = {} if read_ms is None else {"read": read_ms}
        t0 = time.perf_counter()
        detected = self._should_detect()
        if detected:
            detections: Detections = self.detector(frame.image)
            carried_in = len(self._carried.boxes)
            people = self._with_missed(_Carried.detected(detections.boxes, detections.scores))
            self._since_detection = 0
            self._first = False
        else:
            people = self._carried
        self._since_detection += 1
        timings["detect"] = (time.perf_counter() - t0) * 1e3 if detected else 0.0

        keypoints, kpt_scores, engine_timings = self.engine.poses(frame.image, people.boxes)
        timings.update(engine_timings)
        result = FrameResult(
            frame, people.boxes.astype(np.float32), people.scores.astype(np.float32), keypoints, kpt_scores
        )
        t1 = time.perf_counter()
        if self.tracker is not None:
            result, rows = self.tracker.track(result, hint_ids=people.track_ids)
            ids = result.track_ids
        else:
            rows, ids = np.arange(len(people.boxes)), people.track_ids
        timings["track"] = (time.perf_counter() - t1) * 1e3
        self._carried = self._carry(people, keypoints, kpt_scores, rows, ids)
        if detected:
            self._adapt_interval(int((self._carried.missed == 0).sum()), carried_in)
        result.timings.update(timings)
        return result

    def _with_missed(self, detected: _Carried) -> _Carried:
        """`detected` plus the carried people this detection missed, while they have been
        missed fewer than `keep_missed` times in a row. Their box score halves with each miss, so
        exports tell them from detected people and a fresh detection wins a duplicate; they do not
        count as found for the adaptive interval, so a miss brings the detector back at once."""
        carried, s = self._carried, self.schedule
        if s.keep_missed == 0 or len(carried.boxes) == 0:
            return detected
        rows = missed_people(
            carried.boxes, carried.keypoints, carried.kpt_scores, detected.boxes, s.kpt_score
        )
        rows = rows[carried.missed[rows] < s.keep_missed]
        kept = carried.take(rows)
        kept.missed = kept.missed + 1
        kept.scores = kept.scores * np.float32(0.5)  # a box no detector confirmed: a fresh one wins
        return detected.plus(kept)

    def _carry(
        self, people: _Carried, keypoints: np.ndarray, scores: np.ndarray, rows: np.ndarray, ids: np.ndarray
    ) -> _Carried:
        """The people to look for in the next frame without a detection: the ones output this
        frame (`rows` of `people`, with track `ids`) whose pose is still confident."""
        s = self.schedule
        rows = np.asarray(rows, dtype=np.int64)
        keep = confident_people(keypoints[rows], scores[rows], s.kpt_score, s.min_kpts)
        rows, ids = rows[keep], np.asarray(ids, dtype=np.int64)[keep]
        boxes = follow_boxes(
            people.boxes[rows],
            keypoints[rows],
            scores[rows],
            people.keypoints[rows],
            people.kpt_scores[rows],
            s.kpt_score,
            people.detected_sizes[rows],
        )
        box_scores = people.scores[rows].astype(np.float32)
        unique = _suppress_duplicates(boxes, box_scores, s.duplicate_iou) if len(boxes) > 1 else slice(None)
        rows = rows[unique]
        return _Carried(
            boxes[unique],
            box_scores[unique],
            ids[unique],
            keypoints[rows],
            scores[rows],
            people.detected_sizes[rows],
            people.missed[rows],
        )

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
