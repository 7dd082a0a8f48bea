"""Bookkeeping of one viewing session, free of Qt so it can be tested and reasoned about alone.

* `StatsMeter`: rolling capture / inference rates and per-stage latency for the stats panel.
* `SessionLog`: every processed frame streamed to a temporary JSON Lines file (so an hour of
  camera does not sit in memory), exported on request in the headless `--output` schema.
* `Recorder`: the annotated video being recorded, opened with the first frame after `start`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path

from app.draw import DrawStyle
from app.exporters import JsonlWriter, OutputError, VideoWriter
from app.exporters.base import atomic_write_text, output_error, prepare_file
from app.types import FrameResult

__all__ = ["StatsMeter", "SessionLog", "Recorder", "POSE_STAGES"]

logger = logging.getLogger(__name__)

# Engine timings that together make up "pose" in the stats panel.
POSE_STAGES = ("crop", "pose", "decode")


class StatsMeter:
    """Rates over the last `window_s` seconds; latency means over the frames in that window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self.reset()

    def reset(self) -> None:
        self._captured: deque[float] = deque()
        self._processed: deque[tuple[float, float, float, float, int]] = deque()
        self.people = 0
        self.frame_index = -1
        self.frame_count = 0  # frames processed since the last reset

    def _trim(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._captured and self._captured[0] < cutoff:
            self._captured.popleft()
        while self._processed and self._processed[0][0] < cutoff:
            self._processed.popleft()

    def captured(self, count: int = 1, now: float | None = None) -> None:
        """`count` frames arrived from the source (a live source's drops count as arrivals)."""
        now = time.perf_counter() if now is None else now
        self._captured.extend([now] * max(count, 0))
        self._trim(now)

    def processed(self, result: FrameResult, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        t = result.timings
        detect = float(t.get("detect", 0.0))
        pose = sum(float(t.get(k, 0.0)) for k in POSE_STAGES)
        self._processed.append((now, detect, pose, float(t.get("track", 0.0)), 1 if detect > 0 else 0))
        self.people = len(result)
        self.frame_index = result.frame.index
        self.frame_count += 1
        self._trim(now)

    @staticmethod
    def _rate(stamps: list[float]) -> float:
        if len(stamps) < 2:
            return 0.0
        span = stamps[-1] - stamps[0]
        return (len(stamps) - 1) / span if span > 0 else 0.0

    def snapshot(self, now: float | None = None) -> dict[str, float]:
        """`capture_fps`, `inference_fps`, `detect_ms` (mean over frames that ran the detector),
        `pose_ms`, `track_ms`, `people`, `frame`."""
        now = time.perf_counter() if now is None else now
        self._trim(now)
        rows = list(self._processed)
        detected = [r[1] for r in rows if r[4]]
        n = max(len(rows), 1)
        return {
            "capture_fps": self._rate(list(self._captured)),
            "inference_fps": self._rate([r[0] for r in rows]),
            "detect_ms": sum(detected) / len(detected) if detected else 0.0,
            "pose_ms": sum(r[2] for r in rows) / n,
            "track_ms": sum(r[3] for r in rows) / n,
            "people": float(self.people),
            "frame": float(self.frame_index),
        }


class SessionLog:
    """Processed frames of the current source, streamed to a temp `.jsonl` as they come.

    Seeking back and replaying writes a frame twice; `export` keeps the newest record of each
    frame, in frame order, so the file matches what a headless run over the same frames writes.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="sdpose-session-"))
        self._owns_dir = directory is None
        self._writer: JsonlWriter | None = None
        self.frames = 0

    @property
    def path(self) -> Path:
        return self._dir / "session.jsonl"

    def start(self) -> None:
        """Begin a new session (a new source): earlier frames are forgotten."""
        self.close()
        self.path.unlink(missing_ok=True)  # our own temp file: the new session starts it afresh
        self._writer = JsonlWriter(self.path, option="temporary folder")
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        if self._writer is None:
            self.start()
        assert self._writer is not None
        self._writer.write(result)
        self.frames += 1

    def export(self, destination: str | os.PathLike[str]) -> int:
        """Write the session's frames to `destination` (atomically); returns the number of frames."""
        dest = prepare_file(destination, "file name")
        records: dict[int, str] = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        records[int(json.loads(line)["frame"])] = line if line.endswith("\n") else line + "\n"
        try:
            atomic_write_text(dest, "".join(records[index] for index in sorted(records)))
        except OSError as e:
            raise output_error(destination, e, "file name") from None
        logger.info("exported %d frames of keypoints to %s", len(records), dest)
        return len(records)

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OutputError, OSError):
                self._writer.close()
            self._writer = None

    def cleanup(self) -> None:
        """Close and delete the temporary folder (when the window closes)."""
        self.close()
        if self._owns_dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class Recorder:
    """Records drawn frames with `VideoWriter`; the file opens on the first frame after `start`,
    when the frame size is known, and takes the draw style of the moment (threshold, boxes)."""

    def __init__(self) -> None:
        self.pending: str | None = None
        self.writer: VideoWriter | None = None
        self.style = DrawStyle()

    @property
    def active(self) -> bool:
        return self.pending is not None or self.writer is not None

    def start(self, path: str) -> None:
        self.stop()
        self.pending = path

    def set_style(self, style: DrawStyle) -> None:
        self.style = style
        if self.writer is not None:
            self.writer.style = style

    def write(self, result: FrameResult, fps: float) -> None:
        """Append one frame; raises `OutputError` (unwritable path) or `ValueError`."""
        if self.pending is not None:
            path, self.pending = self.pending, None
            h, w = result.frame.image.shape[:2]
            self.writer = VideoWriter(path, fps, (w, h), self.style, option="file name")
        if self.writer is not None:
            self.writer.write(result)

    def stop(self) -> VideoWriter | None:
        """Close the file; returns the closed writer (None if nothing was written)."""
        self.pending = None
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
        return writer
