"""PosePipeline: detection schedule, boxes carried by poses, new people picked up, tracking."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from app.detector import Detections
from app.pipeline import (
    AppConfig,
    DetectionSchedule,
    PosePipeline,
    confident_people,
    follow_boxes,
    missed_people,
)
from app.tracker import Tracker
from app.types import Frame, Poses

# A standing person in unit-box coordinates (x, y in [0, 1]), COCO order.
TEMPLATE = np.array(
    [
        [0.5, 0.08],
        [0.55, 0.06],
        [0.45, 0.06],
        [0.6, 0.08],
        [0.4, 0.08],
        [0.7, 0.25],
        [0.3, 0.25],
        [0.8, 0.4],
        [0.2, 0.4],
        [0.85, 0.55],
        [0.15, 0.55],
        [0.62, 0.55],
        [0.38, 0.55],
        [0.62, 0.75],
        [0.38, 0.75],
        [0.62, 0.95],
        [0.38, 0.95],
    ],
    np.float32,
)


class ScriptedDetector:
    """Returns people whose boxes move 4 px per frame; `enter_at` adds a second person; on the
    frames in `blind` it finds nobody (the people are still there)."""

    def __init__(self, enter_at: int | None = None, blind: Iterable[int] = ()):
        self.frame = 0
        self.calls: list[int] = []
        self.enter_at = enter_at
        self.blind = set(blind)

    def boxes_at(self, index: int) -> np.ndarray:
        boxes = [[100 + 4 * index, 50, 180 + 4 * index, 250]]
        if self.enter_at is not None and index >= self.enter_at:
            boxes.append([400, 60, 470, 240])
        return np.array(boxes, np.float32)

    def __call__(self, image) -> Detections:
        self.calls.append(self.frame)
        boxes = self.boxes_at(self.frame) if self.frame not in self.blind else np.zeros((0, 4), np.float32)
        return Detections(boxes, np.full(len(boxes), 0.9, np.float32))


class TimedEngine:
    """The call the pipeline makes: `estimate`'s keypoints and scores, with (zero) timings."""

    def poses(self, image, boxes):
        return Poses(*self.estimate(image, boxes), {"crop": 0.0, "pose": 0.0, "decode": 0.0})


class FakeEngine(TimedEngine):
    """A perfect pose model: for each box it returns the template skeleton of the true person
    (from `truth`) whose centre is nearest the box centre, whatever the box's exact size."""

    def __init__(self, truth: ScriptedDetector):
        self.truth = truth
        self.batches: list[int] = []

    def estimate(self, image, boxes):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.batches.append(len(boxes))
        true = self.truth.boxes_at(self.truth.frame)
        nearest = np.argmin(
            np.linalg.norm(
                ((boxes[:, None, :2] + boxes[:, None, 2:]) - (true[None, :, :2] + true[None, :, 2:])), axis=2
            ),
            axis=1,
        )
        true = true[nearest]
        size = true[:, 2:] - true[:, :2]
        keypoints = true[:, None, :2] + TEMPLATE[None] * size[:, None]
        return keypoints.astype(np.float32), np.full((len(boxes), 17), 0.9, np.float32)


def _frames(n: int, fps: float = 30.0):
    image = np.zeros((300, 600, 3), np.uint8)
    return [Frame(i, i / fps, image) for i in range(n)]


def _run(pipeline: PosePipeline, detector: ScriptedDetector, n: int):
    results = []
    for frame in _frames(n):
        detector.frame = frame.index
        results.append(pipeline.process(frame))
    return results


def test_detector_runs_every_nth_frame_and_poses_carry_the_boxes():
    detector = ScriptedDetector()
    engine = FakeEngine(detector)
    pipeline = PosePipeline(detector, engine, Tracker(), DetectionSchedule(every=5))
    results = _run(pipeline, detector, 20)
    assert detector.calls == [0, 5, 10, 15]
    assert all(len(r) == 1 for r in results), "the person is kept between detections"
    # Frame 3 has no detection: its box is the detector's, moved along with the joints. The box
    # fed to frame t is where the person was at t-1: frame 1 gets frame 0's box, and from then
    # on each frame's 4 px move is added, so frame 3 gets the true frame-2 box.
    np.testing.assert_allclose(results[1].boxes[0], [100, 50, 180, 250], atol=1e-3)
    np.testing.assert_allclose(results[3].boxes[0], [108, 50, 188, 250], atol=1e-3)
    assert results[3].timings["detect"] == 0.0 and results[5].timings["detect"] >= 0.0


