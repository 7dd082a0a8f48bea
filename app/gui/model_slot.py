"""The worker's pose model: which one to build, built on the first frame, switched while it runs.

Split from `app.gui.worker` so that the loop there reads as read → process → publish, and this
part (the model settings, the one fallback to the bundled weights, live switches of engine, flip,
crop refinement, smoothing and detection) can be read on its own. Free of Qt like `playback` and
`session`: what happens is told through the callbacks it is given (the worker passes its
signals' `emit`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from app.builders import BUILD_ERRORS, DetectorFactory, EngineSpec, build_engine, build_pipeline
from app.gui.messages import ModelInfo, one_line
from app.pipeline import DetectionSchedule, PosePipeline
from app.refine import CropRefinement

__all__ = ["ModelSlot"]

logger = logging.getLogger(__name__)


class ModelSlot:
    """The `PosePipeline` the worker runs (`pipeline`, None until built or if it cannot be), and
    the settings it is built from; `on_message`, `on_error` and `on_model` hear what happens."""

    def __init__(
        self,
        spec: EngineSpec,
        detector_factory: DetectorFactory,
        schedule: DetectionSchedule,
        *,
        flip_test: bool,
        smoothing: str,
        strength: float,
        fallback: EngineSpec | None,
        refine: CropRefinement | None = None,
        on_message: Callable[[str], None],
        on_error: Callable[[str], None],
        on_model: Callable[[ModelInfo], None],
    ) -> None:
        self._spec = spec
        self._fallback = fallback  # tried once, with a note, if `spec` (remembered settings) fails
        self._detector_factory = detector_factory
        self._schedule = schedule
        self._flip = flip_test
        # configs/app.yaml's `refine:` settings, switched on and off by the window's checkbox
        self._refine = refine if refine is not None else CropRefinement()
        self._smoothing = (smoothing, strength)
        self.pipeline: PosePipeline | None = None
        self._build_error: str | None = None
        self._on_message, self._on_error, self._on_model = on_message, on_error, on_model

    def ensure(self) -> PosePipeline | None:
        """The pipeline, built on the first call; None (said once) if it cannot be built."""
        if self.pipeline is not None or self._build_error is not None:
            return self.pipeline
        self._on_message(f"loading {self._spec.model} ({self._spec.backend}) and the person detector…")
        try:
            kind, strength = self._smoothing
            self.pipeline = build_pipeline(
                self._spec, self._flip, self._detector_factory, self._schedule, kind, strength, self._refine
            )
        except BUILD_ERRORS as exc:
            fallback, self._fallback = self._fallback, None
            if fallback is not None and fallback != self._spec:
                note = f"the remembered {self._spec.weights or self._spec.model} no longer loads"
                note += f" ({one_line(exc)}); using the bundled weights"
                logger.warning("%s", note)
                self._on_message(note)
                self._spec = fallback
                return self.ensure()
            self._build_error = one_line(exc)
            self._on_error(f"pose model not loaded: {self._build_error}")
            return None
        self._emit_model()
        return self.pipeline

    def _emit_model(self) -> None:
        spec, refine = self._spec, self._refine.enabled
        info = ModelInfo(spec.model, spec.backend, self._flip, spec.weights or "", self.label(), refine)
        self._on_model(info)
        self._on_message(f"pose model ready: {self.label()}")

    def label(self) -> str:
        """What runs, e.g. "sdpose_t · onnx · cpu · flip · refine" (the stats panel shows it)."""
        engine = self.pipeline.engine if self.pipeline is not None else None
        extras = [name for name, on in (("flip", self._flip), ("refine", self._refine.enabled)) if on]
        return " · ".join([self._spec.label(engine), *extras])

    def set_smoothing(self, kind: str, strength: float) -> None:
        self._smoothing = (kind, float(strength))
        if self.pipeline is not None:
            self.pipeline.set_smoothing(kind, float(strength))

    def set_detection(self, every: int, adaptive: bool) -> None:
        self._schedule = replace(self._schedule, every=max(1, int(every)), adaptive=bool(adaptive))
        if self.pipeline is not None:
            self.pipeline.set_schedule(every, adaptive)

    def set_engine(
        self, model: str, backend: str, flip_test: bool, weights: str | None, refine: bool
    ) -> bool:
        """Model, backend or weights changed: rebuild the engine only; flip and crop refinement are
        plain switches.

        False when the new engine could not be built (said; the old one keeps running)."""
        spec = replace(self._spec, model=model, backend=backend, weights=weights or None)
        self._flip = bool(flip_test)
        self._refine = replace(self._refine, enabled=bool(refine))
        self._fallback = None  # the user's own choice now: if it fails, that is said, not replaced
        if self.pipeline is None:
            self._spec, self._build_error = spec, None  # built (or retried) with the next frame
            return True
        self.pipeline.set_flip_test(self._flip)  # the switches apply even if a new engine fails
        self.pipeline.set_refine(self._refine)  # the stats panel's label follows (`label`)
        if spec != self._spec:
            self._on_message(f"loading {spec.label()}…")
            try:
                engine = build_engine(spec, self._flip, self._refine)
            except BUILD_ERRORS as exc:
                self._on_error(f"could not switch to {spec.label()}: {one_line(exc)}")
                self._emit_model()  # the window shows what still runs
                return False
            self.pipeline.set_engine(engine)
            self._spec = spec
            self._emit_model()
        return True
