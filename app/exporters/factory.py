"""Build the writers a run asked for, from CLI-style options, in one call."""

from __future__ import annotations

from typing import Literal

from app.draw import DrawStyle
from app.exporters.base import Writer
from app.exporters.coco import CocoWriter
from app.exporters.jsonl import JsonlWriter
from app.exporters.openpose import OpenPoseWriter
from app.exporters.video import VideoWriter

__all__ = ["FORMATS", "open_writers", "close_writers", "finish_writers"]

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
        finish_writers(writers, complete=False)  # the open failure is the error worth reporting
        raise
    return writers


def finish_writers(writers: list[Writer], complete: bool = True) -> tuple[list[str], list[Exception]]:
    """Close every writer even if one fails (each holds a file worth saving).

    `complete=False`: the run ended early, so an existing file is kept as a backup
    (`app.exporters.staging`). Returns the outputs that now hold frames and the failures."""
    kept: list[str] = []
    failures: list[Exception] = []
    for writer in writers:
        try:
            writer.close(complete)
        except Exception as e:  # reported by the caller, after the others are closed
            failures.append(e)
            continue
        if writer.frames_written:
            kept.append(str(getattr(writer, "path", None) or getattr(writer, "out_dir", "")))
    return kept, failures


def close_writers(writers: list[Writer], complete: bool = True) -> None:
    """`finish_writers`, then the first failure is raised (after all are closed)."""
    _, failures = finish_writers(writers, complete)
    if failures:
        raise failures[0]
