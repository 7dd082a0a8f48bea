"""JSON Lines: one `frame_to_dict` object per line, flushed per frame, so a crash keeps finished frames."""

from __future__ import annotations

import contextlib
import json
import logging
import os

from app.exporters.base import WriterBase, output_error, prepare_file
from app.exporters.schema import frame_to_dict
from app.exporters.staging import StagedFile
from app.types import FrameResult

__all__ = ["JsonlWriter"]

logger = logging.getLogger(__name__)


class JsonlWriter(WriterBase):
    """Stream frames to a .jsonl file.

    The file is unbuffered: each line is encoded whole and handed to the OS in one write, so a
    reader (or a killed process) never sees a half line. When a write fails (a full disk), the
    file is cut back to the end of the last whole line before the error is raised, so every
    line in it parses. No fsync: this guards against process death, not power loss. An existing
    file is replaced only by a finished run (`StagedFile`).
    """

    def __init__(self, path: str | os.PathLike[str], option: str = "--output") -> None:
        self.path = prepare_file(path, option)
        self._option = option
        self._staged = StagedFile(self.path, option)
        try:
            self._file = open(self._staged.path, "wb", buffering=0)
        except OSError as e:
            raise output_error(path, e, option) from None
        self._size = 0  # bytes of whole lines on disk
        self._failed = False
        self.frames_written = 0
        logger.info("writing JSON Lines to %s", self.path)

    def write(self, result: FrameResult) -> None:
        """Append one line for this frame and hand it to the OS before returning."""
        if self._file.closed or self._failed:
            raise ValueError(f"{self.path} is closed")
        line = json.dumps(frame_to_dict(result), separators=(",", ":"), allow_nan=False) + "\n"
        data = memoryview(line.encode("utf-8"))
        size = len(data)
        try:
            while data:
                written = self._file.write(data)
                data = data[written:]
        except OSError as e:
            self._failed = True
            with contextlib.suppress(OSError):  # cutting a file frees space: this works on a full disk
                self._file.truncate(self._size)
            raise output_error(self.path, e, self._option) from None
        self._size += size
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        """Close the file and put it in place (idempotent)."""
        if not self._file.closed:
            self._file.close()
            self._staged.finish(self.frames_written, complete and not self._failed)
