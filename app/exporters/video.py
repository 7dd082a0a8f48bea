"""Annotated video via cv2.VideoWriter (mp4v for .mp4, MJPG for .avi: the codecs that work here).

OpenCV never reports a failed write (a full disk leaves an mp4 without its index, which no
player opens), so a closed video is read back: one that does not hold every frame written is
removed and reported as an `OutputError`, never left behind as if it were fine.
"""

from __future__ import annotations

import logging
import os
import shutil

import cv2
import numpy as np

from app.draw import DrawStyle, draw_poses
from app.exporters.base import WriterBase, output_error, prepare_file
from app.exporters.staging import StagedFile
from app.types import FrameResult

__all__ = ["VideoWriter", "FOURCC_BY_SUFFIX", "video_fourcc"]

logger = logging.getLogger(__name__)

# avc1/H264 fail with the pip OpenCV build (no licensed encoder); mp4v and MJPG work everywhere.
FOURCC_BY_SUFFIX: dict[str, str] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
LOW_SPACE_BYTES = 1 << 20  # less than this left on the disk: a video that could not be finished ran out


def video_fourcc(path: str | os.PathLike[str], option: str = "--save-video") -> str:
    """The codec for `path`'s extension; `OutputError` for one OpenCV cannot write here."""
    fourcc = FOURCC_BY_SUFFIX.get(os.path.splitext(path)[1].lower())
    if fourcc is None:
        known = ", ".join(FOURCC_BY_SUFFIX)
        raise output_error(path, f"unsupported video extension (use one of {known})", option)
    return fourcc


class VideoWriter(WriterBase):
    """Draw each result on a copy of its frame and append it to a video file.

    Args:
        path: .mp4/.m4v/.mov (mp4v) or .avi (MJPG).
        fps: frames per second written into the container.
        frame_size: (width, height); frames of another size are resized to it.
        style: drawing style (default `DrawStyle()`).
        paced: place frames by their timestamps (live sources drop frames, so writing one video
            frame per result would play too fast): a frame is repeated to fill the time gap.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        frame_size: tuple[int, int],
        style: DrawStyle | None = None,
        option: str = "--save-video",
        paced: bool = False,
    ) -> None:
        fourcc = video_fourcc(path, option)
        self.path = prepare_file(path, option)
        width, height = (int(v) for v in frame_size)
        if width <= 0 or height <= 0 or not fps > 0:
            raise ValueError(f"video needs a positive size and fps, got {frame_size} at {fps} fps")
        self.frame_size = (width, height)
        self.style = style if style is not None else DrawStyle()
        self._option = option
        self._staged = StagedFile(self.path, option)
        work = self._staged.path
        try:  # OpenCV only says "not opened"; a plain open first gives the real reason
            work.open("ab").close()
        except OSError as e:
            raise output_error(path, e, option) from None
        self._writer = cv2.VideoWriter(
            str(work), cv2.VideoWriter.fourcc(*fourcc), float(fps), (width, height)
        )
        if not self._writer.isOpened():
            self._staged.discard()
            raise output_error(path, f"OpenCV cannot open a {fourcc} video writer", option)
        self._warned_resize = False
        self.frames_written = 0
        self.fps = float(fps)
        self.paced = paced
        self._t0: float | None = None
        logger.info("writing %s video %dx%d @ %.3g fps to %s", fourcc, width, height, fps, self.path)

    def write(self, result: FrameResult) -> None:
        """Draw the poses on a copy of the frame and append it."""
        if self._writer is None:
            raise ValueError(f"{self.path} is closed")
        image = np.ascontiguousarray(result.frame.image).copy()
        if (image.shape[1], image.shape[0]) != self.frame_size:
            if not self._warned_resize:
                logger.warning(
                    "frame size %dx%d differs from the video's %dx%d; resizing",
                    image.shape[1],
                    image.shape[0],
                    *self.frame_size,
                )
                self._warned_resize = True
            image = cv2.resize(image, self.frame_size, interpolation=cv2.INTER_AREA)
            result = _scaled(result, self.frame_size)
        drawn = draw_poses(image, result, self.style)
        repeats = 1
        if self.paced:
            if self._t0 is None:
                self._t0 = result.frame.timestamp
            slot = int(round((result.frame.timestamp - self._t0) * self.fps))
            repeats = max(1, slot + 1 - self.frames_written)
        for _ in range(repeats):
            self._writer.write(drawn)
        self.frames_written += repeats

    def close(self, complete: bool = True) -> None:
        """Finish the container, check that it plays, and put it in place (idempotent).

        Raises `OutputError` (and removes the file) when it does not hold every frame written."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        problem = self._unplayable()
        if problem:
            self._staged.discard()
            raise output_error(self.path, f"{problem}; the unfinished video was removed", self._option)
        self._staged.finish(self.frames_written, complete)

    def _unplayable(self) -> str | None:
        """Why the finished file is not a playable video of `frames_written` frames, or None."""
        if self.frames_written == 0:
            return None
        work = self._staged.path
        cap = cv2.VideoCapture(str(work))
        readable = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if readable >= self.frames_written:
            return None
        if shutil.disk_usage(work.parent).free < LOW_SPACE_BYTES:
            return "no space left on device"
        return f"the video could not be finished ({readable} of {self.frames_written} frames readable)"


def _scaled(result: FrameResult, size: tuple[int, int]) -> FrameResult:
    """The same people in the coordinates of the resized frame (drawing only; no stage sees this)."""
    h, w = result.frame.image.shape[:2]
    sx, sy = size[0] / max(w, 1), size[1] / max(h, 1)
    scale = np.array([sx, sy], dtype=np.float32)
    return FrameResult(
        frame=result.frame,
        boxes=np.asarray(result.boxes, dtype=np.float32) * np.tile(scale, 2),
        box_scores=result.box_scores,
        keypoints=np.asarray(result.keypoints, dtype=np.float32) * scale,
        kpt_scores=result.kpt_scores,
        track_ids=result.track_ids,
        timings=result.timings,
    )
