"""Transport bar under the view: play/pause, single step, a seek slider and the frame position.

The slider follows playback unless the user holds it; dragging asks for a seek on every move
(the worker keeps only the newest), so scrubbing shows frames as it goes. Buttons take no
keyboard focus, so Space and the arrows stay with the window's shortcuts.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from app.gui.messages import SourceInfo
from app.sources import DEFAULT_FPS

__all__ = ["Timeline", "format_time"]


def format_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"


class Timeline(QWidget):
    """Emits `toggle_play`, `step(delta)`, `seek(index)` and `max_speed(on)`."""

    toggle_play = pyqtSignal()
    step = pyqtSignal(int)
    seek = pyqtSignal(int)
    max_speed = pyqtSignal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style = self.style()
        assert style is not None
        self._icons = {
            "play": style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay),
            "pause": style.standardIcon(QStyle.StandardPixmap.SP_MediaPause),
        }
        self.play_button = self._button(self._icons["play"], "Play / pause (Space)")
        self.back_button = self._button(
            style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward), "Previous frame (Left)"
        )
        self.forward_button = self._button(
            style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Next frame (Right)"
        )
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setRange(0, 0)
        self.position = QLabel("no video")
        self.position.setMinimumWidth(self.position.fontMetrics().horizontalAdvance("00000 / 00000  00:00.0"))
        self.position.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.max_speed_box = QCheckBox("Max speed")
        self.max_speed_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.max_speed_box.setToolTip("Play files as fast as inference allows, not at their frame rate")

        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        for w in (self.back_button, self.play_button, self.forward_button):
            row.addWidget(w)
        row.addWidget(self.slider, 1)
        row.addWidget(self.position)
        row.addWidget(self.max_speed_box)

        self.play_button.clicked.connect(self.toggle_play.emit)
        self.back_button.clicked.connect(lambda: self.step.emit(-1))
        self.forward_button.clicked.connect(lambda: self.step.emit(1))
        self.slider.sliderMoved.connect(self.seek.emit)
        self.slider.actionTriggered.connect(self._slider_action)
        self.max_speed_box.toggled.connect(self.max_speed.emit)
        self._fps = DEFAULT_FPS
        self._count = 0
        self.set_source(None)

    @staticmethod
    def _button(icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    def _slider_action(self, action: int) -> None:
        """Clicks on the groove and page keys: seek once the slider has moved."""
        if action == QSlider.SliderAction.SliderMove.value:
            return  # drags are handled by sliderMoved
        self.seek.emit(self.slider.sliderPosition())

    def set_source(self, info: SourceInfo | None) -> None:
        """A new source: a seekable file gets the slider; cameras and streams do not."""
        seekable = bool(info and info.seekable and info.frame_count)
        self._count = int(info.frame_count or 0) if info else 0
        self._fps = float(info.fps or DEFAULT_FPS) if info else DEFAULT_FPS
        self.slider.setRange(0, max(self._count - 1, 0))
        self.slider.setValue(0)
        for w in (self.slider, self.back_button, self.forward_button, self.max_speed_box):
            w.setEnabled(seekable)
        self.play_button.setEnabled(info is not None)
        if info is None:
            self.position.setText("no video")
        elif not seekable:
            self.position.setText("live")

    def set_position(self, index: int, timestamp: float, live: bool) -> None:
        if live:
            self.position.setText(f"live · frame {index}")
            return
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        total = format_time(max(self._count - 1, 0) / self._fps) if self._count else "?"
        self.position.setText(f"{index} / {max(self._count - 1, 0)}  {format_time(timestamp)} / {total}")

    def set_playing(self, playing: bool) -> None:
        self.play_button.setIcon(self._icons["pause" if playing else "play"])
