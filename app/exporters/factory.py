"""Build the writers a run asked for, from CLI-style options, in one call."""

from __future__ import annotations

import contextlib
import logging
from typing import Literal

from app.draw import DrawStyle
from app.exporters.base import Writer
from app.exporters.coco import CocoWriter
from app.exporters.jsonl import JsonlWriter
from app.exporters.openpose import OpenPoseWriter
from app.exporters.video import VideoWriter

__all__ = ["FORMATS", "open_writers", "close_writers"]

logger = logging.getLogger(__name__)

Format = Literal["jsonl", "coco", "openpose"]
FORMATS: tuple[str, ...] = ("jsonl", "coco", "openpose")


def open_writers(
    output: str | None,
    fmt: Format,
    save_video: str | None,
    fps: float,
    frame_size: tuple[int, int] | None,
    name: str,
    style: DrawStyle | None = None,
    paced_video: bool = False,
) -> list[Writer]:
    """Open the pose writer (`output` in `fmt`; a directory for openpose) and/or the video writer.

    All paths are checked here, before any inference; if one fails, those already opened are
    closed and the `OutputError` propagates.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (choose one of {', '.join(FORMATS)})")
    writers: list[Writer] = []
    try:
        if output:
            if fmt == "jsonl":
                writers.append(JsonlWriter(output))
            elif fmt == "coco":
                writers.append(CocoWriter(output))
            else:
                writers.append(OpenPoseWriter(output, name))
        if save_video:
            if frame_size is None:
                raise ValueError("a video needs the frame size (width, height)")
            writers.append(VideoWriter(save_video, fps, frame_size, style, paced=paced_video))
    except BaseException:
        with contextlib.suppress(Exception):  # the open failure is the error worth reporting
            close_writers(writers)
        raise
    return writers


def close_writers(writers: list[Writer]) -> None:
    """Close every writer even if one fails; the first failure is re-raised after the rest close."""
    first: Exception | None = None
    for writer in writers:
        try:
            writer.close()
        except Exception as e:  # keep closing the others: each holds a file worth saving
            logger.error("closing %s failed: %s", type(writer).__name__, e)
            first = first or e
    if first is not None:
        raise first
