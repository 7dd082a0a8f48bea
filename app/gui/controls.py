"""Side panels: live controls (threshold, smoothing, detection, model) and the stats readout.

Widgets only emit what changed; the window decides who needs it (the view for display settings,
the worker for everything that touches inference). Each change applies from the next frame.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont, QFontDatabase
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.builders import BACKEND_CHOICES
from app.gui.messages import WorkerStats
from app.gui.settings import GuiSettings
from sdpose_core.models import VARIANT_NAMES

__all__ = ["ControlsPanel", "StatsPanel", "SMOOTHING_LABELS"]

SMOOTHING_LABELS = {"kalman": "Kalman", "oneeuro": "One-Euro", "none": "None"}


class LabeledSlider(QWidget):
    """A 0..1 slider with its value printed beside it."""

    value_changed = pyqtSignal(float)

    def __init__(self, value: float, tooltip: str) -> None:
        super().__init__()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(5)
        self.slider.setToolTip(tooltip)
        self.label = QLabel()
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance("0.000"))
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        self.slider.valueChanged.connect(self._changed)
        self.set_value(value)

    def value(self) -> float:
        return self.slider.value() / 100.0

    def set_value(self, value: float) -> None:
        self.slider.setValue(round(min(max(value, 0.0), 1.0) * 100))
        self.label.setText(f"{self.value():.2f}")

    def _changed(self, raw: int) -> None:
        self.label.setText(f"{raw / 100.0:.2f}")
        self.value_changed.emit(raw / 100.0)


class ControlsPanel(QWidget):
    """Everything a user tunes while the video runs."""

    style_changed = pyqtSignal()  # threshold, boxes, ids
    smoothing_changed = pyqtSignal(str, float)
    detection_changed = pyqtSignal(int, bool)
    engine_changed = pyqtSignal()  # model, backend, flip test or crop refinement
    weights_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)

        display = QGroupBox("Display")
        form = QFormLayout(display)
        self.threshold = LabeledSlider(0.3, "Joints scored below this are not drawn (display only)")
        self.show_boxes = QCheckBox("Person boxes")
        self.show_ids = QCheckBox("Track IDs")
        form.addRow("Confidence", self.threshold)
        form.addRow(self.show_boxes)
        form.addRow(self.show_ids)
        layout.addWidget(display)

        smooth = QGroupBox("Smoothing")
        form = QFormLayout(smooth)
        self.smoothing = QComboBox()
        for key, label in SMOOTHING_LABELS.items():
            self.smoothing.addItem(label, key)
        self.strength = LabeledSlider(0.5, "0 = light (responsive), 1 = heavy (steady)")
        form.addRow("Filter", self.smoothing)
        form.addRow("Strength", self.strength)
        layout.addWidget(smooth)

        det = QGroupBox("Detection")
        form = QFormLayout(det)
        self.det_every = QSpinBox()
        self.det_every.setRange(1, 60)
        self.det_every.setPrefix("every ")
        self.det_every.setSuffix(" frames")
        self.det_every.setSpecialValueText("every frame")
        self.det_every.setToolTip("Run the person detector every Nth frame; boxes follow the joints between")
        self.det_auto = QCheckBox("Adaptive (longer while the scene is stable)")
        form.addRow("Detector", self.det_every)
        form.addRow(self.det_auto)
        layout.addWidget(det)

        model = QGroupBox("Pose model")
        form = QFormLayout(model)
        self.model = QComboBox()
        self.model.addItems(VARIANT_NAMES)
        self.backend = QComboBox()
        for key, text in BACKEND_CHOICES.items():
            self.backend.addItem(text, key)
        self.flip = QCheckBox("Flip test (2x compute)")
        self.refine = QCheckBox("Refine loose boxes (up to 2x compute)")
        self.refine.setToolTip(
            "Read each person again in a box drawn around their first-pass joints, where that box"
            " is much smaller: for people small in their box (whole photos, distant people)"
        )
        self.weights = QLabel("bundled")
        self.weights.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weights_button = QPushButton("Choose…")
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights, 1)
        weights_row.addWidget(self.weights_button)
        form.addRow("Variant", self.model)
        form.addRow("Backend", self.backend)
        form.addRow(self.flip)
        form.addRow(self.refine)
        form.addRow("Weights", weights_row)
        layout.addWidget(model)
        layout.addStretch(1)

        self.threshold.value_changed.connect(lambda _v: self.style_changed.emit())
        self.show_boxes.toggled.connect(lambda _v: self.style_changed.emit())
        self.show_ids.toggled.connect(lambda _v: self.style_changed.emit())
        self.smoothing.currentIndexChanged.connect(lambda _i: self._smoothing_changed())
        self.strength.value_changed.connect(lambda _v: self._smoothing_changed())
        self.det_every.valueChanged.connect(lambda _v: self._detection_changed())
        self.det_auto.toggled.connect(lambda _v: self._detection_changed())
        self.model.currentIndexChanged.connect(lambda _i: self.engine_changed.emit())
        self.backend.currentIndexChanged.connect(lambda _i: self.engine_changed.emit())
        self.flip.toggled.connect(lambda _v: self.engine_changed.emit())
        self.refine.toggled.connect(lambda _v: self.engine_changed.emit())
        self.weights_button.clicked.connect(self.weights_requested.emit)

    def apply(self, s: GuiSettings) -> None:
        """Show stored settings without announcing them as changes."""
        self.blockSignals(True)
        try:
            self.threshold.set_value(s.threshold)
            self.show_boxes.setChecked(s.show_boxes)
            self.show_ids.setChecked(s.show_ids)
            self.set_smoothing_kind(s.smoothing)
            self.strength.set_value(s.strength)
            self.det_every.setValue(s.det_every)
            self.det_auto.setChecked(s.det_auto)
            self.det_every.setEnabled(not s.det_auto)
            self.set_engine(s.model, s.backend, s.flip_test, s.refine)
            self.set_weights_label(s.weights or None)
        finally:
            self.blockSignals(False)

    def _smoothing_changed(self) -> None:
        kind = self.smoothing_kind()
        self.strength.setEnabled(kind != "none")
        self.smoothing_changed.emit(kind, self.strength.value())

    def _detection_changed(self) -> None:
        self.det_every.setEnabled(not self.det_auto.isChecked())
        self.detection_changed.emit(self.det_every.value(), self.det_auto.isChecked())

    def smoothing_kind(self) -> str:
        return str(self.smoothing.currentData())

    def backend_name(self) -> str:
        return str(self.backend.currentData())

    def set_smoothing_kind(self, kind: str) -> None:
        index = self.smoothing.findData(kind)
        self.smoothing.setCurrentIndex(max(index, 0))
        self.strength.setEnabled(kind != "none")

    def set_engine(self, model: str, backend: str, flip: bool, refine: bool) -> None:
        """Show what the worker runs, without echoing a change back to it."""
        widgets = (self.model, self.backend, self.flip, self.refine)
        for w in widgets:
            w.blockSignals(True)
        try:
            if self.model.findText(model) < 0:
                self.model.addItem(model)
            self.model.setCurrentText(model)
            self.backend.setCurrentIndex(max(self.backend.findData(backend), 0))
            self.flip.setChecked(flip)
            self.refine.setChecked(refine)
        finally:
            for w in widgets:
                w.blockSignals(False)

    def set_weights_label(self, path: str | None) -> None:
        self.weights.setText(Path(path).name if path else "bundled")
        self.weights.setToolTip(path or "the bundled weights of the chosen variant")


# (key, title, format); laid out in two columns, rates on the left, latencies on the right.
STAT_ROWS = (
    ("capture_fps", "Capture", "{:.1f} FPS"),
    ("detect_ms", "Detect", "{:.1f} ms"),
    ("inference_fps", "Inference", "{:.1f} FPS"),
    ("pose_ms", "Pose", "{:.1f} ms"),
    ("display_fps", "Display", "{:.1f} FPS"),
    ("track_ms", "Track", "{:.2f} ms"),
    ("people", "People", "{:.0f}"),
    ("dropped", "Dropped", "{:.0f}"),
)


class StatsPanel(QWidget):
    """Throughput and latency of the running session, refreshed twice a second by the worker.

    Detect is the mean over frames that ran the detector; pose and track are per frame.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(12, 6, 12, 8)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        mono = QFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._values: dict[str, QLabel] = {}
        for i, (key, title, _fmt) in enumerate(STAT_ROWS):
            row, col = divmod(i, 2)
            value = QLabel("–")
            value.setFont(mono)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setMinimumWidth(value.fontMetrics().horizontalAdvance("000.0 FPS"))
            self._values[key] = value
            grid.addWidget(QLabel(title), row, col * 2)
            grid.addWidget(value, row, col * 2 + 1)
        self._values["model"] = QLabel("not loaded")
        self._values["model"].setWordWrap(True)
        last = len(STAT_ROWS) // 2
        grid.addWidget(QLabel("Model"), last, 0)
        grid.addWidget(self._values["model"], last, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        grid.setRowStretch(last + 1, 1)

    def update_stats(self, stats: WorkerStats) -> None:
        for key, _title, fmt in (*STAT_ROWS, ("model", "Model", "{}")):
            value = getattr(stats, key)
            if value is not None:
                try:
                    text = fmt.format(value)
                except (TypeError, ValueError):
                    text = str(value)
                self._values[key].setText(text)

    def text(self, key: str) -> str:
        return self._values[key].text()
