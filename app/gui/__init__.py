"""The desktop app (`python main.py --source webcam`): a PyQt6 window over the pose pipeline.

`run_app(args, cfg)` is what `app.cli` calls; `MainWindow` is the window itself (tests build it
directly), `PoseWorker` the capture + inference loop it runs on a `QThread`.
"""

from __future__ import annotations

from app.gui.launch import run_app
from app.gui.main_window import MainWindow
from app.gui.worker import PoseWorker, WorkerState

__all__ = ["MainWindow", "PoseWorker", "WorkerState", "run_app"]
