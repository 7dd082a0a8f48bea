"""The window's end of the pose worker: start `PoseWorker` on its `QThread`, show what it sends.

Split from `app.gui.main_window` so the window reads as what a person does (menus, controls,
dialogs) and this module as what the worker answers: each signal's slot updates the window's
widgets and state. `WorkerLink` is a `QObject` made on the UI thread, so its slots run there
(queued), never on the worker's thread.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, QThread, QTimer, pyqtSlot

from app.builders import DetectorFactory, EngineSpec
from app.gui.messages import ModelInfo, SourceInfo, WorkerStats
from app.gui.worker import PoseWorker, WorkerState
from app.types import FrameResult

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

__all__ = ["WorkerLink", "STATE_TEXT"]

STATE_TEXT = {
    WorkerState.IDLE: "No source",
    WorkerState.OPENING: "Opening…",
    WorkerState.PLAYING: "▶ Playing",
    WorkerState.PAUSED: "❚❚ Paused",
    WorkerState.ENDED: "■ Ended",
    WorkerState.STOPPED: "Stopped",
}


class WorkerLink(QObject):
    """Starts the window's worker (`start`) and shows its signals on the window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window

    def start(self, detector_factory: DetectorFactory) -> tuple[PoseWorker, QThread]:
        """Make the worker from the window's settings, connect it and start its thread."""
        w = self.window
        s = w.settings
        spec = EngineSpec(
            s.model,
            s.backend,
            w.cfg.device,
            s.weights or None,
            w.cfg.threads or None,
            w.cfg.precision,
            w.cfg.int8,
            w.cfg.onnx_spinning,
        )
        schedule = replace(w.cfg.detection, every=s.det_every, adaptive=s.det_auto)
        # remembered weights that no longer load give way to the bundled ones (a flag's do not)
        remembered = spec.weights is not None or spec.model != w.cfg.model
        flagged = "weights" in w.one_off or "model" in w.one_off
        fallback = replace(spec, model=w.cfg.model, weights=None) if remembered and not flagged else None
        worker = PoseWorker(
            spec,
            detector_factory,
            schedule,
            fallback=fallback,
            refine=replace(w.cfg.refine, enabled=s.refine),
            flip_test=s.flip_test,
            smoothing=s.smoothing,
            strength=s.strength,
            style=w.draw_style(),
            max_speed=s.max_speed,
        )
        thread = QThread(w)
        thread.setObjectName("pose-worker")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        worker.result_ready.connect(self._on_result)
        worker.stats.connect(self._on_stats)
        worker.source_opened.connect(self._on_source_opened)
        worker.state_changed.connect(self._on_state)
        worker.error.connect(w.show_error)
        worker.message.connect(w.show_message)
        worker.model_ready.connect(self._on_model)
        worker.recording.connect(self._on_recording)
        worker.exported.connect(self._on_exported)
        thread.start()
        return worker, thread

    @pyqtSlot(object)
    def _on_result(self, result: FrameResult) -> None:
        w = self.window
        w.worker.ack()
        w.last_result = result
        w.view.set_result(result)
        live = w.source_info is not None and w.source_info.is_live
        w.timeline.set_position(result.frame.index, result.frame.timestamp, live)
        w.frames_shown += 1
        limit = w.args.exit_after_frames
        if limit and w.frames_shown >= limit:
            QTimer.singleShot(0, w.finish)

    @pyqtSlot(object)
    def _on_stats(self, stats: WorkerStats) -> None:
        w = self.window
        w.stats_panel.update_stats(replace(stats, display_fps=w.view.display_fps))

    @pyqtSlot(object)
    def _on_source_opened(self, info: SourceInfo) -> None:
        w = self.window
        w.source_info, w.last_result = info, None
        w.timeline.set_source(info)
        w.view.clear("Loading…")
        w.setWindowTitle(f"{info.name} — SDPose")
        w.settings.last_source = str(Path(info.spec).resolve()) if not info.is_live else info.spec
        w.actions_.reopen.setEnabled(True)
        fps = f"{info.fps:.3g} fps" if info.fps else "unknown fps"
        frames = f", {info.frame_count} frames" if info.frame_count else ""
        w.show_message(f"opened {info.name} ({fps}{frames})")

    @pyqtSlot(object)
    def _on_state(self, state: WorkerState) -> None:
        w = self.window
        w.state_label.setText(STATE_TEXT[state])
        w.timeline.set_playing(state is WorkerState.PLAYING)
        if state is WorkerState.ENDED and w.args.exit_after_frames:
            if w.frames_shown == 0:
                w.exit_code = 1
            QTimer.singleShot(0, w.finish)

    @pyqtSlot(object)
    def _on_model(self, info: ModelInfo) -> None:
        """What really runs (a failed switch keeps the old model): shown, and remembered."""
        w = self.window
        w.controls.set_engine(info.model, info.backend, info.flip_test, info.refine)
        w.controls.set_weights_label(info.weights or None)
        s = w.settings
        s.model, s.backend, s.flip_test, s.refine = info.model, info.backend, info.flip_test, info.refine
        s.weights = info.weights

    @pyqtSlot(bool, str)
    def _on_recording(self, on: bool, path: str) -> None:
        w = self.window
        w.recording_path = path if on else None
        w.view.recording = on
        w.actions_.record.blockSignals(True)
        w.actions_.record.setChecked(on)
        w.actions_.record.blockSignals(False)
        if on:
            w.show_message(f"recording to {path}")

    @pyqtSlot(str, int)
    def _on_exported(self, path: str, count: int) -> None:
        w = self.window
        w.last_export = (path, count)
        w.show_message(f"exported {count} frames of keypoints to {path}")
