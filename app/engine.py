"""SDPose pose engine: person boxes in, keypoints in image pixels out.

All crops of a frame go through the network in ONE batch (with flip test, the mirrored crops
join the same batch), one MCT cycle, DARK decoding. The torch / ONNX Runtime choice sits
behind a small backend interface picked at construction; `estimate` never branches on it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from app.refine import CropRefinement, refined_boxes
from app.types import Poses
from sdpose_core.checkpoint import CheckpointError, load_checkpoint
from sdpose_core.decode import decode_heatmaps, flip_back
from sdpose_core.errors import SDPoseError
from sdpose_core.geometry import normalize_crops, person_crops
from sdpose_core.hardware import cpu_has_int8_dot, cpu_has_native_bf16, prefers_channels_last
from sdpose_core.keypoints import NUM_KEYPOINTS
from sdpose_core.models import SDPose, build_model, load_model_config
from sdpose_core.quantize import QuantizeConfig

__all__ = [
    "PoseEngine",
    "EngineError",
    "DEFAULT_WEIGHTS",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "PRECISIONS",
    "check_engine_choice",
    "cache_dir",
]

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# Bundled default weights per variant (how they were trained: docs/training.md).
DEFAULT_WEIGHTS = {"sdpose_t": ASSETS / "weights" / "sdpose_t_default.pth"}
BACKENDS = ("torch", "onnx")
DEFAULT_BACKEND = "onnx"  # what the app runs (configs/app.yaml) and what PoseEngine() builds
PRECISIONS = ("fp32", "bf16", "int8")  # bf16: torch autocast; int8: ONNX Runtime, quantized


class EngineError(SDPoseError, RuntimeError):
    """The engine cannot start (weights, backend, device); one line saying what to do."""


def check_engine_choice(backend: str, precision: str) -> None:
    """The one rule for backend and precision pairs, checked by the engine and, before anything
    loads, for the command line's and the window's settings alike."""
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "bf16" and backend != "torch":
        raise EngineError("bf16 runs on the torch backend: add --backend torch")
    if precision == "int8" and backend != "onnx":
        raise EngineError("int8 runs on the onnx backend: add --backend onnx")


def cache_dir() -> Path:
    """Where exported ONNX files are kept between runs (`SDPOSE_CACHE` overrides)."""
    return Path(os.environ.get("SDPOSE_CACHE", Path.home() / ".cache" / "sdpose-app"))


class Backend(Protocol):
    """Runs the network: (N, 3, 256, 192) float32 normalised crops -> (N, 17, 64, 48) heatmaps."""

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """Eager PyTorch; `precision="bf16"` runs under bfloat16 autocast (about 2x faster on CPUs
    with AVX-512 BF16 and on GPUs, at a small cost in heatmap precision)."""

    def __init__(self, model: SDPose, device: str, precision: str = "fp32") -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        # Channels-last on a CPU: about 20 % less time a crop (hardware.prefers_channels_last).
        self.memory_format = (
            torch.channels_last if prefers_channels_last(self.device.type) else torch.contiguous_format
        )
        self.model.to(memory_format=self.memory_format)
        self.bf16 = precision == "bf16"
        if self.bf16 and self.device.type == "cpu" and cpu_has_native_bf16() is False:
            logger.warning("bf16: this CPU has no native bfloat16, so fp32 is faster here")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            crops = torch.from_numpy(batch).to(self.device, memory_format=self.memory_format)
            return self.model(crops).float().cpu().numpy()


class OnnxBackend:
    """ONNX Runtime. Its worker threads wait for work by blocking unless `spinning`: spinning
    answers a little sooner on an idle CPU, but steals the cores that the app's own decoder and
    writer threads, the detector and other jobs need (on the busy 2-core CPU, with the detector
    every 5 frames, blocking took the demo clip from 9.8 to 16.6 FPS)."""

    def __init__(self, path: Path, device: str, threads: int | None = None, spinning: bool = False) -> None:
        import onnxruntime as ort

        from sdpose_core.quantize import PRECISION_KEY, WEIGHT_BITS_KEY

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineError(
                    "ONNX Runtime here has no CUDA provider: use --backend torch or --device cpu"
                )
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(f"cannot load ONNX model {path}: {str(exc).splitlines()[0][:160]}") from None
        self.path = path
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.variant = meta.get("sdpose_variant")
        self.precision = meta.get(PRECISION_KEY, "fp32")
        if self.precision == "int8" and not device.startswith("cuda") and cpu_has_int8_dot() is False:
            saturates = meta.get(WEIGHT_BITS_KEY) != "7"  # a file quantized for a VNNI CPU
            logger.warning(
                "int8: this CPU has no VNNI int8 instructions, so int8 runs only about 1.1-1.2x "
                "as fast as fp32 here (1.5x with VNNI)%s",
                "; this file's 8-bit weights saturate here and move keypoints: quantize it on this "
                "machine (python -m sdpose_core.quantize) for 7-bit ones"
                if saturates
                else "",
            )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def check_io(self, path: Path, image_hw: tuple[int, int], heatmap_hw: tuple[int, int]) -> None:
        """Run one blank crop now: a valid ONNX file of another network loads fine and would
        otherwise fail on the first person found, long after the run started."""
        wanted_in, wanted_out = (1, 3, *image_hw), (1, NUM_KEYPOINTS, *heatmap_hw)
        advice = "not an SDPose pose model (export one with python -m sdpose_core.export)"
        if len(self.session.get_inputs()) != 1:
            raise EngineError(f"{path.name} takes {len(self.session.get_inputs())} inputs: {advice}")
        try:
            shape = tuple(np.shape(self(np.zeros(wanted_in, np.float32))))
        except Exception as exc:  # onnxruntime raises its own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise EngineError(f"{path.name} does not take {wanted_in} crops ({first}): {advice}") from None
        if shape != wanted_out:
            raise EngineError(f"{path.name} returns {shape} for one crop, not {wanted_out}: {advice}")


def _resolve_weights(model_name: str, weights: str | os.PathLike | None) -> Path:
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise EngineError(f"weights file not found: {path}")
        return path
    default = DEFAULT_WEIGHTS.get(model_name)
    if default is not None and default.is_file():
        return default
    raise EngineError(
        f"no bundled weights for {model_name}: pass --weights PATH (an SDPose checkpoint such as the "
        f"authors' {model_name}_coco_256x192.pth, or a .onnx exported with python -m sdpose_core.export)"
    )


def _export_cached(model: SDPose, weights: Path) -> Path:
    """Export `model` to ONNX once per weights file; later runs reuse the file."""
    from sdpose_core.export import GRAPH_VERSION, export_onnx

    stat = weights.stat()
    identity = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{model.cfg}:{GRAPH_VERSION}"
    key = hashlib.sha1(identity.encode()).hexdigest()
    path = cache_dir() / f"{model.cfg.name}-{key[:16]}.onnx"
    if not path.is_file():
        logger.info("exporting %s to ONNX (once): %s", model.cfg.name, path)
        try:
            export_onnx(model, path)
        except OSError as exc:
            raise EngineError(
                f"cannot write the ONNX cache {path.parent} ({exc.strerror}): set SDPOSE_CACHE to a "
                "writable folder or use --backend torch"
            ) from None
        except Exception as exc:  # the exporter raises many types; torch still works
            first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"ONNX export failed ({first}): use --backend torch") from None
    return path


def _quantized_cached(fp32: Path, cfg: QuantizeConfig) -> Path:
    """The int8 model of an fp32 `.onnx`, quantized once and kept beside it (or beside the
    other exports in the cache when the fp32 file lies in a folder we should not write to)."""
    from sdpose_core.errors import UserError
    from sdpose_core.quantize import cache_name, quantize_onnx

    path = cache_name(fp32, cfg)
    if fp32.parent.resolve() != cache_dir().resolve():
        path = cache_dir() / path.name
    if not path.is_file():
        what = f"{cfg.mode}, {cfg.weight_bits}-bit weights, {cfg.crops} calibration crops"
        logger.info("quantizing %s to int8 (once, %s): %s", fp32.name, what, path)
        try:
            quantize_onnx(fp32, path, cfg)
        except UserError as exc:
            raise EngineError(str(exc)) from None
        except OSError as exc:
            raise EngineError(
                f"cannot write the int8 model {path} ({exc.strerror}): set SDPOSE_CACHE to a writable folder"
            ) from None
    return path


class PoseEngine:
    """`engine.estimate(frame_bgr, boxes_xyxy) -> (keypoints (N,17,2), scores (N,17))`, float32;
    `engine.poses(...)` returns the same with the milliseconds each step took (`Poses`).

    Args:
        model: variant name or config path.
        weights: a `.pth` checkpoint (official or ours) or an exported `.onnx`; None means the
            bundled default in `assets/`.
        backend: "onnx" (the default, as in the app) or "torch"; a `.pth` is exported to ONNX once
            and cached.
        device: "cpu" or "cuda".
        flip_test: average with the mirrored crop (twice the compute, a little more accurate).
        refine: read each person again in a box redrawn around their first-pass joints
            (`app.refine`; up to twice the compute); None or disabled: one pass.
        threads: CPU threads for the backend (None: library default).
        precision: "fp32", "bf16" (torch backend only: bfloat16 autocast) or "int8" (ONNX
            Runtime only: the exported model quantized once, calibrated on training-pool people).
        int8: how int8 is calibrated (`int8:` in `configs/app.yaml`); None: the defaults.
        spinning: ONNX Runtime's threads spin while waiting for work (see `OnnxBackend`).
    """

    def __init__(
        self,
        model: str = "sdpose_t",
        weights: str | os.PathLike | None = None,
        backend: str = DEFAULT_BACKEND,
        device: str = "cpu",
        flip_test: bool = False,
        threads: int | None = None,
        precision: str = "fp32",
        int8: QuantizeConfig | None = None,
        spinning: bool = False,
        refine: CropRefinement | None = None,
    ) -> None:
        check_engine_choice(backend, precision)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError("CUDA was requested but is not available here: use --device cpu")
        model_cfg = load_model_config(model)  # a typo in the variant name fails before anything loads
        path = _resolve_weights(model_cfg.name, weights)
        self.flip_test = flip_test
        self.refine = refine
        self.weights = path
        self.precision = precision
        if path.suffix == ".onnx":
            if backend != "onnx":
                logger.info("weights are an ONNX file: using the onnx backend")
            onnx = OnnxBackend(path, device, threads, spinning)
            if precision == "int8" and onnx.precision != "int8":
                quantized = _quantized_cached(path, int8 or QuantizeConfig())
                onnx = OnnxBackend(quantized, device, threads, spinning)
            self.precision = onnx.precision  # a quantized file runs as int8 whatever was asked
            onnx.check_io(path, model_cfg.image_size, model_cfg.heatmap_size)
            self.backend: Backend = onnx
            self.backend_name = "onnx"
            found = onnx.variant
            wanted = model_cfg.name
            if found and found != wanted:
                raise EngineError(f"{path.name} holds {found}, not {wanted}: pass --model {found}")
            self.model_name = found or wanted
            return
        net = build_model(model_cfg)
        try:
            info = load_checkpoint(net, path)
        except CheckpointError as exc:
            raise EngineError(str(exc)) from None
        if path == DEFAULT_WEIGHTS.get(model_cfg.name) and info.meta.get("note"):
            # Say what the bundled weights are every time they are used, not only in the README.
            logger.warning("bundled weights: %s", info.meta["note"])
        self.model_name = net.cfg.name
        if threads:
            torch.set_num_threads(threads)
        if backend == "onnx":
            exported = _export_cached(net, path)
            if precision == "int8":
                exported = _quantized_cached(exported, int8 or QuantizeConfig())
            self.backend = OnnxBackend(exported, device, threads, spinning)
        else:
            self.backend = TorchBackend(net, device, precision)
        self.backend_name = backend  # what actually runs (".onnx" weights force "onnx" above)

    def preprocess(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, ...]:
        """Crops (N or 2N, 3, 256, 192) plus the crops' centers and scales (N, 2)."""
        crops, centers, scales = person_crops(frame_bgr, boxes_xyxy)
        if self.flip_test:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        return normalize_crops(crops), centers, scales

    def estimate(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 17, 2) in image pixels and their scores (N, 17) for N person boxes."""
        keypoints, scores, _ = self.poses(frame_bgr, boxes_xyxy)
        return keypoints, scores

    def poses(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> Poses:
        """`estimate`, plus the milliseconds spent cropping, in the network and decoding (both
        passes summed when `refine` is on)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        first = self._one_pass(frame_bgr, boxes)
        refine = self.refine
        if refine is None or not refine.enabled or len(boxes) == 0:
            return first
        height, width = frame_bgr.shape[:2]
        again, new_boxes = refined_boxes(first.keypoints, first.scores, boxes, (width, height), refine)
        if again.size == 0:
            return first
        second = self._one_pass(frame_bgr, new_boxes)
        first.keypoints[again] = second.keypoints
        first.scores[again] = second.scores
        timings = {step: first.timings[step] + second.timings[step] for step in first.timings}
        return Poses(first.keypoints, first.scores, timings)

    def _one_pass(self, frame_bgr: np.ndarray, boxes: np.ndarray) -> Poses:
        """One batched forward pass over all `boxes` (N, 4) xyxy float32."""
        n = len(boxes)
        if n == 0:
            empty = np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32)
            return Poses(*empty, {"crop": 0.0, "pose": 0.0, "decode": 0.0})
        t0 = time.perf_counter()
        batch, centers, scales = self.preprocess(frame_bgr, boxes)
        t1 = time.perf_counter()
        heatmaps = self.backend(batch)
        t2 = time.perf_counter()
        if self.flip_test:
            heatmaps = (heatmaps[:n] + flip_back(heatmaps[n:])) * 0.5
        keypoints, scores = decode_heatmaps(heatmaps, centers, scales)
        t3 = time.perf_counter()
        timings = {"crop": (t1 - t0) * 1e3, "pose": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3}
        return Poses(keypoints, scores[..., 0], timings)
