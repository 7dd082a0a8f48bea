"""Live sources: a daemon thread reads a capture continuously into a one-slot buffer; newest frame wins.

When the consumer (inference) is slower than the camera, an unread frame is replaced by the next one and
counted in `dropped_frames`, so what the user sees is never more than one frame old and latency never
grows (Ultralytics `LoadStreams` with buffer=False). A queue would instead fall further behind each
second.

`ReplaySource` feeds a video file through this same code, sleeping to keep the file's frame rate, so the
camera path (drops, timing, shutdown) can be exercised on a machine without a camera.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2

from app.sources.base import DEFAULT_FPS, Source, SourceError, early_end_message, quiet_opencv_log, sane_fps
from app.sources.files import open_video_capture, undecodable_error
from app.types import Frame

__all__ = ["CameraSource", "LiveSource", "ReplaySource", "StreamSource", "redact_url"]

logger = logging.getLogger(__name__)


class LiveSource(Source):
    """Frames from `cap`, read on a daemon thread; `next()` returns the newest frame not yet returned.

    Timestamps are seconds since the source started (monotonic clock). Indices count the frames the
    reader got, so a gap between two received indices is the number of frames dropped.

    Args:
        cap: an opened capture; the reader thread owns it from now on and releases it when it stops.
        name: `Frame.source_id`.
        what: how messages name the source ("camera 0").
        pace_fps: replay only: hold frame i back until i / pace_fps seconds after the start.
        first_frame_timeout_s: the constructor waits this long for a first frame, else `SourceError`.
        stall_timeout_s: iteration ends (with `error` set) after this long without a new frame.
        max_read_failures: consecutive failed reads after which the device counts as gone.
    """

    def __init__(
        self,
        cap: cv2.VideoCapture,
        *,
        name: str,
        what: str,
        fps: float | None,
        frame_count: int | None = None,
        pace_fps: float | None = None,
        first_frame_timeout_s: float = 10.0,
        stall_timeout_s: float = 10.0,
        max_read_failures: int = 25,
        no_frame_message: str | None = None,
    ) -> None:
        super().__init__(name, fps=fps, frame_count=frame_count, is_live=True)
        self._cap = cap
        self._what = what
        self._pace_fps = pace_fps
        self._stall_timeout_s = stall_timeout_s
        self._max_read_failures = max_read_failures
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._slot: Frame | None = None
        self._ended = False
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._reader, name=f"source-{name}", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or self._ended, first_frame_timeout_s)
            ok, ended = self._slot is not None, self._ended
        if not ok:
            self.close()
            waited = "" if ended else f" within {first_frame_timeout_s:g} s"
            raise SourceError(
                no_frame_message or f"{what} opened but sent no frame{waited} (in use by another program?)"
            )

    def _reader(self) -> None:
        """Read until stopped or the capture fails; all errors end here, never in the consumer raw."""
        cap, index, failures = self._cap, 0, 0
        try:
            while not self._stop.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    if self._stop.is_set():
                        break
                    if self._pace_fps is not None:  # replay: the file ended (or is damaged)
                        self.error = early_end_message(index, self._frame_count)
                        break
                    failures += 1
                    if failures >= self._max_read_failures:
                        self.error = f"{self._what} stopped sending frames (unplugged or disconnected?)"
                        break
                    self._stop.wait(0.01)
                    continue
                failures = 0
                if self._pace_fps is not None:
                    delay = self._t0 + index / self._pace_fps - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                frame = Frame(index, time.monotonic() - self._t0, image, self._name)
                with self._cond:
                    if self._slot is not None:
                        self._dropped += 1
                    self._slot = frame
                    self._cond.notify_all()
                index += 1
        except Exception as exc:  # a backend fault must end the source, not kill the app silently
            logger.exception("%s: reader failed", self._what)
            self.error = f"{self._what} failed while reading: {exc}".splitlines()[0]
        finally:
            cap.release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            if self.error and not self._stop.is_set():
                logger.warning("%s: %s", self._name, self.error)

    def __next__(self) -> Frame:
        with self._cond:
            deadline = time.monotonic() + self._stall_timeout_s
            while self._slot is None and not self._ended and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.error = (
                        f"{self._what} sent no frame for {self._stall_timeout_s:g} s"
                        " (unplugged or disconnected?)"
                    )
                    logger.warning("%s: %s", self._name, self.error)
                    self._stop.set()
                    self._ended = True
                    break
                self._cond.wait(remaining)
            if self._slot is None or self._closed:
                raise StopIteration
            frame, self._slot = self._slot, None
            return frame

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the reader and wait up to `timeout_s` for it; it releases the capture as it exits.

        A read blocked inside a driver cannot be interrupted; the daemon thread then releases the capture
        when that read returns, and the process can still exit.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._slot = None
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning(
                    "%s: reader thread still blocked after %g s; left to exit", self._what, timeout_s
                )


def _open_camera(index: int) -> cv2.VideoCapture:
    with quiet_opencv_log():
        cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        other = 1 if index == 0 else 0
        raise SourceError(
            f"no camera at index {index} (is one plugged in? try --source {other}, or a video file)"
        )
    return cap


class CameraSource(LiveSource):
    """A local camera by index ("webcam" is index 0)."""

    def __init__(self, index: int = 0, **kwargs: Any) -> None:
        cap = _open_camera(index)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue would add latency too
        fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
        super().__init__(cap, name=f"webcam:{index}", what=f"camera {index}", fps=fps, **kwargs)
        self.index = index


def redact_url(url: str) -> str:
    """The URL without user:password, for names, logs and messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


class StreamSource(LiveSource):
    """A network stream (rtsp://, rtmp://, http(s)://) through OpenCV's FFmpeg backend.

    `open_timeout_s` bounds both connecting and each read, so a dead address fails at open instead of
    hanging the app.
    """

    def __init__(self, url: str, *, open_timeout_s: float = 10.0, **kwargs: Any) -> None:
        safe = redact_url(url)
        params: list[int] = []
        for prop in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
            if hasattr(cv2, prop):
                params += [getattr(cv2, prop), int(open_timeout_s * 1000)]
        with quiet_opencv_log():
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open stream {safe} (check the address and that the camera/server is up)"
            )
        kwargs.setdefault("first_frame_timeout_s", open_timeout_s)
        fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
        super().__init__(cap, name=safe, what=f"stream {safe}", fps=fps, **kwargs)
        self.url = url


class ReplaySource(LiveSource):
    """A video file played at its own frame rate through the live code: newest frame wins, drops counted.

    `frame_count` is the file's; timestamps are wall-clock seconds since the start, as for a camera.
    Iteration ends when the file ends (`error` is set if it ended early). No seeking.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        path = Path(path)
        cap, fps, count = open_video_capture(path)
        pace = fps or DEFAULT_FPS
        kwargs.setdefault("stall_timeout_s", max(10.0, 5.0 / pace))
        super().__init__(
            cap,
            name=path.name,
            what=f"replay of {path.name}",
            fps=pace,
            frame_count=count,
            pace_fps=pace,
            no_frame_message=str(undecodable_error(path)),
            **kwargs,
        )
        self.path = path
