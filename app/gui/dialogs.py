"""File pickers, the about box and the error box of the main window.

Only the error box is shown while the video runs, and it is non-modal: the app keeps playing
behind it and a later error replaces its text instead of stacking a second box.
"""

from __future__ import annotations

import time
from pathlib import Path

from PyQt6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.sources import IMAGE_EXTENSIONS

__all__ = ["ErrorBox", "VIDEO_FILTER", "ask_open", "ask_save", "show_about", "default_names"]

VIDEO_FILTER = (
    "Videos and images (*.mp4 *.avi *.mov *.mkv *.m4v *.webm *.mpg *.mpeg *.wmv "
    + " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS))
    + ");;All files (*)"
)
WEIGHTS_FILTER = "SDPose weights (*.pth *.pt *.onnx);;All files (*)"
SHORTCUTS = "Space play/pause · ←/→ step · Ctrl+O open · Ctrl+R record · Ctrl+E export · Ctrl+Q quit"


def default_names() -> dict[str, tuple[str, str, str]]:
    """Save dialogs: purpose -> (title, suggested file name, filters)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return {
        "record": ("Record video", f"sdpose-{stamp}.mp4", "MP4 video (*.mp4);;AVI video (*.avi)"),
        "export": ("Export keypoints", f"sdpose-{stamp}.jsonl", "JSON Lines (*.jsonl);;All files (*)"),
        "screenshot": ("Save screenshot", f"sdpose-{stamp}.png", "PNG image (*.png)"),
    }


def _start_dir(near: str) -> Path:
    path = Path(near) if near else Path.home()
    return path if path.is_dir() else path.parent if path.parent.is_dir() else Path.home()


def ask_open(parent: QWidget, kind: str, near: str = "") -> str | None:
    """A video/image (`kind="video"`) or weights file (`kind="weights"`), or None if cancelled."""
    title, filters = ("Open video", VIDEO_FILTER) if kind == "video" else ("Pose weights", WEIGHTS_FILTER)
    path, _ = QFileDialog.getOpenFileName(parent, title, str(_start_dir(near)), filters)
    return path or None


def ask_save(parent: QWidget, purpose: str, near: str = "") -> str | None:
    title, name, filters = default_names()[purpose]
    path, _ = QFileDialog.getSaveFileName(parent, title, str(_start_dir(near) / name), filters)
    return path or None


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About sdpose-app",
        f"Real-time human pose estimation with SDPose (CVPR 2024).\n\n{SHORTCUTS}",
    )


class ErrorBox:
    """One non-modal warning box, reused for each new error."""

    def __init__(self, parent: QWidget) -> None:
        self._parent = parent
        self.box: QMessageBox | None = None

    def show(self, text: str) -> None:
        if self.box is None:
            self.box = QMessageBox(QMessageBox.Icon.Warning, "sdpose-app", text, parent=self._parent)
            self.box.setModal(False)
        self.box.setText(text)
        self.box.show()

    def close(self) -> None:
        if self.box is not None:
            self.box.close()
