"""The `Source` contract shared by every frame source, its error type, and OpenCV helpers.

A source is an iterator of `Frame` that owns an OpenCV capture (or a file list), so it has `close()` and
works as a context manager. Expected failures raise `SourceError` with one line that says what to do,
which the CLI and GUI show as-is.
"""

from __future__ import annotations

import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

import cv2

from app.types import Frame
from sdpose_core.errors import SDPoseError

__all__ = ["DEFAULT_FPS", "Source", "SourceError"]

logger = logging.getLogger(__name__)

# Frame rate assumed for image folders, and for videos whose container states none.
DEFAULT_FPS = 30.0

# FFmpeg prints its own lines ("Connection refused", "Invalid NAL unit size") straight to stderr; our
# SourceError / `error` line already says what went wrong. OpenCV reads this when its FFmpeg backend starts
# (the first VideoCapture), so it must be set before that. -8 is AV_LOG_QUIET; set
# OPENCV_FFMPEG_LOGLEVEL=24 (warning) in the environment to see FFmpeg's messages again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class SourceError(SDPoseError, RuntimeError):
    """An expected failure to open or read a source; the message is one line saying what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class Source(ABC):
    """An iterator of `Frame`s; close it (or use `with`) to release the capture and stop any thread.

    Attributes:
        error: None, or one line saying why the source ended before its end (damaged file, camera
            unplugged). Iteration itself ends without an exception, so frames already produced are kept.
    """

    def __init__(self, name: str, *, fps: float | None, frame_count: int | None, is_live: bool) -> None:
        self._name = name
        self._fps = fps
        self._frame_count = frame_count
        self._is_live = is_live
        self._dropped = 0
        self._closed = False
        self.error: str | None = None

    @property
    def name(self) -> str:
        """Short id used as `Frame.source_id` (file name, "webcam:0", stream address)."""
        return self._name

    @property
    def fps(self) -> float | None:
        """Nominal frame rate, or None when the device or container does not say."""
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """Number of frames for files and folders; None for cameras and streams."""
        return self._frame_count

    @property
    def is_live(self) -> bool:
        """True when frames arrive on their own clock and the newest one wins (camera, stream, replay)."""
        return self._is_live

    @property
    def dropped_frames(self) -> int:
        """Frames the consumer never got: overwritten live frames, or unreadable images in a folder."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> Iterator[Frame]:
        return self

    @abstractmethod
    def __next__(self) -> Frame: ...

    @abstractmethod
    def close(self) -> None:
        """Release the capture (and stop the reader thread); safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self._name!r} {state}>"


@contextmanager
def quiet_opencv_log() -> Iterator[None]:
    """Silence OpenCV's own log while probing a device: a missing camera should print our one line only.

    The level is process-wide, so this is kept to the few milliseconds of an open call.
    """
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(old)


def sane_fps(value: float) -> float | None:
    """OpenCV reports 0, NaN or absurd rates when it does not know; map those to None."""
    return float(value) if math.isfinite(value) and 0.0 < value <= 1000.0 else None


def sane_count(value: float) -> int | None:
    """Frame count from CAP_PROP_FRAME_COUNT, or None when unknown (0, negative, NaN)."""
    return int(value) if math.isfinite(value) and value >= 1 else None


def early_end_message(produced: int, frame_count: int | None) -> str | None:
    """One line if a file stopped well before its stated length, else None.

    Some containers only estimate their frame count from duration x fps, so a shortfall of 1 % (at least
    2 frames) is taken as a normal end rather than damage.
    """
    if frame_count is None or produced >= frame_count - max(2, frame_count // 100):
        return None
    return f"video ended early at frame {produced} of {frame_count} (file damaged?)"
