"""The person detector works offline from the bundled model and fails clearly on bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.detector import DetectorError, PersonDetector, default_detector_path


@pytest.fixture(scope="module")
def detector():
    return PersonDetector(imgsz=640)


def _frame(shared_dir, name: str, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(shared_dir / "data" / "video" / name))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_bundled_model_is_found_offline():
    path = default_detector_path()
    assert path.name == "yolo11n-pose.pt" and path.stat().st_size > 5_000_000


def test_finds_the_person_in_a_real_frame(detector, shared_dir):
    frame = _frame(shared_dir, "sports2d_demo.mp4", 0)
    found = detector(frame)
    assert len(found) >= 1
    assert found.boxes.dtype == np.float32 and found.boxes.shape[1] == 4
    # The walker in frame 0 stands around x 590-715, y 75-455 (seen in the teacher labels).
    best = found.boxes[np.argmax(found.scores)]
    assert 560 < best[0] < 620 and 690 < best[2] < 740 and best[3] - best[1] > 300


def test_empty_image_has_no_people(detector):
    found = detector(np.full((480, 640, 3), 127, np.uint8))
    assert len(found) == 0 and found.boxes.shape == (0, 4)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        PersonDetector(tmp_path / "yolo11s.pt")
    junk = tmp_path / "broken.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load detector") as err:
        PersonDetector(junk)
    assert "\n" not in str(err.value)
