"""Model files reach the workers through Ray's object store: checked and exported once, here.

The driver loads the pose weights (a wrong file fails in one line before any worker starts) and,
for the ONNX backend, exports them once into the app's ONNX cache, the same one `main.py` uses
(`SDPOSE_CACHE`, default ~/.cache/sdpose-app). The file's bytes go into Ray's object store;
each machine writes them once to its own cache, named by content, and every worker there loads
that file. No worker exports ONNX, and no machine needs the driver's paths for weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.detector import DetectorError, PersonDetector
from app.engine import OnnxBackend, PoseEngine, _export_cached, cache_dir
from app.pipeline import AppConfig
from sdpose_core.jsonio import atomic_path

__all__ = ["ShippedFile", "prepare_pose_file", "check_detector", "ship", "file_digest"]


def file_digest(path: Path) -> str:
    """SHA-1 of the file's bytes: names the shipped copy, so a changed file is never mistaken for the old."""
    sha = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def prepare_pose_file(cfg: AppConfig, weights: str | None) -> Path:
    """The pose model file every worker loads, after checking the flags here.

    The weights load once (an `EngineError` names a missing file or the right `--model`); for the
    ONNX backend a `.pth` is exported once (or found in the cache). The engine is then built as a
    worker builds it (on the CPU: a driver need not have the workers' GPU), so flag clashes such
    as bf16 with ONNX fail here rather than once per video. With `--precision int8` the file is
    the quantized one."""
    engine = PoseEngine(cfg.model, weights, "torch", "cpu")
    path = engine.weights
    if cfg.backend == "onnx" and path.suffix != ".onnx":
        path = _export_cached(engine.backend.model, path)
    final = PoseEngine(cfg.model, path, cfg.backend, "cpu", cfg.flip_test, 1, cfg.precision, cfg.int8)
    # int8: ship the quantized file, which workers run as it is (they never calibrate)
    return final.backend.path if isinstance(final.backend, OnnxBackend) else path


def check_detector(path: str | None, cfg: AppConfig) -> Path | None:
    """Load a user-given detector once here (a bad file fails in one line); None: the bundled one,
    which every worker's installation has. The file itself is shipped: each machine makes its
    own cached export of a `.pt` (`detector: export:`)."""
    if path is None:
        return None
    if Path(path).is_dir():
        raise DetectorError(f"{path} is a folder: batch ships one detector file (.pt or .onnx)")
    return PersonDetector.from_config(cfg.detector, path, "cpu").source


@dataclass(frozen=True)
class ShippedFile:
    """A file put into Ray's object store once, written to disk once per machine on first use.

    `ref` sits inside this record rather than being a task argument of its own, so Ray does not
    fetch the bytes for every task: only a worker that lacks the file calls `ray.get`."""

    digest: str
    suffix: str
    ref: Any  # ray.ObjectRef of the file's bytes

    def local_path(self) -> Path:
        """The file on this machine (in its app cache, named by content), written if missing."""
        path = cache_dir() / "batch" / f"{self.digest}{self.suffix}"
        if not path.is_file():
            import ray

            data = ray.get(self.ref)
            with atomic_path(path) as temp:  # workers starting together each write a whole copy; one wins
                temp.write_bytes(data)
        return path


def ship(path: Path) -> ShippedFile:
    """Put the file's bytes into the object store (call with Ray connected)."""
    import ray

    return ShippedFile(file_digest(path), path.suffix, ray.put(path.read_bytes()))
