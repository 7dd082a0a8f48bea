"""COCO keypoint results (one JSON array), kept valid on disk by periodic atomic rewrites."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.exporters.base import WriterBase, atomic_write_text, output_error, prepare_file
from app.exporters.schema import frame_to_dict
from app.exporters.staging import StagedFile
from app.types import FrameResult

__all__ = ["CocoWriter", "coco_entries"]

logger = logging.getLogger(__name__)


def coco_entries(result: FrameResult, image_id_offset: int = 0) -> list[dict[str, Any]]:
    """COCO results objects for one frame, category 1. `image_id` is the image's number when it
    comes from a folder of COCO-style files (`000000000785.jpg` -> 785), else frame index + offset."""
    record = frame_to_dict(result)
    stem = Path(result.frame.name).stem
    image_id = int(stem) if stem.isdigit() else record["frame"] + image_id_offset
    return [
        {
            "image_id": image_id,
            "category_id": 1,
            "keypoints": [v for triple in person["keypoints"] for v in triple],
            "score": person["score"],
            "track_id": person["track_id"],
        }
        for person in record["people"]
    ]


class CocoWriter(WriterBase):
    """Collect COCO results and rewrite the file atomically every `flush_interval` s and on close.

    A single JSON array cannot be appended safely, so an interrupted run keeps the last complete
    rewrite (at most ~`flush_interval` seconds lost). Entries are serialised once at `write`; the
    interval grows to 10x the last rewrite's duration so long videos don't spend their time on I/O.
    An existing file is replaced only by a finished run (`StagedFile`). `clock` is injectable for
    tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        image_id_offset: int = 0,
        flush_interval: float = 2.0,
        option: str = "--output",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = prepare_file(path, option)
        self._staged = StagedFile(self.path, option)
        self.image_id_offset = int(image_id_offset)
        self.flush_interval = float(flush_interval)
        self._option = option
        self._clock = clock
        self._chunks: list[str] = []
        self._dirty = False
        self._closed = False
        self.frames_written = 0
        self._frames_on_disk = 0
        self._interval = self.flush_interval
        self._last_flush = self._clock()
        self.flush(force=True)  # an empty but valid "[]" now, and proof that the directory is writable
        logger.info("writing COCO keypoint results to %s", self.path)

    def write(self, result: FrameResult) -> None:
        """Add this frame's people; rewrite the file if the flush interval has passed."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        for entry in coco_entries(result, self.image_id_offset):
            self._chunks.append(json.dumps(entry, separators=(",", ":"), allow_nan=False))
            self._dirty = True
        self.frames_written += 1
        if self._clock() - self._last_flush >= self._interval:
            self.flush()

    def flush(self, force: bool = False) -> None:
        """Atomically rewrite the whole array if anything changed (or `force`)."""
        if not (self._dirty or force):
            return
        start = self._clock()
        text = "[\n" + ",\n".join(self._chunks) + "\n]\n" if self._chunks else "[]\n"
        try:
            atomic_write_text(self._staged.path, text, fsync=True)
        except OSError as e:
            raise output_error(self.path, e, self._option) from None
        self._frames_on_disk = self.frames_written
        end = self._clock()
        self._dirty = False
        self._last_flush = end
        self._interval = max(self.flush_interval, 10.0 * (end - start))

    def close(self, complete: bool = True) -> None:
        """Final rewrite and put the file in place (idempotent). If the rewrite fails, the last
        complete one is kept and the error raised."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        except Exception:
            self._staged.finish(self._frames_on_disk, complete=False)
            raise
        what = f"{self.frames_written} frames ({len(self._chunks)} COCO results)"
        self._staged.finish(self.frames_written, complete, what)

    def __len__(self) -> int:
        return len(self._chunks)
