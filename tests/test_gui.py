"""The desktop window, driven for real on the offscreen platform (pytest-qt).

A fake detector (fixed boxes) keeps frames fast and every frame populated; the pose engine is
real (torch backend) on a test checkpoint whose joints sit at each box centre with confidence
about 0.8, so a threshold of 1.0 hides every joint. One subprocess test runs `main.py` end to
end with the real detector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent, QImage

from app.cli import build_parser
from app.detector import Detections
from app.gui import MainWindow, WorkerState
from app.gui.playback import Player
from app.gui.session import SessionLog
from app.gui.settings import SETTINGS_ENV, SettingsStore
from app.pipeline import AppConfig
from app.smoothing import KalmanSmoother, OneEuroSmoother
from app.types import Frame, FrameResult
from sdpose_core.checkpoint import save_checkpoint
from tests.fakes import blob_model

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 60_000  # generous: CI machines share their cores
SIZE = (768, 576)  # vtest.mp4


class FakeDetector:
    """Two people at fixed places in vtest's 768x576 frames."""

    boxes = np.array([[330, 300, 400, 420], [580, 240, 650, 350]], np.float32)

    def __call__(self, image: np.ndarray) -> Detections:
        return Detections(self.boxes.copy(), np.array([0.9, 0.8], np.float32))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A blob checkpoint with its heatmap peak scaled to ~0.8 (joint scores below 1)."""
    model = blob_model()
    final = model.tokens.mlp_head[3]
    with torch.no_grad():
        final.weight.mul_(0.2)
        final.bias.mul_(0.2)
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "blob_dim.pth", model)


@pytest.fixture
def vtest(shared_dir) -> str:
    return str(shared_dir / "data" / "video" / "vtest.mp4")


@pytest.fixture
def store(tmp_path, monkeypatch) -> SettingsStore:
    path = str(tmp_path / "settings.ini")
    monkeypatch.setenv(SETTINGS_ENV, path)  # nothing may touch the user's own settings
    return SettingsStore(path)


@pytest.fixture
def make_window(qtbot, store, weights):
    windows: list[MainWindow] = []

    def make(*argv: str, weights_path: Path | None = weights) -> MainWindow:
        extra = ["--weights", str(weights_path)] if weights_path is not None else []
        args = build_parser().parse_args(["--backend", "torch", "--det-every", "1", *extra, *argv])
        window = MainWindow(args, AppConfig.load(), store, detector_factory=FakeDetector, dialogs=True)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.thread_.isRunning()


def wait_frames(qtbot, window: MainWindow, count: int) -> None:
    target = window.frames_shown + count
    qtbot.waitUntil(lambda: window.frames_shown >= target, timeout=TIMEOUT_MS)


def pause_at(qtbot, window: MainWindow, index: int) -> None:
    window.pause()
    window.seek(index)
    qtbot.waitUntil(
        lambda: window.worker.state is WorkerState.PAUSED and window.frame_index == index, timeout=TIMEOUT_MS
    )


def fps_value(text: str) -> float:
    return float(text.split()[0]) if text[:1].isdigit() else 0.0


def test_plays_a_file_with_skeletons_and_stats(qtbot, make_window, vtest):
    window = make_window("--source", vtest)
    wait_frames(qtbot, window, 5)
    qtbot.waitUntil(lambda: fps_value(window.stats_panel.text("inference_fps")) > 0, timeout=TIMEOUT_MS)
    assert window.stats_panel.text("people") == "2"
    assert window.stats_panel.text("model").startswith("sdpose_t · torch")
    assert window.source_info is not None and window.source_info.frame_count == 795
    result = window.last_result
    assert result is not None and len(result) == 2 and result.track_ids is not None
    drawn = window.view.drawn_image()
    assert drawn is not None and drawn.shape == (SIZE[1], SIZE[0], 3)
    assert not window.errors


def test_threshold_slider_changes_the_overlay(qtbot, make_window, vtest):
    window = make_window("--source", vtest)
    wait_frames(qtbot, window, 1)
    pause_at(qtbot, window, 20)
    window.controls.show_ids.setChecked(False)  # labels would stay; compare joints only
    raw = window.last_result.frame.image

    window.controls.threshold.slider.setValue(0)
    low = window.view.drawn_image().copy()
    window.controls.threshold.slider.setValue(100)
    high = window.view.drawn_image().copy()

    assert window.view.style.kpt_threshold == 1.0
    assert not np.array_equal(low, high)
    assert np.array_equal(high, raw), "above every score nothing is drawn"
    x, y = FakeDetector.boxes[0].reshape(2, 2).mean(axis=0).astype(int)
    patch = np.s_[y - 3 : y + 4, x - 3 : x + 4]  # the joints sit at the box centre
    assert np.abs(low[patch].astype(int) - raw[patch]).max() > 40
    assert window.frame_index == 20, "moving the slider while paused only redraws"


def test_pause_seek_and_single_step(qtbot, make_window, vtest):
    window = make_window("--source", vtest)
    wait_frames(qtbot, window, 1)
    pause_at(qtbot, window, 100)
    assert window.timeline.slider.value() == 100
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.frame_index == 101, timeout=TIMEOUT_MS)
    window.step(-1)
    qtbot.waitUntil(lambda: window.frame_index == 100, timeout=TIMEOUT_MS)
    # the slider seeks too (a click on the groove)
    window.timeline.slider.setSliderPosition(300)
    window.timeline.slider.triggerAction(window.timeline.slider.SliderAction.SliderPageStepAdd)
    qtbot.waitUntil(lambda: window.frame_index > 300, timeout=TIMEOUT_MS)
    assert window.worker.state is WorkerState.PAUSED
    # Space plays again
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.worker.state is WorkerState.PLAYING, timeout=TIMEOUT_MS)


def test_live_controls_apply_without_restart(qtbot, make_window, vtest):
    window = make_window("--source", vtest)
    wait_frames(qtbot, window, 1)
    pipeline = window.worker._pipeline
    assert pipeline is not None and isinstance(pipeline.tracker.smoother, KalmanSmoother)
    c = window.controls
    c.set_smoothing_kind("oneeuro")
    c.strength.set_value(0.9)
    c.det_every.setValue(3)
    c.flip.setChecked(True)
    assert pipeline.engine.refine is not None and not pipeline.engine.refine.enabled, "off by default"
    c.refine.setChecked(True)
    qtbot.waitUntil(
        lambda: (
            isinstance(pipeline.tracker.smoother, OneEuroSmoother)
            and pipeline.tracker.smoother.strength == pytest.approx(0.9)
            and pipeline.schedule.every == 3
            and pipeline.engine.flip_test
            and pipeline.engine.refine.enabled
        ),
        timeout=TIMEOUT_MS,
    )
    assert pipeline.engine.refine.max_area == AppConfig.load().refine.max_area, "configs/app.yaml's rule"
    qtbot.waitUntil(lambda: window.stats_panel.text("model").endswith("· flip · refine"), timeout=TIMEOUT_MS)
    assert window.settings.refine, "remembered for the next launch"
    wait_frames(qtbot, window, 2)  # still running, same tracker (no restart)
    assert window.worker._pipeline is pipeline
    # a variant that does not match the weights: reported, and the running model stays
    c.model.setCurrentText("sdpose_b")
    qtbot.waitUntil(lambda: any("could not switch" in e for e in window.errors), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: c.model.currentText() == "sdpose_t", timeout=TIMEOUT_MS)
    assert window.settings.model == "sdpose_t", "the model that runs is the one remembered"
    wait_frames(qtbot, window, 1)


def test_record_video_and_export_keypoints(qtbot, make_window, vtest, tmp_path):
    window = make_window("--source", vtest)
    window.actions_.max_speed.setChecked(True)
    wait_frames(qtbot, window, 1)
    video = tmp_path / "out" / "session.mp4"
    window.start_recording(str(video))
    qtbot.waitUntil(lambda: window.recording_path == str(video), timeout=TIMEOUT_MS)
    wait_frames(qtbot, window, 8)
    window.stop_recording()
    qtbot.waitUntil(lambda: window.recording_path is None, timeout=TIMEOUT_MS)

    cap = cv2.VideoCapture(str(video))
    frames, size = 0, None
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames += 1
        size = (image.shape[1], image.shape[0])
    cap.release()
    assert frames >= 8 and size == SIZE

    out = tmp_path / "poses.jsonl"
    window.export_keypoints(str(out))
    qtbot.waitUntil(lambda: window.last_export is not None, timeout=TIMEOUT_MS)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == window.last_export[1] >= 9
    assert [r["frame"] for r in lines] == sorted({r["frame"] for r in lines})
    record = lines[-1]
    assert set(record) == {"schema_version", "frame", "time", "people"}
    person = record["people"][0]
    assert set(person) == {"track_id", "bbox", "score", "keypoints"}
    assert len(person["keypoints"]) == 17 and len(person["keypoints"][0]) == 3


def test_missing_weights_is_reported_and_the_video_keeps_playing(qtbot, make_window, vtest, tmp_path):
    window = make_window("--source", vtest, weights_path=tmp_path / "nope.pth")
    qtbot.waitUntil(lambda: any("weights file not found" in e for e in window.errors), timeout=TIMEOUT_MS)
    assert "weights file not found" in window.statusBar().currentMessage()
    assert window.error_box.box is not None and window.error_box.box.isVisible()
    assert window.error_box.box.isModal() is False
    wait_frames(qtbot, window, 3)  # the raw video still plays
    assert window.stats_panel.text("model") == "not loaded"


def test_bad_sources_show_one_line(qtbot, make_window, vtest, tmp_path):
    window = make_window("--source", vtest)
    wait_frames(qtbot, window, 1)
    window.open_source(str(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: any("no such file" in e for e in window.errors), timeout=TIMEOUT_MS)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    window.open_source(str(broken))
    qtbot.waitUntil(lambda: any("broken.mp4" in e for e in window.errors), timeout=TIMEOUT_MS)
    window.actions_.camera_combo.setCurrentIndex(4)
    window.open_selected_camera()
    qtbot.waitUntil(lambda: any("camera" in e for e in window.errors), timeout=TIMEOUT_MS)
    wait_frames(qtbot, window, 2)  # the first video carries on
    assert window.source_info.name == "vtest.mp4"


def test_drop_a_file_to_open_it(qtbot, make_window, vtest, shared_dir):
    window = make_window("--source", "")
    other = shared_dir / "data" / "video" / "sports2d_demo.mp4"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    no_button, no_key = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, no_button, no_key)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.source_info is not None, timeout=TIMEOUT_MS)
    assert window.source_info.name == "sports2d_demo.mp4"


def test_settings_persist_between_runs(qtbot, make_window, store):
    first = make_window("--source", "")
    first.controls.threshold.set_value(0.65)  # as a drag of the slider would
    first.controls.set_smoothing_kind("oneeuro")
    first.controls.det_every.setValue(7)
    first.controls.refine.setChecked(True)
    first.close()
    assert not first.thread_.isRunning()

    second = make_window("--source", "")
    assert second.controls.threshold.value() == pytest.approx(0.65)
    assert second.view.style.kpt_threshold == pytest.approx(0.65)
    assert second.controls.smoothing_kind() == "oneeuro"
    assert second.settings.det_every == 1, "--det-every on the command line wins"
    assert store.load().det_every == 7 and Path(store.path).is_file()
    assert second.controls.refine.isChecked() and second.settings.refine
    second.close()

    # --refine is a one-off like every flag: a window opened without it keeps the stored choice
    store.qsettings.setValue("refine", False)
    third = make_window("--source", "", "--refine")
    assert third.controls.refine.isChecked()
    third.close()
    assert not store.load().refine

    # ... and --no-refine turns a remembered choice off for one run, keeping it stored
    store.qsettings.setValue("refine", True)
    fourth = make_window("--source", "", "--no-refine")
    assert not fourth.controls.refine.isChecked() and not fourth.settings.refine
    fourth.close()
    assert store.load().refine


def test_main_runs_the_window_and_saves_a_screenshot(tmp_path, weights, vtest):
    png = tmp_path / "shot.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        SETTINGS_ENV: str(tmp_path / "settings.ini"),
        "PYTHONPATH": str(ROOT),
    }
    argv = ["--source", vtest, "--weights", str(weights), "--backend", "torch", "--det-every", "5"]
    argv += ["--exit-after-frames", "5", "--screenshot", str(png), "--output", str(tmp_path / "p.jsonl")]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    image = QImage(str(png))
    assert image.width() >= 800 and image.height() >= 500
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(records) >= 5 and records[0]["frame"] == 0, "--output works in the window too"


def test_player_transport_without_qt(vtest):
    """Seek, step and end-of-file logic, free of the window and the model."""
    states: list[WorkerState] = []
    player = Player(states.append)
    player.open(vtest)
    assert player.state is WorkerState.PLAYING and player.seekable
    assert player.frame_due()
    assert player.next_frame().index == 0
    player.pause()
    assert not player.frame_due()
    assert player.seek(500) and player.frame_due()
    assert player.next_frame().index == 500
    assert player.step(-1) is True and player.next_frame().index == 499
    assert player.step(1) is False and player.next_frame().index == 500
    player.seek(10_000)  # clamped to the last frame
    assert player.next_frame().index == 794
    assert player.frame_due() is False and player.next_frame() is None  # paused, then the end
    player.close()
    assert WorkerState.PAUSED in states


def test_session_log_keeps_the_newest_record_per_frame(tmp_path):
    log = SessionLog(tmp_path / "session")
    log.start()
    image = np.zeros((4, 4, 3), np.uint8)
    for index in (0, 1, 2, 1, 2, 3):  # a seek back replays frames 1 and 2
        log.write(FrameResult(Frame(index, index / 10, image)))
    assert log.export(tmp_path / "out.jsonl") == 4
    frames = [json.loads(line)["frame"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert frames == [0, 1, 2, 3]
    log.cleanup()
