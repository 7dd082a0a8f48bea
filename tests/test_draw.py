"""`app.draw.draw_poses`: side colours, thresholds, id labels, and no-ops on empty results."""

from __future__ import annotations

import numpy as np
import pytest

from app.draw import DrawStyle, draw_poses, id_color
from app.types import Frame, FrameResult
from sdpose_core.keypoints import KEYPOINT_NAMES

LEFT_BGR = (0, 255, 0)
RIGHT_BGR = (0, 128, 255)  # RGB (255, 128, 0)
K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# A person facing the camera in a 200x300 image: their left side is on the image's right.
_OFFSETS = {
    "nose": (0, 0),
    "left_eye": (6, -6),
    "right_eye": (-6, -6),
    "left_ear": (12, -2),
    "right_ear": (-12, -2),
    "left_shoulder": (30, 40),
    "right_shoulder": (-30, 40),
    "left_elbow": (40, 90),
    "right_elbow": (-40, 90),
    "left_wrist": (44, 140),
    "right_wrist": (-44, 140),
    "left_hip": (20, 150),
    "right_hip": (-20, 150),
    "left_knee": (22, 210),
    "right_knee": (-22, 210),
    "left_ankle": (24, 260),
    "right_ankle": (-24, 260),
}


def _person() -> np.ndarray:
    return np.array([_OFFSETS[n] for n in KEYPOINT_NAMES], dtype=np.float32) + np.float32([100, 30])


def _result(image: np.ndarray, scores: np.ndarray | None = None, track_ids=(5,)) -> FrameResult:
    kpts = _person()[None]
    kscores = np.full((1, 17), 0.9, np.float32) if scores is None else scores[None].astype(np.float32)
    box = np.array([[kpts[0, :, 0].min(), kpts[0, :, 1].min(), kpts[0, :, 0].max(), kpts[0, :, 1].max()]])
    return FrameResult(
        frame=Frame(0, 0.0, image),
        boxes=box.astype(np.float32),
        box_scores=np.array([0.9], np.float32),
        keypoints=kpts,
        kpt_scores=kscores,
        track_ids=None if track_ids is None else np.array(track_ids, dtype=np.int64),
    )


def _blank() -> np.ndarray:
    return np.full((300, 200, 3), 40, np.uint8)


def _midpoint(a: str, b: str) -> tuple[int, int]:
    p = _person()
    x, y = (p[K[a]] + p[K[b]]) / 2
    return int(round(y)), int(round(x))


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).any(axis=2)


STYLE = DrawStyle(thickness=5, radius=4)


def test_arms_use_side_colours():
    image = _blank()
    out = draw_poses(image, _result(image), STYLE)
    assert out is image, "draws in place and returns the same array"
    for a, b, colour in (
        ("left_shoulder", "left_elbow", LEFT_BGR),
        ("left_elbow", "left_wrist", LEFT_BGR),
        ("right_shoulder", "right_elbow", RIGHT_BGR),
        ("right_elbow", "right_wrist", RIGHT_BGR),
    ):
        y, x = _midpoint(a, b)
        assert tuple(int(v) for v in image[y, x]) == colour, (a, b)


def test_joint_below_threshold_and_its_links_are_not_drawn():
    scores = np.full(17, 0.9, np.float32)
    scores[K["left_wrist"]] = 0.1
    image = _blank()
    draw_poses(image, _result(image, scores), STYLE)
    wrist = _person()[K["left_wrist"]]
    y, x = int(wrist[1]), int(wrist[0])
    assert (image[y - 2 : y + 3, x - 2 : x + 3] == 40).all(), "the hidden wrist left pixels unchanged"
    y, x = _midpoint("left_elbow", "left_wrist")
    assert (image[y - 1 : y + 2, x - 1 : x + 2] == 40).all(), "the forearm link is absent"
    y, x = _midpoint("left_shoulder", "left_elbow")
    assert tuple(int(v) for v in image[y, x]) == LEFT_BGR, "the upper arm is still drawn"


def test_higher_threshold_draws_fewer_pixels():
    scores = np.linspace(0.2, 0.95, 17).astype(np.float32)
    counts = []
    for threshold in (0.0, 0.5, 0.8, 1.0):
        image = _blank()
        before = image.copy()
        draw_poses(image, _result(image, scores, track_ids=None), DrawStyle(kpt_threshold=threshold))
        counts.append(int(_changed(before, image).sum()))
    assert counts[0] > counts[1] > counts[2] > counts[3] == 0, counts


def test_track_id_label_appears_above_the_head():
    no_id, with_id = _blank(), _blank()
    draw_poses(no_id, _result(no_id), DrawStyle(show_ids=False))
    draw_poses(with_id, _result(with_id), DrawStyle(show_ids=True))
    head_top = int(_person()[:5, 1].min())
    nose_x = int(_person()[K["nose"], 0])
    region = (slice(0, head_top), slice(max(0, nose_x - 40), nose_x + 40))
    diff = _changed(no_id, with_id)
    assert diff[region].sum() > 20, "label pixels near the head"
    colour = np.array(id_color(5), np.uint8)
    assert (with_id[region] == colour).all(axis=-1).sum() > 20, "label uses the id's colour"


def test_id_colours_are_stable_and_distinct():
    assert id_color(3) == id_color(3)
    assert len({id_color(i) for i in range(20)}) == 20


def test_boxes_are_optional():
    plain, boxed = _blank(), _blank()
    draw_poses(plain, _result(plain, track_ids=None), DrawStyle())
    draw_poses(boxed, _result(boxed, track_ids=None), DrawStyle(show_boxes=True))
    assert _changed(plain, boxed).sum() > 100


def test_empty_result_leaves_image_untouched():
    image = _blank()
    before = image.copy()
    out = draw_poses(image, FrameResult(Frame(0, 0.0, image)), DrawStyle(show_boxes=True, show_scores=True))
    assert out is image
    np.testing.assert_array_equal(image, before)


def test_non_finite_keypoints_are_skipped():
    image = _blank()
    result = _result(image)
    result.keypoints[0, K["left_wrist"]] = np.nan
    result.keypoints[0, K["right_wrist"]] = 1e12
    draw_poses(image, result, STYLE)  # must not raise or draw garbage
    y, x = _midpoint("left_shoulder", "left_elbow")
    assert tuple(int(v) for v in image[y, x]) == LEFT_BGR


@pytest.mark.parametrize("size", [(480, 640), (1080, 1920), (120, 160)])
def test_default_sizes_scale_with_image(size):
    radius, thickness = DrawStyle().sizes(*size)
    assert radius >= 2 and thickness >= 1
    assert DrawStyle().sizes(1080, 1920)[1] > DrawStyle().sizes(480, 640)[1]