def test_all_people_go_through_the_engine_in_one_call():
    detector = ScriptedDetector(enter_at=0)
    engine = FakeEngine(detector)
    pipeline = PosePipeline(detector, engine, None, DetectionSchedule(every=3))
    _run(pipeline, detector, 6)
    assert engine.batches == [2] * 6


def test_a_person_entering_is_picked_up_at_the_next_detection():
    detector = ScriptedDetector(enter_at=7)
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), DetectionSchedule(every=5))
    results = _run(pipeline, detector, 12)
    assert [len(r) for r in results] == [1] * 10 + [2] * 2
    ids_before, ids_after = set(results[9].track_ids), set(results[11].track_ids)
    assert ids_before < ids_after and len(ids_after) == 2


def test_track_ids_are_stable_across_detection_and_propagated_frames():
    detector = ScriptedDetector(enter_at=0)
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), DetectionSchedule(every=4))
    results = _run(pipeline, detector, 16)
    first = {tuple(r.track_ids) for r in results}
    assert len(first) == 1, f"ids changed across frames: {first}"


def test_adaptive_schedule_stretches_while_stable_and_reacts_to_change():
    detector = ScriptedDetector(enter_at=20)
    schedule = DetectionSchedule(every=2, adaptive=True, adaptive_max_every=8)
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), schedule)
    _run(pipeline, detector, 40)
    gaps = np.diff(detector.calls)
    assert gaps.max() == 8, f"interval should grow to its maximum: {detector.calls}"
    after_entry = [c for c in detector.calls if c >= 20]
    assert after_entry[1] - after_entry[0] == 1, "a change in people count triggers a detection next frame"


def test_adaptive_schedule_ignores_detections_the_tracker_drops():
    """A half-body duplicate that YOLO keeps returning is dropped by the tracker, never carried;
    it must not count as a change in people, or the detector would run on every frame."""

    class WithDuplicate(ScriptedDetector):
        def __call__(self, image) -> Detections:
            found = super().__call__(image)
            full = found.boxes[0]
            half = [full[0], full[1], full[2], (full[1] + full[3]) / 2]
            return Detections(np.array([full, half], np.float32), np.array([0.9, 0.5], np.float32))

    detector = WithDuplicate()
    schedule = DetectionSchedule(every=2, adaptive=True, adaptive_max_every=8)
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), schedule)
    results = _run(pipeline, detector, 40)
    assert all(len(r) == 1 for r in results)
    assert np.diff(detector.calls).max() == 8, f"the interval should still grow: {detector.calls}"


def test_adaptive_schedule_ignores_a_person_too_unsure_to_carry():
    """Someone whose joints stay below the carrying threshold is found at each detection but
    never carried; that is no change in people, so the interval still stretches."""

    class UnsureAboutTheSecond(FakeEngine):
        def estimate(self, image, boxes):
            keypoints, scores = super().estimate(image, boxes)
            centres_x = (np.asarray(boxes)[:, 0] + np.asarray(boxes)[:, 2]) / 2
            scores[centres_x > 400] = 0.1  # the second person (x 400-470) is never sure
            return keypoints, scores

    detector = ScriptedDetector(enter_at=0)
    schedule = DetectionSchedule(every=2, adaptive=True, adaptive_max_every=8)
    pipeline = PosePipeline(detector, UnsureAboutTheSecond(detector), Tracker(), schedule)
    results = _run(pipeline, detector, 40)
    assert all(len(results[c]) == 2 for c in detector.calls), "both are found at each detection"
    assert np.diff(detector.calls).max() == 8, f"the interval should still grow: {detector.calls}"


def test_a_person_the_detector_misses_keeps_their_skeleton_and_id():
    detector = ScriptedDetector(blind={5, 10})  # two detections in a row miss them (blur, backlight)
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), DetectionSchedule(every=5))
    results = _run(pipeline, detector, 20)
    assert all(len(r) == 1 for r in results), [len(r) for r in results]
    assert {int(r.track_ids[0]) for r in results} == {1}, "one person, one id"
    np.testing.assert_allclose(results[12].boxes, detector.boxes_at(11), atol=1e-3)  # still followed

    dropping = ScriptedDetector(blind={5, 10})
    schedule = DetectionSchedule(every=5, keep_missed=0)  # the old rule: a missed person is gone
    results = _run(PosePipeline(dropping, FakeEngine(dropping), Tracker(), schedule), dropping, 20)
    assert [len(r) for r in results] == [1] * 5 + [0] * 10 + [1] * 5


