"""Multi-person tracker: stable integer ids by Hungarian matching on box IoU + keypoint OKS.

Design (after comparing the trackers of Ultralytics, rtmlib and others):

* One cost per (track, detection): a weighted mix of (1 - IoU) and (1 - OKS), both taken against
  the track's *predicted* box and keypoints (last observation moved by its box velocity), so two
  people crossing are told apart by where each was heading and by their poses.
* A pair may match when *either* cue clears its gate (IoU >= `min_iou` or OKS >= `min_oks`); the
  mix only ranks the feasible pairs. Gating on the mix alone failed on real data: a person
  entering the frame has a few junk keypoints whose OKS is 0 between frames, which sank pairs
  with a plain box overlap of 0.3.
* `scipy.optimize.linear_sum_assignment`, not `lap.lapjv`: it takes rectangular matrices as they
  are, has no `extend_cost`/return-format quirks between lap versions, and scipy is already a
  dependency. Infeasible pairs are priced far above any real cost before solving, so the solver
  prefers feasible pairs, and any that remain in the answer are dropped. Matrices here are
  a few tens of rows, so speed does not matter.
* Tracks the first assignment leaves unmatched get a second one against their *last observed*
  box and keypoints, unmoved (OC-SORT's observation-centric recovery): a box clipped at the
  frame edge, or carried through a detector's gap, gives a velocity that is not the person's,
  and a few frames of it move the prediction off them. On the demo clip the walker leaving at
  the left edge keeps her id this way where the moved prediction had drifted three quarters
  out of the frame; on vtest and one-by-one every frame's ids stayed the same
  (`rematch_last_seen`).
* Unmatched tracks coast (not output) for `max_age_s` seconds, then are deleted; ids come from a
  counter that only grows, so an id is never reused within a run (rtmlib#74).
* An unmatched detection starts a track unless its box score is below `new_track_min_score` or
  it mostly lies inside (or contains) a detection already kept this frame: YOLO-pose at NMS IoU
  0.6 often leaves a half-body duplicate of a person who is entering or leaving. Such detections
  are dropped from the output rather than given a throw-away id.
* A person whose box the caller carried over from a track's last output (`hint_ids`, see
  `app.pipeline`) stays with that track without matching: between detections the box is made
  from the track itself, so re-matching it could only lose the id (weak poses give boxes that
  overlap their own track too little).
* Association uses raw keypoints; smoothing is applied to the output only, so ids never depend
  on the chosen smoother.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.smoothing import KeypointSmoother, SmoothingConfig, SmoothingKind, make_smoother, switch_smoother
from app.types import FrameResult
from sdpose_core.config import CONFIG_DIR, from_dict, load_yaml
from sdpose_core.geometry import box_areas, box_intersections, box_iou
from sdpose_core.keypoints import oks_terms

__all__ = ["TrackerConfig", "Track", "Tracked", "Tracker", "increasing_time", "oks_matrix"]

log = logging.getLogger(__name__)

_INFEASIBLE = 1e6


@dataclass
class TrackerConfig:
    """Tracker settings; keys map 1:1 onto `configs/tracker.yaml`.

    Attributes:
        iou_weight, oks_weight: weights of (1 - IoU) and (1 - OKS) in the matching cost.
        min_iou, min_oks: a (track, detection) pair may match only if IoU >= min_iou or
            OKS >= min_oks (both against the track's prediction).
        max_age_s: a track unmatched this long (seconds) is deleted; a later detection gets a new id.
        min_kpt_score: joints below this score are ignored by OKS.
        new_track_min_score: unmatched detections with a lower box score start no track.
        duplicate_overlap: an unmatched detection whose intersection with an already kept
            detection covers this fraction of the smaller box is a duplicate (>1 disables).
        velocity_smoothing: EMA weight of the newest box velocity (1 = last step only).
        rematch_last_seen: tracks left unmatched get a second assignment against their last
            observed box and keypoints (not moved by the velocity), same gates.
        fallback_dt: seconds assumed between frames whose timestamps do not increase.
        smoothing: keypoint smoother settings (`kind`, `strength`, filter parameters).
    """

    iou_weight: float = 0.5
    oks_weight: float = 0.5
    min_iou: float = 0.2
    min_oks: float = 0.5
    max_age_s: float = 1.0
    min_kpt_score: float = 0.3
    new_track_min_score: float = 0.15
    duplicate_overlap: float = 0.8
    velocity_smoothing: float = 0.5
    rematch_last_seen: bool = True
    fallback_dt: float = 0.033
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)

    def __post_init__(self) -> None:
        if self.iou_weight < 0 or self.oks_weight < 0 or self.iou_weight + self.oks_weight <= 0:
            raise ValueError("iou_weight and oks_weight must be >= 0 and not both 0")
        if not (0 < self.min_iou <= 1 and 0 < self.min_oks <= 1):
            raise ValueError(f"min_iou and min_oks must be in (0, 1], got {self.min_iou}, {self.min_oks}")
        if self.max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0, got {self.max_age_s}")
        if not 0 < self.velocity_smoothing <= 1:
            raise ValueError(f"velocity_smoothing must be in (0, 1], got {self.velocity_smoothing}")
        if self.fallback_dt <= 0:
            raise ValueError(f"fallback_dt must be > 0, got {self.fallback_dt}")

    @classmethod
    def load(cls, path: str | Path | None = None) -> TrackerConfig:
        """Read `configs/tracker.yaml` (or `path`); unknown keys raise `ConfigError`."""
        path = Path(path) if path is not None else CONFIG_DIR / "tracker.yaml"
        return from_dict(cls, load_yaml(path), where=str(path))


@dataclass
class Track:
    """One person's track, for inspection. Boxes are x1 y1 x2 y2 pixels.

    Attributes:
        track_id: the stable id.
        box, keypoints, kpt_scores: the last matched raw detection.
        velocity: box-centre velocity (px/s), an EMA over matched steps.
        first_seen, last_seen: timestamps (s) of the first and last match.
        hits: matched frames so far.
    """

    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    kpt_scores: np.ndarray
    velocity: np.ndarray
    first_seen: float
    last_seen: float
    hits: int = 1

    def coasting(self, t: float) -> bool:
        """True when the track was not matched at time `t`."""
        return self.last_seen < t

    def predict(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Box (4,) and keypoints (17, 2) moved by the box velocity to time `t`."""
        shift = self.velocity * max(t - self.last_seen, 0.0)
        return self.box + np.tile(shift, 2), self.keypoints + shift


def increasing_time(timestamp: float, last: float | None, fallback_dt: float) -> float:
    """A frame's time in seconds as the tracker and its smoother take it: `timestamp`, or `last`
    plus `fallback_dt` where it does not come after `last` (a stuck or rewound clock), so every
    step is forward."""
    t = float(timestamp)
    return last + fallback_dt if last is not None and t <= last else t


def oks_matrix(
    kpts_a: np.ndarray,
    scores_a: np.ndarray,
    areas_a: np.ndarray,
    kpts_b: np.ndarray,
    scores_b: np.ndarray,
    min_score: float,
) -> np.ndarray:
    """OKS (len(a), len(b)) over joints confident in both; NaN where no joint is shared.

    `areas_a` (box areas of `a`) set the scale, as the ground-truth area does in COCOeval.
    """
    d2 = ((kpts_a[:, None] - kpts_b[None]) ** 2).sum(-1)  # (A, B, 17)
    terms = oks_terms(d2, np.maximum(areas_a, 1.0)[:, None])
    shared = (scores_a[:, None] >= min_score) & (scores_b[None] >= min_score)
    n = shared.sum(-1)
    total = (terms * shared).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


class Tracked(NamedTuple):
    """What `Tracker.track` returns: the tracked result, and for each of its people the row they
    had in the input (`rows`, int64), as people may be dropped."""

    result: FrameResult
    rows: np.ndarray


class Tracker:
    """Stateful tracker: `update(FrameResult) -> FrameResult` with `track_ids` and smoothed keypoints."""

    @classmethod
    def from_settings(cls, smoothing: SmoothingKind | None = None, strength: float | None = None) -> Tracker:
        """The tracker of `configs/tracker.yaml`, with another smoothing kind or strength where given
        (`--smoothing`, the window's controls)."""
        config = TrackerConfig.load()
        changes = {k: v for k, v in (("kind", smoothing), ("strength", strength)) if v is not None}
        if changes:
            config = dataclasses.replace(config, smoothing=dataclasses.replace(config.smoothing, **changes))
        return cls(config)

    def __init__(self, config: TrackerConfig | None = None, smoothing: SmoothingKind | None = None) -> None:
        self.config = config or TrackerConfig()
        self.smoother: KeypointSmoother = make_smoother(smoothing, self.config.smoothing)
        self._tracks: list[Track] = []
        self._next_id = 1
        self._last_t: float | None = None

    @property
    def tracks(self) -> list[Track]:
        """Live tracks (matched or coasting), oldest first."""
        return list(self._tracks)

    def reset(self) -> None:
        """Forget all tracks. Ids keep counting up, so they stay unique within the run."""
        self._tracks.clear()
        self.smoother.reset()
        self._last_t = None

    def set_smoothing(self, kind: SmoothingKind, strength: float) -> None:
        """Change the keypoint filter live. A new kind starts a fresh filter (tracks and ids are
        kept); the same kind is only retuned to `strength`, keeping its state."""
        self.smoother = switch_smoother(self.smoother, kind, strength, self.config.smoothing)

    def update(self, result: FrameResult, hint_ids: np.ndarray | None = None) -> FrameResult:
        """Assign ids to `result`'s people and smooth their keypoints; returns a new FrameResult.

        `hint_ids` (N,), optional: the track id each person's box was carried from, -1 for a
        fresh detection. Such a person keeps that id while the track lives.
        """
        return self.track(result, hint_ids).result

    def track(self, result: FrameResult, hint_ids: np.ndarray | None = None) -> Tracked:
        """`update`, plus each output person's row in `result` (`Tracked.rows`): people may be
        dropped as duplicates or for a low box score."""
        boxes = np.asarray(result.boxes, dtype=np.float64).reshape(-1, 4)
        if hint_ids is not None and np.size(hint_ids) != len(boxes):  # before any state changes
            raise ValueError(f"hint_ids has {np.size(hint_ids)} entries for {len(boxes)} people")
        t = self._frame_time(result.frame.timestamp)
        self._expire(t)
        kpts = np.asarray(result.keypoints, dtype=np.float64).reshape(-1, 17, 2)
        kscores = np.asarray(result.kpt_scores, dtype=np.float64).reshape(-1, 17)
        bscores = np.asarray(result.box_scores, dtype=np.float64).reshape(-1)

        pairs = self._match_hinted(hint_ids)
        # First at each track's moved prediction; then, for what is left, where it was last seen.
        for moved in (True, False) if self.config.rematch_last_seen else (True,):
            free_t = sorted(set(range(len(self._tracks))) - {ti for ti, _ in pairs})
            free_d = np.array(sorted(set(range(len(boxes))) - {di for _, di in pairs}), dtype=np.int64)
            found = self._match(
                t, [self._tracks[i] for i in free_t], boxes[free_d], kpts[free_d], kscores[free_d], moved
            )
            pairs += [(free_t[ti], int(free_d[di])) for ti, di in found]
        keep: list[int] = []
        ids: list[int] = []
        for ti, di in pairs:
            self._update_track(self._tracks[ti], t, boxes[di], kpts[di], kscores[di])
            keep.append(di)
            ids.append(self._tracks[ti].track_id)
        matched = {di for _, di in pairs}
        for di in sorted(set(range(len(boxes))) - matched, key=lambda i: -bscores[i]):
            if bscores[di] < self.config.new_track_min_score or self._is_duplicate(boxes, di, keep):
                log.debug("frame %d: detection %d dropped (low score or duplicate)", result.frame.index, di)
                continue
            track = self._new_track(t, boxes[di], kpts[di], kscores[di])
            keep.append(di)
            ids.append(track.track_id)

        order = np.argsort(keep, kind="stable")
        keep_arr = np.asarray(keep, dtype=np.int64)[order]
        ids_arr = np.asarray(ids, dtype=np.int64)[order]
        out_kpts = np.empty((len(keep_arr), 17, 2), dtype=np.float32)
        for row, (di, tid) in enumerate(zip(keep_arr, ids_arr, strict=True)):
            out_kpts[row] = self.smoother.update(int(tid), t, kpts[di], kscores[di])
        tracked = dataclasses.replace(
            result,
            boxes=np.asarray(result.boxes, dtype=np.float32).reshape(-1, 4)[keep_arr],
            box_scores=np.asarray(result.box_scores, dtype=np.float32).reshape(-1)[keep_arr],
            keypoints=out_kpts,
            kpt_scores=np.asarray(result.kpt_scores, dtype=np.float32).reshape(-1, 17)[keep_arr],
            track_ids=ids_arr,
            timings=dict(result.timings),
        )
        return Tracked(tracked, keep_arr)

    # -- steps ---------------------------------------------------------------------------------

    def _frame_time(self, timestamp: float) -> float:
        """Frame time in seconds, forced to increase so dt > 0 even with a stuck camera clock."""
        self._last_t = increasing_time(timestamp, self._last_t, self.config.fallback_dt)
        return self._last_t

    def _expire(self, t: float) -> None:
        alive = []
        for track in self._tracks:
            if t - track.last_seen > self.config.max_age_s:
                log.debug("track %d deleted after %.2f s unseen", track.track_id, t - track.last_seen)
                self.smoother.drop(track.track_id)
            else:
                alive.append(track)
        self._tracks = alive

    def _match_hinted(self, hint_ids: np.ndarray | None) -> list[tuple[int, int]]:
        """(track index, detection index) for detections carried from a live track."""
        if hint_ids is None:
            return []
        hint_ids = np.asarray(hint_ids, dtype=np.int64).reshape(-1)
        index = {tr.track_id: ti for ti, tr in enumerate(self._tracks)}
        pairs: list[tuple[int, int]] = []
        for di, tid in enumerate(hint_ids):
            ti = index.pop(int(tid), None)  # pop: one detection per track
            if ti is not None:
                pairs.append((ti, di))
        return pairs

    def _match(
        self,
        t: float,
        tracks: list[Track],
        boxes: np.ndarray,
        kpts: np.ndarray,
        kscores: np.ndarray,
        moved: bool = True,
    ) -> list[tuple[int, int]]:
        """Hungarian assignment of `tracks` to detections, each track at its prediction for `t`
        (`moved`) or where it was last seen; returns (index in tracks, detection index)."""
        if not tracks or len(boxes) == 0:
            return []
        cfg = self.config
        preds = [tr.predict(t if moved else tr.last_seen) for tr in tracks]
        pboxes = np.stack([p[0] for p in preds])
        pkpts = np.stack([p[1] for p in preds])
        pscores = np.stack([tr.kpt_scores for tr in tracks])
        iou = box_iou(pboxes, boxes)
        oks = oks_matrix(pkpts, pscores, box_areas(pboxes), kpts, kscores, cfg.min_kpt_score)
        w = cfg.iou_weight + cfg.oks_weight
        mixed = (cfg.iou_weight * (1.0 - iou) + cfg.oks_weight * (1.0 - np.nan_to_num(oks))) / w
        cost = np.where(np.isnan(oks), 1.0 - iou, mixed)  # no shared confident joint: box only
        feasible = (iou >= cfg.min_iou) | (np.nan_to_num(oks) >= cfg.min_oks)
        rows, cols = linear_sum_assignment(np.where(feasible, cost, _INFEASIBLE))
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if feasible[r, c]]

    def _is_duplicate(self, boxes: np.ndarray, di: int, keep: list[int]) -> bool:
        if not keep or self.config.duplicate_overlap > 1:
            return False
        inter = box_intersections(boxes[di : di + 1], boxes[keep])[0]
        smaller = np.minimum(box_areas(boxes[di : di + 1]), box_areas(boxes[keep]))
        return bool((inter >= self.config.duplicate_overlap * np.maximum(smaller, 1e-9)).any())

    def _update_track(
        self, track: Track, t: float, box: np.ndarray, kpts: np.ndarray, scores: np.ndarray
    ) -> None:
        dt = t - track.last_seen
        if dt > 0:
            step = (_centre(box) - _centre(track.box)) / dt
            a = self.config.velocity_smoothing
            track.velocity = step if track.hits == 1 else a * step + (1.0 - a) * track.velocity
        track.box = box.copy()
        track.keypoints = kpts.copy()
        track.kpt_scores = scores.copy()
        track.last_seen = t
        track.hits += 1

    def _new_track(self, t: float, box: np.ndarray, kpts: np.ndarray, scores: np.ndarray) -> Track:
        track = Track(
            track_id=self._next_id,
            box=box.copy(),
            keypoints=kpts.copy(),
            kpt_scores=scores.copy(),
            velocity=np.zeros(2),
            first_seen=t,
            last_seen=t,
        )
        self._next_id += 1
        self._tracks.append(track)
        log.debug("track %d started at t=%.3f", track.track_id, t)
        return track


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) * 0.5, (box[1] + box[3]) * 0.5])
