"""PoseEngine: one batch per frame, correct back-projection, torch == ONNX, clear errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.engine import EngineError, PoseEngine
from sdpose_core.checkpoint import save_checkpoint
from sdpose_core.models import build_model
from tests.fakes import save_blob_checkpoint


@pytest.fixture(scope="module")
def blob_weights(tmp_path_factory):
    return save_blob_checkpoint(tmp_path_factory.mktemp("w") / "blob_t.pth")


@pytest.fixture(scope="module")
def vtest_frame_and_boxes(shared_dir):
    """A real frame of vtest.mp4 and the teacher's person boxes on it (xyxy)."""
    labels = json.loads((shared_dir / "data/pseudo_labels/vtest.yolo11n-pose.json").read_text())
    detections = labels["detections"] if isinstance(labels, dict) else labels
    frame_index = 40
    boxes = [d["bbox"] for d in detections if d["frame"] == frame_index]
    cap = cv2.VideoCapture(str(shared_dir / "data/video/vtest.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
    ok, frame = cap.read()
    cap.release()
    assert ok and len(boxes) >= 3
    xywh = np.array(boxes, np.float32)
    return frame, np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def test_keypoints_land_where_the_heatmap_peak_maps(blob_weights, vtest_frame_and_boxes):
    frame, boxes = vtest_frame_and_boxes
    engine = PoseEngine("sdpose_t", weights=blob_weights)
    keypoints, scores = engine.estimate(frame, boxes)
    assert keypoints.shape == (len(boxes), 17, 2) and scores.shape == (len(boxes), 17)
    assert keypoints.dtype == np.float32 and scores.dtype == np.float32
    # The peak sits at the heatmap centre, which maps to the box centre.
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert np.abs(keypoints - centres[:, None, :]).max() < 1.0
    assert (scores > 3.5).all()


def test_all_crops_go_through_one_batch(blob_weights, vtest_frame_and_boxes):
    frame, boxes = vtest_frame_and_boxes
    for flip_test, factor in ((False, 1), (True, 2)):
        engine = PoseEngine("sdpose_t", weights=blob_weights, flip_test=flip_test)
        calls: list[tuple[int, ...]] = []

        def spy(batch, inner=engine.backend, calls=calls):
            calls.append(batch.shape)
            return inner(batch)

        engine.backend = spy
        engine.estimate(frame, boxes)
        assert calls == [(factor * len(boxes), 3, 256, 192)]


def test_no_boxes_gives_empty_arrays(blob_weights, vtest_frame_and_boxes):
    frame, _ = vtest_frame_and_boxes
    keypoints, scores = PoseEngine("sdpose_t", weights=blob_weights).estimate(frame, np.zeros((0, 4)))
    assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)


def test_torch_and_onnx_agree_on_a_real_frame(blob_weights, vtest_frame_and_boxes, tmp_path, monkeypatch):
    monkeypatch.setenv("SDPOSE_CACHE", str(tmp_path))
    frame, boxes = vtest_frame_and_boxes
    for flip_test in (False, True):
        torch_engine = PoseEngine("sdpose_t", blob_weights, "torch", flip_test=flip_test)
        onnx_engine = PoseEngine("sdpose_t", blob_weights, "onnx", flip_test=flip_test)
        k_torch, s_torch = torch_engine.estimate(frame, boxes)
        k_onnx, s_onnx = onnx_engine.estimate(frame, boxes)
        assert np.abs(k_torch - k_onnx).max() < 0.5
        assert np.abs(s_torch - s_onnx).max() < 1e-3
    assert len(list(tmp_path.glob("*.onnx"))) == 1, "the export is cached and reused"


def test_flip_test_is_the_mirrored_average(blob_weights, vtest_frame_and_boxes):
    """Flip test changes the result but stays close for a symmetric peak (it is an average)."""
    frame, boxes = vtest_frame_and_boxes
    plain, _ = PoseEngine("sdpose_t", blob_weights).estimate(frame, boxes)
    flipped, _ = PoseEngine("sdpose_t", blob_weights, flip_test=True).estimate(frame, boxes)
    assert not np.array_equal(plain, flipped)
    # The mirrored map is shifted one heatmap column: the average moves by at most half of it.
    widths = (boxes[:, 2] - boxes[:, 0]).clip(min=(boxes[:, 3] - boxes[:, 1]) * 0.75) * 1.25
    assert (np.abs(plain - flipped)[..., 0] <= (widths[:, None] / 48) * 0.75).all()


def test_missing_and_wrong_weights_are_one_line_errors(tmp_path):
    with pytest.raises(EngineError, match="no bundled weights for sdpose_s_v1: pass --weights"):
        PoseEngine("sdpose_s_v1")
    with pytest.raises(EngineError, match="not found"):
        PoseEngine("sdpose_t", weights=tmp_path / "nope.pth")
    b_path = save_checkpoint(tmp_path / "b.pth", build_model("sdpose_b"))
    with pytest.raises(EngineError, match="sdpose_b checkpoint") as err:
        PoseEngine("sdpose_t", weights=b_path)
    assert "\n" not in str(err.value)
    with pytest.raises(EngineError, match="unknown backend"):
        PoseEngine("sdpose_t", weights=b_path, backend="tensorrt")


def test_bf16_precision_stays_close_to_fp32(blob_weights, vtest_frame_and_boxes):
    frame, boxes = vtest_frame_and_boxes
    k32, s32 = PoseEngine("sdpose_t", blob_weights, "torch").estimate(frame, boxes)
    k16, s16 = PoseEngine("sdpose_t", blob_weights, "torch", precision="bf16").estimate(frame, boxes)
    assert np.abs(k32 - k16).max() < 1.0
    assert np.abs(s32 - s16).max() < 0.1
    with pytest.raises(EngineError, match="torch backend"):
        PoseEngine("sdpose_t", blob_weights, "onnx", precision="bf16")


def test_the_backend_that_runs_is_reported(blob_weights, tmp_path):
    """An exported .onnx file runs on ONNX Runtime even if torch was asked for; the GUI label says so."""
    from app.builders import EngineSpec
    from sdpose_core.export import export_onnx

    onnx_path = export_onnx(build_model("sdpose_t"), tmp_path / "t.onnx")
    engine = PoseEngine("sdpose_t", onnx_path, backend="torch")
    assert engine.backend_name == "onnx"
    spec = EngineSpec("sdpose_t", "torch", "cpu", str(onnx_path), precision="bf16")
    assert spec.label(engine) == "sdpose_t · onnx · cpu"
    torch_engine = PoseEngine("sdpose_t", blob_weights, "torch", precision="bf16")
    assert spec.label(torch_engine) == "sdpose_t · torch · bf16 · cpu"


def test_onnx_threads_wait_without_spinning_unless_asked(blob_weights, tmp_path, monkeypatch):
    """Spinning ONNX Runtime threads would take the cores the decoder and writer threads need
    (`onnx_spinning: false` in configs/app.yaml); the setting reaches the session."""
    from app.pipeline import AppConfig

    monkeypatch.setenv("SDPOSE_CACHE", str(tmp_path))
    assert AppConfig.load().onnx_spinning is False
    key = "session.intra_op.allow_spinning"
    for spinning, expected in ((False, "0"), (True, "1")):
        engine = PoseEngine("sdpose_t", blob_weights, "onnx", spinning=spinning)
        assert engine.backend.session.get_session_options().get_session_config_entry(key) == expected
