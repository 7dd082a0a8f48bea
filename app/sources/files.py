"""File sources read on the caller's thread, in order, with nothing dropped: the consumer sets the pace.

Offline runs (export, evaluation) must match their input frame for frame, so a slow pipeline simply
takes longer here; the newest-frame-wins behaviour belongs to live sources only.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import cv2
import numpy as np

from app.sources.base import (
    DEFAULT_FPS,
    Source,
    SourceError,
    early_end_message,
    quiet_opencv_log,
    sane_count,
    sane_fps,
)
from app.types import Frame
from sdpose_core.media import IMAGE_EXTENSIONS

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "VideoFileSource",
    "natural_key",
    "open_video_capture",
    "undecodable_error",
]

logger = logging.getLogger(__name__)


def natural_key(path: Path) -> list[str | int]:
    """Sort key putting "frame2" before "frame10" (digits compare as numbers)."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)]


def open_video_capture(path: Path) -> tuple[cv2.VideoCapture, float | None, int | None]:
    """Open a video file with OpenCV, returning (capture, fps or None, frame count or None)."""
    with quiet_opencv_log():
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise SourceError(
            f"cannot open video {path} (not a video file, or damaged? try playing it elsewhere)"
        )
    return cap, sane_fps(cap.get(cv2.CAP_PROP_FPS)), sane_count(cap.get(cv2.CAP_PROP_FRAME_COUNT))


def undecodable_error(path: Path) -> SourceError:
    return SourceError(
        f"cannot decode video {path} (damaged, or a codec this OpenCV lacks? try re-encoding to H.264)"
    )


class VideoFileSource(Source):
    """A video file, every frame in order; timestamps come from the file's own timeline.

    `seek()` may be called from another thread (the GUI timeline) while a worker iterates; a lock keeps
    the read and the seek apart.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        cap, fps, count = open_video_capture(path)
        super().__init__(path.name, fps=fps, frame_count=count, is_live=False)
        self.path = path
        self._cap = cap
        self._lock = threading.Lock()
        self._next_index = 0
        self._ended = False
        # Decode the first frame now so an unreadable file fails at open, not in the middle of a run.
        self._pending = self._read()
        if self._pending is None:
            cap.release()
            raise undecodable_error(path)
        h, w = self._pending.image.shape[:2]
        logger.info("opened %s: %dx%d, %s fps, %s frames", path, w, h, fps, count)

    def _read(self) -> Frame | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        index = self._next_index
        self._next_index += 1
        return Frame(index, self._timestamp(index), image, self.name)

    def _timestamp(self, index: int) -> float:
        """Seconds on the file's timeline: the decoder's position if sane, else index / fps."""
        ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if np.isfinite(ms) and ms >= 0.0 and (ms > 0.0 or index == 0):
            return ms / 1000.0
        return index / (self._fps or DEFAULT_FPS)

    def __next__(self) -> Frame:
        with self._lock:
            if self._closed or self._ended:
                raise StopIteration
            frame, self._pending = self._pending, None
            if frame is None:
                frame = self._read()
            if frame is None:
                self._ended = True
                self.error = early_end_message(self._next_index, self._frame_count)
                if self.error:
                    logger.warning("%s: %s", self.path, self.error)
                raise StopIteration
            return frame

    def seek(self, index: int) -> None:
        """Make the next frame yielded be frame `index` (clamped to the file), e.g. for a GUI timeline."""
        with self._lock:
            if self._closed:
                raise SourceError(f"cannot seek {self.name}: the source is closed (open it again)")
            index = max(0, int(index))
            if self._frame_count is not None:
                index = min(index, self._frame_count - 1)
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._next_index = index
            self._pending = None
            self._ended = False
            self.error = None

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pending = None
                self._cap.release()


def _read_image(path: Path) -> np.ndarray | None:
    """Decode an image file to BGR uint8 (also for non-ASCII paths on Windows); None if unreadable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
        if data.size == 0:
            return None
        with quiet_opencv_log():
            return cv2.imdecode(data, cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        return None


class ImageSource(Source):
    """An image folder (natural sort order) or a single image, as frames at a nominal `fps`.

    `fps` (default 30) only sets the timestamps, index / fps, which the tracker and smoothers use as time.
    `Frame.index` is the image's position in the sorted list, so unreadable images, which are skipped
    with a warning and counted in `dropped_frames`, leave a gap in the indices.
    """

    def __init__(self, path: str | Path, *, fps: float = DEFAULT_FPS) -> None:
        path = Path(path)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if path.is_dir():
            paths = sorted(
                (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
                key=natural_key,
            )
            if not paths:
                exts = " ".join(sorted(IMAGE_EXTENSIONS))
                raise SourceError(f"no images in folder {path} (expected files ending in {exts})")
        else:
            paths = [path]
        super().__init__(path.name, fps=float(fps), frame_count=len(paths), is_live=False)
        self.path = path
        self.paths: list[Path] = paths
        self._image_fps = float(fps)
        self._next_index = 0
        self._first: np.ndarray | None = None
        if not path.is_dir():
            # A single image is the whole source: fail at open rather than yield nothing.
            self._first = _read_image(path)
            if self._first is None:
                raise SourceError(f"cannot read image {path} (damaged, or not an image?)")
        logger.info("opened %s: %d image(s) at %g fps", path, len(paths), fps)

    def __next__(self) -> Frame:
        while not self._closed and self._next_index < len(self.paths):
            index = self._next_index
            self._next_index += 1
            image = self._first if self._first is not None else _read_image(self.paths[index])
            self._first = None
            if image is None:
                self._dropped += 1
                logger.warning("skipping unreadable image %s", self.paths[index])
                continue
            return Frame(index, index / self._image_fps, image, self.name, self.paths[index].name)
        if not self._closed and self._dropped == len(self.paths) and self.error is None:
            self.error = f"none of the {len(self.paths)} images in {self.path} could be read"
            logger.warning("%s", self.error)
        raise StopIteration

    def close(self) -> None:
        self._closed = True
        self._first = None
