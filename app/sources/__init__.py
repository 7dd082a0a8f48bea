"""Frame sources: video files, image folders, cameras, network streams, and real-time file replay.

`open_source(spec)` picks the kind from what the user typed (`--source`). Every source is an iterator of
`Frame` with `close()`, context-manager support, and `name`, `fps`, `frame_count`, `is_live`,
`dropped_frames` and `error`.

* Files and image folders are read in order on the consumer's thread, nothing dropped (`files.py`).
* Cameras and streams are read on a daemon thread; the consumer gets the newest frame (`live.py`).
* `realtime=True` replays a file through the live code at the file's frame rate (`ReplaySource`).

Expected failures raise `SourceError` with one line that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.sources.base import DEFAULT_FPS, Source, SourceError
from app.sources.files import IMAGE_EXTENSIONS, ImageSource, VideoFileSource
from app.sources.live import CameraSource, LiveSource, ReplaySource, StreamSource

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_EXTENSIONS",
    "STREAM_SCHEMES",
    "CameraSource",
    "ImageSource",
    "LiveSource",
    "ReplaySource",
    "Source",
    "SourceError",
    "StreamSource",
    "VideoFileSource",
    "is_live_spec",
    "open_source",
]

STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://")


def _live_kind(text: str) -> int | str | None:
    """The camera index or stream URL that `text` names, or None when it names a path.

    Decided from the text alone: nothing is opened."""
    lowered = text.lower()
    if lowered == "webcam":
        return 0
    if lowered.startswith("webcam:") and lowered[7:].isdigit():
        return int(lowered[7:])
    if text.isdigit() and not Path(text).exists():  # a folder named "2024" is a folder
        return int(text)
    if lowered.startswith(STREAM_SCHEMES):
        return text
    return None


def is_live_spec(spec: str | int | os.PathLike[str]) -> bool:
    """Whether `spec` names a camera or a stream (frames on their own clock) rather than a path."""
    return isinstance(spec, int) or _live_kind(os.fspath(spec).strip()) is not None


def open_source(spec: str | int | os.PathLike[str], *, realtime: bool = False) -> Source:
    """Open what the user named: "webcam", a camera index, a stream URL, a folder, a video or an image.

    `"webcam"` is camera 0; `"0"`, `"1"`, `"webcam:1"` or an int pick a camera by index. `realtime=True`
    turns a video file into a `ReplaySource` (played at its own frame rate, newest frame wins); it has
    no effect on other kinds. Raises `SourceError` with a one-line hint on any expected failure.
    """
    if isinstance(spec, bool):
        raise TypeError("source must be a str, path or camera index, not bool")
    if isinstance(spec, int):
        return CameraSource(spec)
    text = os.fspath(spec).strip()
    live = _live_kind(text)
    if isinstance(live, int):
        return CameraSource(live)
    if live is not None:
        return StreamSource(live)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageSource(path)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSource(path)
        return ReplaySource(path) if realtime else VideoFileSource(path)
    raise SourceError(
        f"no such file or folder: {path} (check the path, or use 'webcam', a camera index or a stream URL)"
    )