def test_a_missed_person_brings_the_adaptive_detector_back_at_once():
    detector = ScriptedDetector()
    schedule = DetectionSchedule(every=2, adaptive=True, adaptive_max_every=8)
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), schedule)
    _run(pipeline, detector, 20)
    blind_at = detector.calls[-1]  # the interval has grown to 8 by now
    detector.blind = {blind_at + 8}
    results = []
    for frame in _frames(40)[20:]:
        detector.frame = frame.index
        results.append(pipeline.process(frame))
    missed = detector.calls.index(blind_at + 8)
    assert detector.calls[missed + 1] == blind_at + 9, f"checked again next frame: {detector.calls}"
    assert all(len(r) == 1 for r in results), "kept on their carried box meanwhile"
    bridged = results[blind_at + 8 - 20]
    assert bridged.box_scores[0] == pytest.approx(0.45), "a box no detector confirmed scores half"


def test_a_missed_person_is_kept_for_keep_missed_detections_only():
    detector = ScriptedDetector(blind=range(5, 100))  # a confident pose on nobody must not live on
    schedule = DetectionSchedule(every=5, keep_missed=2)
    results = _run(PosePipeline(detector, FakeEngine(detector), Tracker(), schedule), detector, 25)
    assert [len(r) for r in results] == [1] * 15 + [0] * 10


def test_missed_people_are_the_ones_no_detection_accounts_for():
    person = TEMPLATE * [80, 200] + [100, 50]  # joints inside the box (100, 50, 180, 250)
    carried = np.array([[100, 50, 180, 250], [400, 60, 470, 240], [300, 50, 380, 250]], np.float32)
    keypoints = np.stack([person, person + [300, 10], person + [200, 0]]).astype(np.float32)
    scores = np.full((3, 17), 0.9, np.float32)
    detected = np.array(
        [
            [104, 52, 184, 252],  # the first person, where they were carried
            [280, 0, 395, 600],  # a loose box around the third: overlaps little, holds their joints
        ],
        np.float32,
    )
    assert missed_people(carried, keypoints, scores, detected[:1], 0.3).tolist() == [1, 2]
    assert missed_people(carried, keypoints, scores, detected, 0.3).tolist() == [1]
    assert missed_people(carried, keypoints, scores, detected[:0], 0.3).tolist() == [0, 1, 2]
    # two people overlapping, one box for both (NMS kept one): only one of them is accounted for
    beside = carried[:1] + [20, 0, 20, 0]
    pair = np.concatenate([carried[:1], beside])
    pair_kpts = np.stack([person, person + [20, 0]]).astype(np.float32)
    assert missed_people(pair, pair_kpts, scores[:2], detected[:1], 0.3).tolist() == [1]


def test_reset_forgets_people():
    detector = ScriptedDetector()
    pipeline = PosePipeline(detector, FakeEngine(detector), Tracker(), DetectionSchedule(every=10))
    _run(pipeline, detector, 3)
    pipeline.reset()
    detector.calls.clear()
    _run(pipeline, detector, 1)
    assert detector.calls == [0], "after a reset (seek) the next frame is detected afresh"


def test_run_times_the_read_stage():
    detector = ScriptedDetector()
    pipeline = PosePipeline(detector, FakeEngine(detector), None, DetectionSchedule(every=1))
    results = list(pipeline.run(_frames(3)))
    assert [r.frame.index for r in results] == [0, 1, 2]
    assert {"read", "detect", "pose", "track"} <= set(results[0].timings)


def test_confident_people_skips_unsure_and_collapsed_people():
    kpts = np.stack([TEMPLATE * 100, TEMPLATE * 100, np.full((17, 2), 50.0, np.float32)])
    scores = np.full((3, 17), 0.9, np.float32)
    scores[1, :14] = 0.1  # only 3 confident joints
    assert confident_people(kpts, scores, 0.3, 4).tolist() == [0]


