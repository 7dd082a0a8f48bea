"""The person detector works offline from the bundled model and fails clearly on bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.detector import DetectorError, PersonDetector, default_detector_path
from sdpose_core.geometry import box_iou
from tests.signals import ctrl_c_as_in_a_terminal

REPO = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("export", ["openvino", "onnx"])
def test_exported_detector_finds_the_same_people(detector, app_cache, shared_dir, export):
    """Ultralytics' own export of the bundled model, loaded back with YOLO(): the same people,
    boxes within 3 px of the .pt's (OpenVINO runs bf16 on CPUs that have it)."""
    exported = PersonDetector(imgsz=640, export=export)
    assert exported.source == default_detector_path() and app_cache in exported.path.parents
    for name, index in (("sports2d_demo.mp4", 0), ("sports2d_demo.mp4", 90), ("vtest.mp4", 30)):
        frame = _frame(shared_dir, name, index)
        want, got = detector(frame), exported(frame)
        assert len(got) == len(want) >= 1
        match = box_iou(want.boxes, got.boxes).argmax(axis=1)
        assert sorted(match.tolist()) == list(range(len(got)))  # one to one
        assert np.abs(want.boxes - got.boxes[match]).max() < 3.0
        assert np.abs(want.scores - got.scores[match]).max() < 0.02


def test_the_detector_is_exported_once(app_cache, monkeypatch):
    from ultralytics import YOLO

    before = sorted(p.name for p in (app_cache / "detector").iterdir())
    monkeypatch.setattr(YOLO, "export", lambda *a, **k: pytest.fail("exported again"))
    PersonDetector(imgsz=640, export="openvino")
    assert sorted(p.name for p in (app_cache / "detector").iterdir()) == before


def _python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with this checkout importable; None removes a variable."""
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )


_TWO_DETECTORS_THEN_CTRL_C = """
import gc, os, signal, sys, time
import numpy as np
from app.detector import PersonDetector
image = np.zeros((240, 320, 3), np.uint8)
first = PersonDetector(export="openvino"); first(image)
second = PersonDetector(imgsz=320, export="openvino"); second(image)
del first; gc.collect()
del second; gc.collect()
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    print("stopped cleanly")
"""


def test_ctrl_c_after_openvino_detectors_were_replaced_stops_cleanly(app_cache):
    """Two OpenVINO detectors made and dropped (as the window does when the detection size
    changes), then Ctrl-C: the process stops as Ctrl-C stops it, not with a segmentation fault
    (OpenVINO's CPU plugin puts back a freed signal stack when its models are freed out of order)."""
    run = _python(_TWO_DETECTORS_THEN_CTRL_C, SDPOSE_CACHE=str(app_cache))
    assert run.returncode == 0 and "stopped cleanly" in run.stdout, (run.returncode, run.stderr[-800:])


def test_unknown_detector_export_is_a_config_error():
    from app.pipeline import DetectorConfig
    from sdpose_core.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="export 'tensorrt' is not one of none, onnx, openvino"):
        from_dict(DetectorConfig, {"export": "tensorrt"}, where="app.yaml detector")


_EXPORT_THEN_ASK_TELEMETRY = """
from pathlib import Path
from app.detector import default_detector_path
from app.detector_export import exported_detector
exported_detector(default_detector_path(), "openvino")
import openvino_telemetry
print("telemetry consent:", openvino_telemetry.Telemetry().consent)
"""


def test_the_openvino_export_sends_no_telemetry(tmp_path):
    """OpenVINO's converter would send usage data (by default, with no consent file) from a
    forked process; the export runs with its telemetry declined, so nothing reaches for the
    network."""
    run = _python(
        _EXPORT_THEN_ASK_TELEMETRY, SDPOSE_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path), CI=None
    )
    assert run.returncode == 0, run.stderr[-800:]
    assert "telemetry consent: False" in run.stdout, run.stdout[-400:]
    assert not (tmp_path / "intel").exists(), "OpenVINO telemetry wrote its client id"
