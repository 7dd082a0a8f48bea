"""Start the desktop app: one `QApplication`, the main window, and a safety net for exceptions.

An exception that escapes a slot would make PyQt abort the process; the hook installed here logs
it and shows it in a dialog instead, so the window stays up. Ctrl+C in the terminal, or SIGTERM,
closes the window cleanly (the worker stops, a recording is finished, settings are saved) and the
exit code says which signal it was (130, 143).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from types import TracebackType

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox, QWidget

from app.gui.main_window import MainWindow
from app.pipeline import AppConfig

__all__ = ["run_app", "install_excepthook"]

logger = logging.getLogger(__name__)


def install_excepthook(parent: QWidget | None) -> None:
    """Unexpected exceptions become a log entry and a non-modal dialog, not a crash."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        logger.error("unexpected error: %s", "".join(traceback.format_exception(kind, exc, tb)).rstrip())
        line = (str(exc).strip().splitlines() or [kind.__name__])[0]
        if QApplication.instance() is not None:
            box = QMessageBox(
                QMessageBox.Icon.Critical,
                "sdpose-app",
                f"Unexpected error: {line}\n\nThe app keeps running; details are in the log.",
                parent=parent,
            )
            box.setModal(False)
            box.show()

    sys.excepthook = hook


def run_app(args: argparse.Namespace, cfg: AppConfig) -> int:
    """Show the window until it is closed (or `--exit-after-frames` is reached); returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("sdpose-app")
    app.setOrganizationName("sdpose-app")
    previous_hook = sys.excepthook
    try:
        window = MainWindow(args, cfg)
    except Exception as exc:  # settings or Qt trouble: one line, never a traceback
        logger.debug("window failed to start", exc_info=True)
        print(f"error: the window could not start: {exc}", file=sys.stderr)
        return 1
    install_excepthook(window)
    received: list[int] = []

    def close_on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        window.close()

    previous = {sig: signal.signal(sig, close_on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    heartbeat = QTimer()  # lets Python run its signal handlers while Qt's loop is in C++
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)
    try:
        window.show()
        code = app.exec()
        window.shutdown()
        return 128 + received[0] if received else window.exit_code or code
    finally:
        heartbeat.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.excepthook = previous_hook
