"""The desktop window: view + timeline in the middle, controls and stats docked on the right.

The window owns no inference: it forwards user intent to `PoseWorker` (on its own `QThread`)
and shows what comes back (`app.gui.worker_link`). Errors arrive as one line, shown in the
status bar and a non-modal dialog; nothing a user does here ends in a traceback.
"""

from __future__ import annotations

import argparse
import logging

from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.builders import DetectorFactory, default_detector_factory
from app.draw import DrawStyle
from app.gui import messages
from app.gui.actions import build_actions
from app.gui.controls import ControlsPanel, StatsPanel
from app.gui.dialogs import ErrorBox, ask_open, ask_save, show_about
from app.gui.messages import SourceInfo
from app.gui.settings import SettingsStore, initial_settings
from app.gui.timeline import Timeline
from app.gui.view import PoseView
from app.gui.worker import WorkerState
from app.gui.worker_link import STATE_TEXT, WorkerLink
from app.pipeline import AppConfig
from app.types import FrameResult

__all__ = ["MainWindow"]

logger = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The app's window. `detector_factory` replaces the YOLO detector (tests, other detectors)."""

    def __init__(
        self,
        args: argparse.Namespace,
        cfg: AppConfig,
        store: SettingsStore | None = None,
        detector_factory: DetectorFactory | None = None,
        dialogs: bool = True,
    ) -> None:
        super().__init__()
        self.args, self.cfg = args, cfg
        self.store = store or SettingsStore()
        self.settings, self.one_off = initial_settings(args, cfg, self.store)
        self.dialogs = dialogs
        self.frames_shown = 0
        self.errors: list[str] = []
        self.exit_code = 0
        self.source_info: SourceInfo | None = None
        self.last_result: FrameResult | None = None
        self.recording_path: str | None = None
        self.last_export: tuple[str, int] | None = None
        self.error_box = ErrorBox(self)
        self._finishing = False
        self._closed = False

        self.setWindowTitle("SDPose — real-time pose estimation")
        self.setAcceptDrops(True)
        self._build_ui()
        self._apply_settings_to_widgets()
        self.link = WorkerLink(self)
        self.worker, self.thread_ = self.link.start(
            detector_factory or default_detector_factory(cfg, args.detector)
        )
        geometry, state = self.store.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        if state is not None:
            self.restoreState(state)
        if args.source:
            self.open_source(args.source)
        if args.save_video:  # the headless outputs work in the window too
            self.start_recording(args.save_video)
        if args.output and args.format != "jsonl":
            self.show_error(f"the window writes --output as JSON Lines; use --headless for {args.format}")

    # -- construction ----------------------------------------------------------------------------

    def _build_ui(self) -> None:
        self.view = PoseView()
        self.timeline = Timeline()
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.view, 1)
        column.addWidget(self.timeline)
        self.setCentralWidget(centre)

        self.controls = ControlsPanel()
        self.stats_panel = StatsPanel()
        self.actions_ = build_actions(self)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 24)
        for title, name, widget in (("Controls", "controls", scroll), ("Stats", "stats", self.stats_panel)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{name}")
            dock.setWidget(widget)
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetMovable
                | QDockWidget.DockWidgetFeature.DockWidgetClosable
            )
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            if self.actions_.view_menu is not None:
                self.actions_.view_menu.addAction(dock.toggleViewAction())

        self.state_label = QLabel(STATE_TEXT[WorkerState.IDLE])
        self.state_label.setMinimumWidth(110)
        status = self.statusBar()
        assert status is not None
        status.addPermanentWidget(self.state_label)

        a = self.actions_
        a.open_file.triggered.connect(self.choose_file)
        a.open_camera.triggered.connect(self.open_selected_camera)
        a.reopen.triggered.connect(self.reopen_last)
        a.load_weights.triggered.connect(self.choose_weights)
        a.bundled_weights.triggered.connect(lambda: self.set_weights(None))
        a.record.triggered.connect(self._record_triggered)
        a.export.triggered.connect(self.choose_export)
        a.screenshot.triggered.connect(self.choose_screenshot)
        a.quit.triggered.connect(self.close)
        a.play.triggered.connect(self.toggle_play)
        a.step_back.triggered.connect(lambda: self.step(-1))
        a.step_forward.triggered.connect(lambda: self.step(1))
        a.max_speed.toggled.connect(self._max_speed_changed)
        a.show_boxes.toggled.connect(self.controls.show_boxes.setChecked)
        a.show_ids.toggled.connect(self.controls.show_ids.setChecked)
        a.about.triggered.connect(lambda: show_about(self))
        self.controls.show_boxes.toggled.connect(a.show_boxes.setChecked)
        self.controls.show_ids.toggled.connect(a.show_ids.setChecked)
        self.controls.style_changed.connect(self._style_changed)
        self.controls.smoothing_changed.connect(self._smoothing_changed)
        self.controls.detection_changed.connect(self._detection_changed)
        self.controls.engine_changed.connect(self._engine_changed)
        self.controls.weights_requested.connect(self.choose_weights)
        self.timeline.toggle_play.connect(self.toggle_play)
        self.timeline.step.connect(self.step)
        self.timeline.seek.connect(self.seek)
        self.timeline.max_speed.connect(a.max_speed.setChecked)

    def _apply_settings_to_widgets(self) -> None:
        s, a = self.settings, self.actions_
        self.controls.apply(s)
        a.max_speed.blockSignals(True)
        a.max_speed.setChecked(s.max_speed)
        a.max_speed.blockSignals(False)
        a.show_boxes.setChecked(s.show_boxes)
        a.show_ids.setChecked(s.show_ids)
        self.timeline.max_speed_box.setChecked(s.max_speed)
        a.camera_combo.setCurrentIndex(max(0, min(s.camera_index, a.camera_combo.count() - 1)))
        a.reopen.setEnabled(bool(s.last_source))
        self.view.set_style(self.draw_style())

    # -- public API (menus, shortcuts, tests) ----------------------------------------------------

    def draw_style(self) -> DrawStyle:
        c = self.controls
        return DrawStyle(
            kpt_threshold=c.threshold.value(),
            show_boxes=c.show_boxes.isChecked(),
            show_ids=c.show_ids.isChecked(),
        )

    @property
    def frame_index(self) -> int:
        """Index of the frame on screen (-1 before the first)."""
        return self.last_result.frame.index if self.last_result is not None else -1

    def open_source(self, spec: str | int) -> None:
        self.worker.post(messages.Open(spec))

    def open_selected_camera(self) -> None:
        index = int(self.actions_.camera_combo.currentData())
        self.settings.camera_index = index
        self.open_source(index)

    def reopen_last(self) -> None:
        if self.settings.last_source:
            spec = self.settings.last_source
            self.open_source(int(spec) if spec.isdigit() else spec)

    def toggle_play(self) -> None:
        self.worker.post(messages.Toggle())

    def play(self) -> None:
        self.worker.post(messages.Play())

    def pause(self) -> None:
        self.worker.post(messages.Pause())

    def seek(self, index: int) -> None:
        self.worker.post(messages.Seek(int(index)))

    def step(self, delta: int) -> None:
        self.worker.post(messages.Step(int(delta)))

    def set_weights(self, path: str | None) -> None:
        self.settings.weights = path or ""
        self.controls.set_weights_label(path)
        self._engine_changed()

    def start_recording(self, path: str) -> None:
        self.worker.post(messages.SetStyle(self.draw_style()))
        self.worker.post(messages.RecordStart(str(path)))

    def stop_recording(self) -> None:
        self.worker.post(messages.RecordStop())

    def export_keypoints(self, path: str) -> None:
        self.worker.post(messages.Export(str(path)))

    def save_screenshot(self, path: str) -> bool:
        """Grab the whole window (as a person sees it) to a PNG."""
        self.view.drawn_image()  # draw any pending result first
        ok = self.grab().save(str(path))
        if ok:
            logger.info("screenshot saved to %s", path)
        else:
            self.show_error(f"cannot write screenshot {path} (check the folder exists and is writable)")
        return ok

    # -- dialogs -----------------------------------------------------------------------------------

    def choose_file(self) -> None:
        path = ask_open(self, "video", self.settings.last_source)
        if path:
            self.open_source(path)

    def choose_weights(self) -> None:
        path = ask_open(self, "weights", self.settings.weights)
        if path:
            self.set_weights(path)

    def choose_export(self) -> None:
        path = ask_save(self, "export", self.settings.last_source)
        if path:
            self.export_keypoints(path)

    def choose_screenshot(self) -> None:
        path = ask_save(self, "screenshot", self.settings.last_source)
        if path:
            self.save_screenshot(path)

    def _record_triggered(self, checked: bool) -> None:
        if not checked:
            self.stop_recording()
            return
        path = ask_save(self, "record", self.settings.last_source)
        if path:
            self.start_recording(path)
        else:
            self.actions_.record.setChecked(False)

    # -- feedback ----------------------------------------------------------------------------------

    @pyqtSlot(str)
    def show_message(self, text: str) -> None:
        status = self.statusBar()
        assert status is not None
        status.showMessage(text, 8000)

    @pyqtSlot(str)
    def show_error(self, text: str) -> None:
        """One line in the status bar and (once at a time) in a non-modal dialog."""
        logger.warning("%s", text)
        self.errors.append(text)
        status = self.statusBar()
        assert status is not None
        status.showMessage(f"Error: {text}", 15000)
        if self.args.exit_after_frames:  # scripted: an error that stops playback ends the run
            self.exit_code = 1
            if self.worker.state is not WorkerState.PLAYING:
                self.finish()
            return
        if self.dialogs:
            self.error_box.show(text)

    # -- control changes ---------------------------------------------------------------------------

    def _style_changed(self) -> None:
        style = self.draw_style()
        self.settings.threshold = style.kpt_threshold
        self.settings.show_boxes, self.settings.show_ids = style.show_boxes, style.show_ids
        self.view.set_style(style)
        self.worker.post(messages.SetStyle(style))

    def _smoothing_changed(self, kind: str, strength: float) -> None:
        self.settings.smoothing, self.settings.strength = kind, strength
        self.worker.post(messages.SetSmoothing(kind, strength))

    def _detection_changed(self, every: int, adaptive: bool) -> None:
        self.settings.det_every, self.settings.det_auto = every, adaptive
        self.worker.post(messages.SetDetection(every, adaptive))

    def _engine_changed(self) -> None:
        c, s = self.controls, self.settings
        s.model, s.backend, s.flip_test = c.model.currentText(), c.backend_name(), c.flip.isChecked()
        s.refine = c.refine.isChecked()
        self.worker.post(messages.SetEngine(s.model, s.backend, s.flip_test, s.weights or None, s.refine))

    def _max_speed_changed(self, on: bool) -> None:
        self.settings.max_speed = on
        self.timeline.max_speed_box.blockSignals(True)
        self.timeline.max_speed_box.setChecked(on)
        self.timeline.max_speed_box.blockSignals(False)
        self.worker.post(messages.SetMaxSpeed(on))

    # -- drag and drop, exit -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:  # Qt API
        mime = event.mimeData() if event is not None else None
        if event is not None and mime is not None and any(u.isLocalFile() for u in mime.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:  # Qt API
        mime = event.mimeData() if event is not None else None
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime is not None else []
        if files and event is not None:
            event.acceptProposedAction()
            self.open_source(files[0])

    def finish(self) -> None:
        """--exit-after-frames reached (or nothing to show): close, which takes the screenshot."""
        if not self._finishing:
            self._finishing = True
            self.close()

    def shutdown(self) -> None:
        """Remember the settings and stop the worker thread (idempotent).

        The wait has no time limit: a running QThread must never be destroyed (Qt aborts), and
        the worker stops after its current step (one frame, or a model load it cannot cut short).
        """
        if self._closed:
            return
        self._closed = True
        self.store.save(self.settings, self.one_off)
        self.store.save_geometry(self.saveGeometry(), self.saveState())
        if self.args.output and self.args.format == "jsonl":
            self.export_keypoints(self.args.output)  # the worker runs it before it stops
        self.worker.stop()
        self.thread_.quit()
        if not self.thread_.wait(2000):
            logger.info("waiting for the pose worker to finish its current step…")
            self.thread_.wait()

    def closeEvent(self, event: QCloseEvent | None) -> None:  # Qt API
        if self.args.screenshot and not self._closed:
            self.save_screenshot(self.args.screenshot)
        self.shutdown()
        self.error_box.close()
        super().closeEvent(event)
