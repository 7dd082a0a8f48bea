"""Writers: JSONL / COCO / OpenPose schemas, crash safety, annotated video, and unwritable outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from app.draw import DrawStyle
from app.exporters import (
    OPENPOSE18_FROM_COCO17,
    CocoWriter,
    JsonlWriter,
    OpenPoseWriter,
    OutputError,
    VideoWriter,
    Writer,
    frame_from_dict,
    frame_to_dict,
    open_writers,
)
from app.types import Frame, FrameResult
from sdpose_core.keypoints import KEYPOINT_NAMES, SKELETON

REPO = Path(__file__).resolve().parents[1]
W, H = 160, 120


def _keypoints(dx: float = 0.0) -> np.ndarray:
    """A plausible standing person (COCO order) inside a 160x120 frame."""
    xy = [
        (80, 20), (83, 17), (77, 17), (87, 19), (73, 19),
        (92, 35), (68, 35), (96, 52), (64, 52), (98, 68), (62, 68),
        (88, 70), (72, 70), (89, 88), (71, 88), (90, 106), (70, 106),
    ]  # fmt: skip
    return np.array(xy, dtype=np.float32) + np.float32([dx, 0])


def _result(index: int, n: int = 2, tracked: bool = True, image: np.ndarray | None = None) -> FrameResult:
    if image is None:
        image = np.full((H, W, 3), 30, np.uint8)
    people = [_keypoints(dx=30.0 * i - 15.0 * (n - 1)) for i in range(n)]
    kpts = np.array(people, dtype=np.float32).reshape(n, 17, 2)
    kpts = kpts + np.float32(0.123)  # forces rounding
    scores = np.tile(np.linspace(0.5, 0.99, 17, dtype=np.float32), (n, 1))
    boxes = np.concatenate([kpts.min(axis=1) - 5, kpts.max(axis=1) + 5], axis=1).astype(np.float32)
    return FrameResult(
        frame=Frame(index, index / 30.0, image, "test"),
        boxes=boxes,
        box_scores=np.linspace(0.9, 0.6, n, dtype=np.float32),
        keypoints=kpts,
        kpt_scores=scores,
        track_ids=np.arange(1, n + 1, dtype=np.int64) if tracked else None,
    )


# ---------------------------------------------------------------- schema / JSONL


def test_frame_to_dict_schema_and_box_conversion():
    r = _result(7)
    r.boxes[0] = [10.0, 20.0, 50.5, 80.25]
    d = frame_to_dict(r)
    assert d["frame"] == 7 and isinstance(d["frame"], int)
    assert d["time"] == round(7 / 30, 3)
    assert [p["track_id"] for p in d["people"]] == [1, 2]
    person = d["people"][0]
    assert set(person) == {"track_id", "bbox", "score", "keypoints"}
    assert person["bbox"] == [10.0, 20.0, 40.5, 60.25]
    assert person["score"] == 0.9
    assert len(person["keypoints"]) == 17 and all(len(t) == 3 for t in person["keypoints"])
    x, y, s = person["keypoints"][0]
    assert (x, y) == (round(float(r.keypoints[0, 0, 0]), 2), round(float(r.keypoints[0, 0, 1]), 2))
    assert s == round(float(r.kpt_scores[0, 0]), 4)
    json.dumps(d, allow_nan=False)


def test_untracked_people_get_minus_one_and_nan_becomes_zero():
    r = _result(0, tracked=False)
    r.keypoints[0, 3] = np.nan
    d = frame_to_dict(r)
    assert [p["track_id"] for p in d["people"]] == [-1, -1]
    assert d["people"][0]["keypoints"][3][:2] == [0.0, 0.0]
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("tracked", [True, False])
def test_frame_from_dict_round_trips(tracked):
    r = _result(4, tracked=tracked)
    back = frame_from_dict(json.loads(json.dumps(frame_to_dict(r))))
    assert back.frame.index == 4 and back.frame.timestamp == pytest.approx(4 / 30, abs=1e-3)
    np.testing.assert_allclose(back.boxes, r.boxes, atol=0.011)
    np.testing.assert_allclose(back.keypoints, r.keypoints, atol=0.006)
    np.testing.assert_allclose(back.kpt_scores, r.kpt_scores, atol=6e-5)
    np.testing.assert_allclose(back.box_scores, r.box_scores, atol=6e-5)
    if tracked:
        np.testing.assert_array_equal(back.track_ids, r.track_ids)
    else:
        assert back.track_ids is None
    assert frame_to_dict(back) == frame_to_dict(r)


def test_empty_frame_round_trips():
    d = frame_to_dict(FrameResult(Frame(3, 0.1, np.zeros((2, 2, 3), np.uint8))))
    assert d["people"] == []
    back = frame_from_dict(d)
    assert len(back) == 0 and back.keypoints.shape == (0, 17, 2) and back.track_ids is None


def test_frame_from_dict_rejects_garbage():
    with pytest.raises(ValueError, match="not a pose frame record"):
        frame_from_dict({"frame": 1})


def test_jsonl_writes_one_line_per_frame(tmp_path):
    path = tmp_path / "poses.jsonl"
    with JsonlWriter(path) as writer:
        assert isinstance(writer, Writer)
        for i in range(3):
            writer.write(_result(i, n=i))  # 0, 1 and 2 people
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert [r["time"] for r in records] == [0.0, 0.033, 0.067]
    assert [len(r["people"]) for r in records] == [0, 1, 2]
    for record in records:
        for person in record["people"]:
            assert isinstance(person["track_id"], int) and isinstance(person["score"], float)
            assert len(person["bbox"]) == 4 and len(person["keypoints"]) == 17
            assert all(len(t) == 3 and all(isinstance(v, float) for v in t) for t in person["keypoints"])
    expected = _result(2, n=2)
    x1, y1, x2, y2 = (float(v) for v in expected.boxes[1])
    assert records[2]["people"][1]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.006)


def test_jsonl_lines_survive_a_process_killed_without_close(tmp_path):
    path = tmp_path / "killed.jsonl"
    code = (
        "import os, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_exporters import _result\n"
        "from app.exporters import JsonlWriter\n"
        f"w = JsonlWriter({str(path)!r})\n"
        "for i in range(3):\n"
        "    w.write(_result(i))\n"
        "os._exit(1)  # no close, no atexit, no buffer flush\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=60)
    assert proc.returncode == 1, proc.stderr.decode()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2]


def test_jsonl_lines_are_visible_before_close(tmp_path):
    path = tmp_path / "open.jsonl"
    writer = JsonlWriter(path)
    writer.write(_result(0))
    writer.write(_result(1))
    assert len(path.read_text().splitlines()) == 2
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError):
        writer.write(_result(2))


# ---------------------------------------------------------------- COCO


def _coco_gt(path: Path, image_id: int, keypoints: np.ndarray) -> Path:
    flat = [v for x, y in keypoints.tolist() for v in (round(x, 2), round(y, 2), 2)]
    x0, y0 = keypoints.min(axis=0).tolist()
    x1, y1 = keypoints.max(axis=0).tolist()
    gt = {
        "images": [{"id": image_id, "width": W, "height": H, "file_name": "frame.jpg"}],
        "annotations": [
            {
                "id": 1,
                "image_id": image_id,
                "category_id": 1,
                "keypoints": flat,
                "num_keypoints": 17,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
            }
        ],
        "categories": [
            {
                "id": 1,
                "name": "person",
                "keypoints": list(KEYPOINT_NAMES),
                "skeleton": [[a + 1, b + 1] for a, b in SKELETON],
            }
        ],
    }
    path.write_text(json.dumps(gt))
    return path


def test_coco_results_evaluate_to_ap_one(tmp_path):
    result = _result(0, n=1)
    gt = COCO(str(_coco_gt(tmp_path / "gt.json", 5, result.keypoints[0])))
    out = tmp_path / "results.json"
    with CocoWriter(out, image_id_offset=5) as writer:
        writer.write(result)
    entries = json.loads(out.read_text())
    assert len(entries) == 1
    entry = entries[0]
    assert entry["image_id"] == 5 and entry["category_id"] == 1 and entry["track_id"] == 1
    assert len(entry["keypoints"]) == 51
    assert entry["keypoints"][2] == round(float(result.kpt_scores[0, 0]), 4)
    dt = gt.loadRes(str(out))
    evaluator = COCOeval(gt, dt, "keypoints")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_coco_file_is_valid_before_close(tmp_path):
    path = tmp_path / "results.json"
    writer = CocoWriter(path, flush_interval=3600)
    assert json.loads(path.read_text()) == [], "valid (empty) from the moment it opens"
    writer.write(_result(0))
    writer.write(_result(1))
    assert json.loads(path.read_text()) == [], "no rewrite before the interval"
    writer.flush()
    assert len(json.loads(path.read_text())) == 4
    writer.write(_result(2))
    writer.close()
    assert [e["image_id"] for e in json.loads(path.read_text())] == [0, 0, 1, 1, 2, 2]
    assert not list(tmp_path.glob(".*.tmp")), "no temp files left behind"


def test_coco_rewrites_after_the_interval_passes(tmp_path):
    path = tmp_path / "results.json"
    now = [100.0]
    writer = CocoWriter(path, flush_interval=2.0, clock=lambda: now[0])
    writer.write(_result(0))
    now[0] += 1.0
    writer.write(_result(1))
    assert json.loads(path.read_text()) == [], "1 s: not yet"
    now[0] += 1.5
    writer.write(_result(2))  # 2.5 s since the last rewrite: all three frames reach the disk now
    assert [e["image_id"] for e in json.loads(path.read_text())] == [0, 0, 1, 1, 2, 2]
    writer.close()


def test_coco_file_survives_a_killed_process(tmp_path):
    path = tmp_path / "killed.json"
    code = (
        "import os, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_exporters import _result\n"
        "from app.exporters import CocoWriter\n"
        f"w = CocoWriter({str(path)!r}, flush_interval=3600)\n"
        "w.write(_result(0))\n"
        "w.write(_result(1))\n"
        "w.flush()\n"
        "w.write(_result(2))  # not flushed yet when the process dies\n"
        "os._exit(1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=60)
    assert proc.returncode == 1, proc.stderr.decode()
    assert [e["image_id"] for e in json.loads(path.read_text())] == [0, 0, 1, 1]
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- OpenPose


def test_openpose_files_layout_and_mapping(tmp_path):
    out = tmp_path / "op"
    with OpenPoseWriter(out, "clip") as writer:
        writer.write(_result(0, n=2))
        writer.write(_result(12, n=0))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["clip_000000000000_keypoints.json", "clip_000000000012_keypoints.json"]
    data = json.loads((out / names[0]).read_text())
    assert data["version"] == 1.3 and len(data["people"]) == 2
    person = data["people"][1]
    assert person["person_id"] == [2]
    for key in (
        "face_keypoints_2d",
        "hand_left_keypoints_2d",
        "hand_right_keypoints_2d",
        "pose_keypoints_3d",
        "face_keypoints_3d",
        "hand_left_keypoints_3d",
        "hand_right_keypoints_3d",
    ):
        assert person[key] == []
    pose = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    assert len(person["pose_keypoints_2d"]) == 54
    coco = np.array(frame_to_dict(_result(0, n=2))["people"][1]["keypoints"])
    np.testing.assert_array_equal(pose[0], coco[0])  # nose
    np.testing.assert_array_equal(pose[2], coco[6])  # right shoulder
    np.testing.assert_array_equal(pose[5], coco[5])  # left shoulder
    np.testing.assert_array_equal(pose[8], coco[12])  # right hip
    np.testing.assert_array_equal(pose[14], coco[2])  # right eye
    np.testing.assert_array_equal(pose[17], coco[3])  # left ear
    np.testing.assert_allclose(pose[1, :2], (coco[5, :2] + coco[6, :2]) / 2, atol=0.006)
    assert pose[1, 2] == min(coco[5, 2], coco[6, 2])
    assert sorted(k for k in OPENPOSE18_FROM_COCO17 if k >= 0) == list(range(17))
    assert json.loads((out / names[1]).read_text())["people"] == []


def test_openpose_neck_is_zero_without_a_shoulder(tmp_path):
    r = _result(0, n=1, tracked=False)
    r.kpt_scores[0, 6] = 0.0
    with OpenPoseWriter(tmp_path, "x") as writer:
        writer.write(r)
    person = json.loads((tmp_path / "x_000000000000_keypoints.json").read_text())["people"][0]
    assert person["pose_keypoints_2d"][3:6] == [0.0, 0.0, 0.0]
    assert person["person_id"] == [-1]


# ---------------------------------------------------------------- video


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_has_every_frame_and_skeleton_colours(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    style = DrawStyle(thickness=4, radius=4)
    with VideoWriter(path, 10.0, (W, H), style) as writer:
        frames = [_result(i, n=1) for i in range(10)]
        for r in frames:
            writer.write(r)
    assert (frames[0].frame.image == 30).all(), "the source frame is not drawn on"
    cap = cv2.VideoCapture(str(path))
    try:
        decoded = []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            decoded.append(image)
    finally:
        cap.release()
    assert len(decoded) == 10
    assert decoded[0].shape == (H, W, 3)
    b, g, r = (decoded[5][..., c].astype(int) for c in range(3))
    assert ((g > 200) & (b < 90) & (r < 90)).sum() > 20, "left-side green is present"
    assert ((r > 200) & (g > 80) & (g < 180) & (b < 90)).sum() > 20, "right-side orange is present"


def test_video_resizes_frames_of_another_size(tmp_path):
    path = tmp_path / "small.mp4"
    with VideoWriter(path, 5.0, (W // 2, H // 2)) as writer:
        for i in range(3):
            writer.write(_result(i))
    cap = cv2.VideoCapture(str(path))
    ok, image = cap.read()
    cap.release()
    assert ok and image.shape == (H // 2, W // 2, 3)


# ---------------------------------------------------------------- unwritable outputs


def _open_jsonl(path: Path):
    return JsonlWriter(path)


def _open_coco(path: Path):
    return CocoWriter(path)


def _open_openpose(path: Path):
    return OpenPoseWriter(path, "clip")


def _open_video(path: Path):
    return VideoWriter(path.with_suffix(".mp4"), 10.0, (W, H))


OPENERS = [_open_jsonl, _open_coco, _open_openpose, _open_video]


def _assert_one_line(err: pytest.ExceptionInfo[OutputError], reason: str) -> None:
    message = str(err.value)
    assert "\n" not in message and message.startswith("cannot write ") and "choose another" in message
    assert reason in message, message


@pytest.mark.parametrize("opener", OPENERS)
def test_output_inside_a_file_is_an_output_error(tmp_path, opener):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as err:
        opener(blocker / "sub" / "x.jsonl")
    _assert_one_line(err, "not a directory")


@pytest.mark.parametrize("opener", [_open_jsonl, _open_coco])
def test_directory_as_a_file_path_is_an_output_error(tmp_path, opener):
    with pytest.raises(OutputError) as err:
        opener(tmp_path)
    _assert_one_line(err, "is a directory")


def test_file_as_openpose_directory_is_an_output_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as err:
        OpenPoseWriter(blocker, "clip")
    _assert_one_line(err, "is a file")


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores mode bits: use /sys then)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return locked
    sysfs = Path("/sys")
    try:
        (sysfs / "sdpose-probe").open("x").close()
    except PermissionError:
        return sysfs
    except OSError:
        pass
    pytest.skip("running as root without a read-only directory to test with")  # pragma: no cover


@pytest.mark.parametrize("opener", OPENERS)
def test_permission_denied_is_an_output_error(tmp_path, opener):
    target = _unwritable_dir(tmp_path)
    try:
        with pytest.raises(OutputError) as err:
            opener(target / "sdpose-out" / "poses.jsonl")
        _assert_one_line(err, "permission denied")
        with pytest.raises(OutputError) as err:
            opener(target / "poses.jsonl")
        _assert_one_line(err, "permission denied")
    finally:
        if target.is_relative_to(tmp_path):
            target.chmod(0o700)


def test_unknown_video_extension_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="unsupported video extension"):
        VideoWriter(tmp_path / "out.webm", 10.0, (W, H))


# ---------------------------------------------------------------- open_writers


def test_open_writers_builds_the_requested_writers(tmp_path):
    writers = open_writers(str(tmp_path / "p.json"), "coco", str(tmp_path / "v.mp4"), 10.0, (W, H), "clip")
    assert [type(w) for w in writers] == [CocoWriter, VideoWriter]
    for w in writers:
        w.write(_result(0))
        w.close()
    assert open_writers(None, "jsonl", None, 10.0, None, "clip") == []
    op = open_writers(str(tmp_path / "op"), "openpose", None, 10.0, None, "clip")
    assert isinstance(op[0], OpenPoseWriter)


def test_open_writers_checks_every_path_before_returning(tmp_path):
    with pytest.raises(OutputError):
        open_writers(str(tmp_path / "p.jsonl"), "jsonl", str(tmp_path), 10.0, (W, H), "clip")
    with pytest.raises(ValueError, match="unknown output format"):
        open_writers("x", "csv", None, 10.0, None, "clip")  # type: ignore[arg-type]


def test_paced_video_fills_dropped_frames_from_timestamps(tmp_path):
    """A live source delivered frames at t = 0, 0.1, 0.5 s: a 10 fps video gets 6 frames, so it
    plays in real time instead of 3 frames squeezed into 0.3 s."""
    import cv2
    import numpy as np

    from app.exporters import VideoWriter
    from app.types import Frame, FrameResult

    path = tmp_path / "live.avi"
    writer = VideoWriter(path, 10.0, (64, 48), paced=True)
    for t in (0.0, 0.1, 0.5):
        writer.write(FrameResult(Frame(0, t, np.zeros((48, 64, 3), np.uint8))))
    writer.close()
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert writer.frames_written == 6 and count == 6