def test_follow_boxes_moves_and_scales_with_the_joints_seen_twice():
    box = np.array([[100, 50, 180, 250], [0, 0, 50, 100], [0, 0, 50, 100]], np.float32)
    before = np.stack([TEMPLATE * [80, 200] + [100, 50], TEMPLATE * 50, np.full((17, 2), np.nan)])
    before = before.astype(np.float32)
    now = before.copy()
    now[0, :5] += [6, -2]  # person 0's face moves; its other joints were unsure a frame ago
    now[0, 5:] += [40, 40]
    # Person 1 doubles in size about the centre of its joints' extent.
    pivot = (TEMPLATE.min(0) + TEMPLATE.max(0)) / 2
    now[1] = (TEMPLATE - pivot) * 100 + pivot * 50
    now[2] = TEMPLATE * 50  # person 2 is new: no earlier joints
    scores = np.full((3, 17), 0.9, np.float32)
    prev_scores = scores.copy()
    prev_scores[0, 5:] = 0.1  # only joints confident in both frames count
    out = follow_boxes(box, now, scores, before, prev_scores, 0.3)
    np.testing.assert_allclose(out[0], [106, 48, 186, 248], atol=1e-4)
    # Growth is limited to 10 % a frame; the box grows about its own (moved) centre.
    shift = np.median(now[1] - before[1], axis=0)
    np.testing.assert_allclose((out[1, :2] + out[1, 2:]) / 2, [25, 50] + shift, atol=1e-4)
    w, h = out[1, 2] - out[1, 0], out[1, 3] - out[1, 1]
    assert w == pytest.approx(55) and h == pytest.approx(110)
    np.testing.assert_array_equal(out[2], box[2])


def test_carried_boxes_stay_within_bounds_of_the_detectors_box_over_a_long_interval():
    """Joints that keep spreading (a pose model drifting apart) grow the box 10 % a frame, but
    never past 1.5x the detector's box, however many frames pass before the next detection;
    likewise for joints that keep collapsing."""
    detected = np.array([[100, 100, 200, 300], [100, 100, 200, 300]], np.float32)
    sizes = detected[:, 2:] - detected[:, :2]
    boxes = detected.copy()
    base = np.stack([TEMPLATE * [100, 200] + 100] * 2).astype(np.float32)
    prev = base.copy()
    scores = np.full((2, 17), 0.9, np.float32)
    for step in range(1, 16):
        now = base.copy()
        for i, factor in enumerate([1.2**step, 0.8**step]):
            centre = base[i].mean(0)
            now[i] = (base[i] - centre) * factor + centre
        boxes = follow_boxes(boxes, now, scores, prev, scores, 0.3, sizes)
        prev = now
        if step == 2:  # early on, only the per-frame step limits the change
            np.testing.assert_allclose(boxes[0, 2:] - boxes[0, :2], sizes[0] * 1.1**2, rtol=1e-5)
    np.testing.assert_allclose(boxes[0, 2:] - boxes[0, :2], sizes[0] * 1.5, rtol=1e-5)
    np.testing.assert_allclose(boxes[1, 2:] - boxes[1, :2], sizes[1] / 1.5, rtol=1e-5)


class CropBoundEngine(TimedEngine):
    """A weak pose model that sees only its crop: it puts the joints of a person squeezed
    onto the body axis (a fifth of the true width) inside whatever box it is given, as the
    bundled weights do with limbs. A box rebuilt from those joints would narrow every frame."""

    def estimate(self, image, boxes):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        squeezed = TEMPLATE.copy()
        squeezed[:, 0] = 0.5 + (squeezed[:, 0] - 0.5) / 5
        size = boxes[:, 2:] - boxes[:, :2]
        keypoints = boxes[:, None, :2] + squeezed[None] * size[:, None]
        return keypoints.astype(np.float32), np.full((len(boxes), 17), 0.5, np.float32)


def test_a_weakly_posed_person_keeps_box_size_and_id_between_detections():
    detector = ScriptedDetector()
    pipeline = PosePipeline(detector, CropBoundEngine(), Tracker(), DetectionSchedule(every=10))
    results = _run(pipeline, detector, 25)
    assert all(len(r) == 1 for r in results), "the person is never dropped"
    assert {int(r.track_ids[0]) for r in results} == {1}, "one person, one id"
    widths = [r.boxes[0, 2] - r.boxes[0, 0] for r in results]
    np.testing.assert_allclose(widths, 80, atol=1e-3)


def test_app_config_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "app.yaml"
    bad.write_text("model: sdpose_t\ndetection:\n  evrey: 3\n")
    with pytest.raises(Exception, match="unknown key.*evrey"):
        AppConfig.load(bad)
