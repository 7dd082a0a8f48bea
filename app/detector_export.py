"""The person detector through a faster runtime: Ultralytics' own export of a `.pt`, made once.

Ultralytics runs a `.pt` in eager PyTorch. Its own OpenVINO or ONNX export of the same model,
loaded back with `YOLO(...)`, keeps the same pre- and post-processing (letterbox, NMS) and the
same boxes, and costs less per call on a CPU (`benchmarks/bench_detector.py`). The export is
made once per model file and Ultralytics version into the app's cache (`SDPOSE_CACHE`), like the
pose model's ONNX file, with dynamic input sizes so every `--det-size` and frame shape reuses it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from app.environ import environ_for_block

__all__ = ["EXPORTS", "exported_detector"]

logger = logging.getLogger(__name__)

# "none" runs the .pt as it is; the others name Ultralytics export formats.
EXPORTS = ("none", "onnx", "openvino")
_SUFFIX = {"onnx": ".onnx", "openvino": "_openvino_model"}


# OpenVINO's model converter sends usage telemetry from a forked process unless it finds a CI
# variable (CI=true); the app never reaches for the network, and on an offline machine that
# process can hang in a DNS lookup and keep the command from exiting.
_NO_OPENVINO_TELEMETRY = {"CI": "true"}


def _cache_path(weights: Path, fmt: str) -> Path:
    from ultralytics import __version__ as ultralytics_version

    from app.engine import cache_dir

    stat = weights.stat()
    identity = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{fmt}:{ultralytics_version}"
    key = hashlib.sha1(identity.encode()).hexdigest()[:16]
    return cache_dir() / "detector" / f"{weights.stem}-{key}{_SUFFIX[fmt]}"


def exported_detector(weights: Path, fmt: str) -> Path:
    """`weights` exported by Ultralytics to `fmt` (cached), or `weights` itself when `fmt` is
    "none" or the file is already an export. Raises `RuntimeError` with one line on failure."""
    if fmt not in EXPORTS:
        raise ValueError(f"detector export {fmt!r} is not one of {', '.join(EXPORTS)}")
    if fmt == "none" or weights.suffix != ".pt":
        return weights
    target = _cache_path(weights, fmt)
    if target.exists():
        return target
    logger.info("exporting the person detector %s to %s (once): %s", weights.name, fmt, target)
    from ultralytics import YOLO

    target.parent.mkdir(parents=True, exist_ok=True)
    # Ultralytics writes the export beside the model file: give it a copy in a folder of ours
    # (the bundled model lies inside an installed package), then move the result into place.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        copy = Path(tmp) / weights.name
        shutil.copy2(weights, copy)
        try:
            extra = {"simplify": False} if fmt == "onnx" else {}  # onnxslim is not installed
            with warnings.catch_warnings(), environ_for_block(_NO_OPENVINO_TELEMETRY):
                warnings.simplefilter("ignore")  # torch's tracer deprecation notes, meant for Ultralytics
                made = Path(YOLO(str(copy)).export(format=fmt, dynamic=True, verbose=False, **extra))
        except Exception as exc:  # exporters raise many types; the .pt still works
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            advice = "set detector: export: none in configs/app.yaml"
            raise RuntimeError(f"cannot export the detector to {fmt} ({first}): {advice}") from None
        try:
            os.replace(made, target)
        except OSError:
            if not target.exists():  # else another process finished the same export first
                raise
    return target
