"""The one way the pose pipeline is built: from `configs/app.yaml` with the flags applied (the
command line, the batch, the benchmarks: `pipeline_from_config`) or from the window's settings
(`EngineSpec`, `build_pipeline`).

Changing the model, backend or weights from the window rebuilds only the engine (`build_engine`);
detector and tracker (with its ids) stay. Qt-free, so headless runs import it without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.detector import PersonDetector
from app.engine import PoseEngine
from app.pipeline import AppConfig, DetectionSchedule, PosePipeline
from app.refine import CropRefinement
from app.tracker import Tracker
from sdpose_core.errors import EXPECTED_ERRORS
from sdpose_core.quantize import QuantizeConfig

__all__ = [
    "BACKEND_CHOICES",
    "BUILD_ERRORS",
    "backend_choice",
    "DetectorFactory",
    "EngineSpec",
    "build_engine",
    "build_pipeline",
    "default_detector_factory",
    "pipeline_from_config",
]

logger = logging.getLogger(__name__)

# Failures that are the user's to fix (weights, model name, detector file): shown as one line.
BUILD_ERRORS = (*EXPECTED_ERRORS, ValueError)

DetectorFactory = Callable[[], Callable[[Any], Any]]

# The window's backend entries: ONNX Runtime's int8 model is a backend choice of its own there.
BACKEND_CHOICES: dict[str, str] = {
    "torch": "PyTorch",
    "onnx": "ONNX Runtime",
    "onnx-int8": "ONNX Runtime int8",
}


def backend_choice(backend: str, precision: str) -> str:
    """The window's entry for a backend and precision of `configs/app.yaml` or the flags."""
    return "onnx-int8" if backend == "onnx" and precision == "int8" else backend


@dataclass(frozen=True)
class EngineSpec:
    """Everything that decides which engine runs; equal specs mean no rebuild is needed."""

    model: str
    backend: str
    device: str
    weights: str | None
    threads: int | None = None
    precision: str = "fp32"
    int8: QuantizeConfig = field(default_factory=QuantizeConfig)
    spinning: bool = False

    @classmethod
    def from_config(cls, cfg: AppConfig, weights: str | None) -> EngineSpec:
        backend = backend_choice(cfg.backend, cfg.precision)
        threads = cfg.threads or None
        args = (cfg.model, backend, cfg.device, weights or None, threads, cfg.precision, cfg.int8)
        return cls(*args, cfg.onnx_spinning)

    def engine_args(self) -> tuple[str, str]:
        """(backend, precision) for `PoseEngine`: the window's entry decides ONNX's precision,
        the config's bf16 applies to torch only."""
        if self.backend == "onnx-int8":
            return "onnx", "int8"
        return self.backend, "bf16" if self.backend == "torch" and self.precision == "bf16" else "fp32"

    def label(self, engine: PoseEngine | None = None) -> str:
        """What runs: the engine's real backend and precision when built (".onnx" weights force
        ONNX, and a quantized file runs as int8)."""
        backend, precision = self.engine_args()
        if engine is not None:
            backend, precision = engine.backend_name, engine.precision
        shown = f" · {precision}" if precision != "fp32" else ""
        return f"{self.model} · {backend}{shown} · {self.device}"


def build_engine(spec: EngineSpec, flip_test: bool, refine: CropRefinement | None = None) -> PoseEngine:
    """A new engine; raises `EngineError` / `ConfigError` / `CheckpointError` with one line."""
    backend, precision = spec.engine_args()
    args = (spec.model, spec.weights, backend, spec.device, flip_test, spec.threads, precision, spec.int8)
    return PoseEngine(*args, spec.spinning, refine)


def default_detector_factory(cfg: AppConfig, path: str | None) -> DetectorFactory:
    def make() -> PersonDetector:
        return PersonDetector.from_config(cfg.detector, path, cfg.device)

    return make


def build_pipeline(
    spec: EngineSpec,
    flip_test: bool,
    detector_factory: DetectorFactory,
    schedule: DetectionSchedule,
    smoothing: str | None = None,
    strength: float | None = None,
    refine: CropRefinement | None = None,
) -> PosePipeline:
    """Engine, detector and tracker (smoothing and strength: `configs/tracker.yaml`'s where None);
    raises the app's one-line errors."""
    engine = build_engine(spec, flip_test, refine)
    detector = detector_factory()
    return PosePipeline(detector, engine, Tracker.from_settings(smoothing, strength), schedule)


def pipeline_from_config(
    cfg: AppConfig, weights: str | None, detector_path: str | None, smoothing: str | None
) -> PosePipeline:
    """The pipeline of `configs/app.yaml` with the flags applied (`--weights`, `--detector`,
    `--smoothing`), as `main.py --headless`, the batch and the benchmarks run it."""
    spec = EngineSpec.from_config(cfg, weights)
    detectors = default_detector_factory(cfg, detector_path)
    return build_pipeline(spec, cfg.flip_test, detectors, cfg.detection, smoothing or None, refine=cfg.refine)
