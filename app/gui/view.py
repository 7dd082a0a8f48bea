"""The main view: the latest frame with its skeletons, scaled to fit, repainted on a timer.

Results only mark the view dirty; a ~30 Hz timer draws the newest one (as DeepLabCut-live-GUI's
display timer), so a burst of results costs one drawing, not one each. Drawing happens here,
not in the worker, because the confidence threshold is a display setting: moving the slider
redraws the shown result at once, also while paused.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np
from PyQt6.QtCore import QRectF, QSize, Qt, QTimer
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QResizeEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from app.draw import DrawStyle, draw_poses
from app.types import FrameResult

__all__ = ["PoseView", "REPAINT_INTERVAL_MS"]

REPAINT_INTERVAL_MS = 33
BACKGROUND = QColor(24, 24, 27)
PLACEHOLDER = "Open a video (Ctrl+O), drop a file here, or pick a camera in the toolbar"


class PoseView(QWidget):
    """Paints `draw_poses` of the newest result with the current `DrawStyle`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._result: FrameResult | None = None
        self._style = DrawStyle()
        self._dirty = False
        self._drawn: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._screen: np.ndarray | None = None
        self._frame_size = (1, 1)
        self._shown: deque[float] = deque(maxlen=60)
        self.placeholder = PLACEHOLDER
        self.recording = False
        self._timer = QTimer(self)
        self._timer.setInterval(REPAINT_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def sizeHint(self) -> QSize:  # Qt API
        return QSize(960, 600)

    # -- inputs ----------------------------------------------------------------------------------

    def set_result(self, result: FrameResult) -> None:
        self._result = result
        self._dirty = True

    def set_style(self, style: DrawStyle) -> None:
        """A new threshold / boxes / ids setting: the shown frame is drawn again."""
        if style != self._style:
            self._style = style
            self._dirty = self._result is not None

    def clear(self, placeholder: str | None = None) -> None:
        self._result, self._drawn, self._qimage, self._screen = None, None, None, None
        if placeholder is not None:
            self.placeholder = placeholder
        self.update()

    @property
    def style(self) -> DrawStyle:
        return self._style

    @property
    def result(self) -> FrameResult | None:
        return self._result

    def drawn_image(self) -> np.ndarray | None:
        """The BGR image last painted (frame plus overlay), after drawing any pending result."""
        self._render_pending()
        return self._drawn

    @property
    def display_fps(self) -> float:
        """Frames actually drawn per second (at most the repaint rate)."""
        stamps = [t for t in self._shown if t > time.perf_counter() - 2.0]
        if len(stamps) < 2 or stamps[-1] <= stamps[0]:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    # -- drawing ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._dirty:
            self._render_pending()
            self.update()

    def _render_pending(self) -> None:
        if not self._dirty or self._result is None:
            return
        self._dirty = False
        image = np.ascontiguousarray(self._result.frame.image).copy()
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            return
        draw_poses(image, self._result, self._style)
        self._drawn = image
        # Shrink with OpenCV (SIMD, area filter) rather than letting QPainter scale a full-size
        # frame on every paint: a 1080p frame then costs ~2 ms instead of tens.
        target = self._fit(image.shape[1], image.shape[0])
        if target[0] < image.shape[1]:
            image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        self._screen = image  # the QImage borrows this memory; keep it alive with the QImage
        self._qimage = QImage(image.data, w, h, int(image.strides[0]), QImage.Format.Format_BGR888)
        self._qimage.setDevicePixelRatio(1.0)
        self._frame_size = (self._drawn.shape[1], self._drawn.shape[0])
        self._shown.append(time.perf_counter())

    def _fit(self, iw: int, ih: int) -> tuple[int, int]:
        """Device-pixel size of an iw x ih frame fitted into the widget, aspect kept."""
        ratio = self.devicePixelRatioF()
        scale = min(self.width() * ratio / iw, self.height() * ratio / ih)
        return max(1, round(iw * scale)), max(1, round(ih * scale))

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # Qt API
        self._dirty = self._result is not None  # re-shrink for the new size
        super().resizeEvent(event)

    def target_rect(self) -> QRectF:
        """Where the frame lands: as large as fits, aspect kept, centred (logical pixels)."""
        if self._qimage is None:
            return QRectF()
        iw, ih = self._frame_size
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent | None) -> None:  # Qt API
        self._render_pending()
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._qimage is None:
            painter.setPen(QColor(160, 160, 170))
            font = QFont(painter.font())
            font.setPointSizeF(font.pointSizeF() * 1.15)
            painter.setFont(font)
            painter.drawText(
                self.rect().adjusted(24, 24, -24, -24),
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                self.placeholder,
            )
            painter.end()
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self.target_rect()
        painter.drawImage(target, self._qimage)
        if self.recording:
            self._paint_rec(painter, target)
        painter.end()

    @staticmethod
    def _paint_rec(painter: QPainter, target: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x, y = target.left() + 14, target.top() + 14
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 140))
        painter.drawRoundedRect(QRectF(x - 6, y - 4, 64, 24), 6, 6)
        painter.setBrush(QColor(230, 40, 40))
        painter.drawEllipse(QRectF(x, y + 3, 10, 10))
        painter.setPen(QColor(255, 255, 255))
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(QRectF(x + 16, y - 1, 40, 18), int(Qt.AlignmentFlag.AlignVCenter), "REC")
