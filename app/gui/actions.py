"""Menus, toolbar and keyboard shortcuts of the main window, built from one table of actions.

Shortcuts live on window-wide `QAction`s, so Space and the arrows work wherever the focus is
(buttons and the timeline take no focus).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QColor, QIcon, QKeySequence, QPainter, QPixmap
from PyQt6.QtWidgets import QComboBox, QMainWindow, QMenu, QStyle, QToolBar

__all__ = ["WindowActions", "build_actions", "CAMERA_INDICES"]

CAMERA_INDICES = range(5)


@dataclass
class WindowActions:
    open_file: QAction
    open_camera: QAction
    reopen: QAction
    load_weights: QAction
    bundled_weights: QAction
    record: QAction
    export: QAction
    screenshot: QAction
    quit: QAction
    play: QAction
    step_back: QAction
    step_forward: QAction
    max_speed: QAction
    show_boxes: QAction
    show_ids: QAction
    about: QAction
    camera_combo: QComboBox
    view_menu: QMenu | None = field(default=None)
    toolbar: QToolBar | None = field(default=None)


def _action(
    window: QMainWindow, text: str, shortcut: str | QKeySequence.StandardKey | None = None
) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    window.addAction(action)  # shortcuts work even when the menu bar is hidden
    return action


def dot_icon(color: QColor, size: int = 32) -> QIcon:
    """A filled circle: the universal "record" mark (the style has no such standard icon)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    margin = size // 6
    painter.drawEllipse(margin, margin, size - 2 * margin, size - 2 * margin)
    painter.end()
    return QIcon(pixmap)


def build_actions(window: QMainWindow) -> WindowActions:
    """Create the actions, the menu bar and the toolbar; the window connects them."""
    style = window.style()
    assert style is not None
    icon = style.standardIcon
    sp = QStyle.StandardPixmap
    a = WindowActions(
        open_file=_action(window, "&Open video…", "Ctrl+O"),
        open_camera=_action(window, "Open &camera"),
        reopen=_action(window, "&Reopen last source", "Ctrl+Shift+O"),
        load_weights=_action(window, "Load &weights…"),
        bundled_weights=_action(window, "Use &bundled weights"),
        record=_action(window, "&Record video", "Ctrl+R"),
        export=_action(window, "&Export keypoints (JSON Lines)…", "Ctrl+E"),
        screenshot=_action(window, "Save &screenshot…"),
        quit=_action(window, "&Quit", "Ctrl+Q"),
        play=_action(window, "&Play / pause", "Space"),
        step_back=_action(window, "Step &back", "Left"),
        step_forward=_action(window, "Step &forward", "Right"),
        max_speed=_action(window, "&Max speed (files)"),
        show_boxes=_action(window, "Person &boxes"),
        show_ids=_action(window, "Track &IDs"),
        about=_action(window, "&About sdpose-app"),
        camera_combo=QComboBox(),
    )
    a.open_file.setIcon(icon(sp.SP_DialogOpenButton))
    a.open_camera.setIcon(icon(sp.SP_ComputerIcon))
    a.reopen.setIcon(icon(sp.SP_BrowserReload))
    a.record.setIcon(dot_icon(QColor(220, 40, 40)))
    a.export.setIcon(icon(sp.SP_DialogSaveButton))
    a.play.setIcon(icon(sp.SP_MediaPlay))
    for action, short in (
        (a.open_file, "Open"),
        (a.open_camera, "Camera"),
        (a.reopen, "Reopen"),
        (a.record, "Record"),
        (a.export, "Export"),
    ):
        action.setIconText(short)
    a.open_camera.setToolTip("Open the camera chosen at the left")
    a.reopen.setToolTip("Open the last source again (Ctrl+Shift+O)")
    for checkable in (a.record, a.max_speed, a.show_boxes, a.show_ids):
        checkable.setCheckable(True)
    a.record.setToolTip("Record the annotated view to a video file (Ctrl+R)")
    a.export.setToolTip("Save this session's keypoints as JSON Lines, as --output does (Ctrl+E)")
    for i in CAMERA_INDICES:
        a.camera_combo.addItem(str(i), i)
    a.camera_combo.setToolTip("Camera index (0 is the default webcam)")

    bar = window.menuBar()
    assert bar is not None
    file_menu = bar.addMenu("&File")
    play_menu = bar.addMenu("&Playback")
    view_menu = bar.addMenu("&View")
    help_menu = bar.addMenu("&Help")
    assert file_menu and play_menu and view_menu and help_menu
    for item in (a.open_file, a.open_camera, a.reopen, None, a.load_weights, a.bundled_weights, None):
        file_menu.addSeparator() if item is None else file_menu.addAction(item)
    for item in (a.record, a.export, a.screenshot, None, a.quit):
        file_menu.addSeparator() if item is None else file_menu.addAction(item)
    for item in (a.play, a.step_back, a.step_forward, None, a.max_speed):
        play_menu.addSeparator() if item is None else play_menu.addAction(item)
    view_menu.addAction(a.show_boxes)
    view_menu.addAction(a.show_ids)
    view_menu.addSeparator()
    help_menu.addAction(a.about)
    a.view_menu = view_menu  # docks add their show/hide toggles here

    tools = QToolBar("Main toolbar", window)
    tools.setObjectName("main-toolbar")
    tools.setMovable(False)
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tools.addAction(a.open_file)
    tools.addSeparator()
    tools.addAction(a.open_camera)
    tools.addWidget(a.camera_combo)
    tools.addAction(a.reopen)
    tools.addSeparator()
    tools.addAction(a.record)
    tools.addAction(a.export)
    window.addToolBar(tools)
    a.toolbar = tools
    return a
