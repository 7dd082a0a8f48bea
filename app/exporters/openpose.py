"""OpenPose 1.3 per-frame JSON in the COCO-18 body layout (neck synthesised), for OpenPose-based tools."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from app.exporters.base import WriterBase, atomic_write_text, output_error, prepare_dir
from app.exporters.schema import PIXEL_DECIMALS, frame_to_dict
from app.types import FrameResult

__all__ = ["OpenPoseWriter", "openpose_dict", "OPENPOSE18_FROM_COCO17", "NECK"]

NECK = -1
# COCO-18 slot -> COCO-17 index (NECK = shoulder midpoint): nose, neck, r_sho, r_elb, r_wri,
# l_sho, l_elb, l_wri, r_hip, r_knee, r_ank, l_hip, l_knee, l_ank, r_eye, l_eye, r_ear, l_ear.
OPENPOSE18_FROM_COCO17: tuple[int, ...] = (0, NECK, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
_LEFT_SHOULDER, _RIGHT_SHOULDER = 5, 6
_EMPTY_PARTS = (
    "face_keypoints_2d",
    "hand_left_keypoints_2d",
    "hand_right_keypoints_2d",
    "pose_keypoints_3d",
    "face_keypoints_3d",
    "hand_left_keypoints_3d",
    "hand_right_keypoints_3d",
)

logger = logging.getLogger(__name__)


def _neck(keypoints: list[list[float]]) -> list[float]:
    """Shoulder midpoint with the weaker shoulder's confidence; zeros if either shoulder is missing."""
    ls, rs = keypoints[_LEFT_SHOULDER], keypoints[_RIGHT_SHOULDER]
    if ls[2] <= 0 or rs[2] <= 0:
        return [0.0, 0.0, 0.0]
    return [
        round((ls[0] + rs[0]) / 2, PIXEL_DECIMALS),
        round((ls[1] + rs[1]) / 2, PIXEL_DECIMALS),
        min(ls[2], rs[2]),
    ]


def openpose_dict(result: FrameResult) -> dict[str, Any]:
    """The OpenPose 1.3 JSON object for one frame (54 pose numbers per person)."""
    people = []
    for person in frame_to_dict(result)["people"]:
        kpts = person["keypoints"]
        neck = _neck(kpts)
        pose = [v for k in OPENPOSE18_FROM_COCO17 for v in (neck if k == NECK else kpts[k])]
        entry: dict[str, Any] = {"person_id": [person["track_id"]], "pose_keypoints_2d": pose}
        entry.update({part: [] for part in _EMPTY_PARTS})
        people.append(entry)
    return {"version": 1.3, "people": people}


class OpenPoseWriter(WriterBase):
    """Write `<name>_<12-digit frame>_keypoints.json` per frame into `out_dir`, each file atomically."""

    def __init__(self, out_dir: str | os.PathLike[str], name: str, option: str = "--output") -> None:
        self.out_dir = prepare_dir(out_dir, option)
        self.name = name
        self._option = option
        self._closed = False
        self.frames_written = 0
        logger.info("writing OpenPose JSON files to %s", self.out_dir)

    def path_for(self, frame_index: int, image_name: str = "") -> Path:
        """The file for one frame, named as OpenPose's --write_json does: after the image for a
        folder of images, else `<video>_<12-digit frame>`."""
        if image_name:
            return self.out_dir / f"{Path(image_name).stem}_keypoints.json"
        return self.out_dir / f"{self.name}_{int(frame_index):012d}_keypoints.json"

    def write(self, result: FrameResult) -> None:
        """Write this frame's file (atomically: readers never see a partial file)."""
        if self._closed:
            raise ValueError(f"{self.out_dir} writer is closed")
        path = self.path_for(result.frame.index, result.frame.name)
        text = json.dumps(openpose_dict(result), separators=(",", ":"), allow_nan=False)
        try:
            atomic_write_text(path, text)
        except OSError as e:
            raise output_error(path, e, self._option) from None
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        """Nothing is held open (each frame's file is whole); marks the writer closed (idempotent)."""
        if not self._closed:
            self._closed = True
            logger.info("wrote %d OpenPose files to %s", self.frames_written, self.out_dir)
