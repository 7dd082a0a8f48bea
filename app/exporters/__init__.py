"""Output writers: JSON Lines, COCO results, OpenPose per-frame JSON and annotated video.

All JSON formats derive from `frame_to_dict`, the one serialisation point; all writers share
`write(result)` / `close()` and raise `OutputError` at open time for unwritable paths.
"""

from __future__ import annotations

from app.exporters.base import OutputError, Writer
from app.exporters.coco import CocoWriter, coco_entries
from app.exporters.factory import FORMATS, close_writers, finish_writers, open_writers
from app.exporters.jsonl import JsonlWriter
from app.exporters.openpose import OPENPOSE18_FROM_COCO17, OpenPoseWriter, openpose_dict
from app.exporters.schema import frame_from_dict, frame_to_dict
from app.exporters.video import VideoWriter

__all__ = [
    "FORMATS",
    "OPENPOSE18_FROM_COCO17",
    "CocoWriter",
    "JsonlWriter",
    "OpenPoseWriter",
    "OutputError",
    "VideoWriter",
    "Writer",
    "close_writers",
    "coco_entries",
    "finish_writers",
    "frame_from_dict",
    "frame_to_dict",
    "open_writers",
    "openpose_dict",
]
