"""Soft targets from the teacher's own heatmaps, for the very crop the student sees.

Pseudo-labels keep a teacher joint only where its score clears a threshold (0.3), at the
heatmap's argmax: everything else the teacher believes about that person is thrown away. This
module runs MoveNet Thunder on the student's training crop and reads the heatmap the ONNX graph
computes before its argmax, so a training sample can ask the student to reproduce the
teacher's belief where no hard label exists.

Geometry: the student's crop is 192x256 (w x h) with a 48x64 heatmap (stride 4). Padded with 32
black columns on each side it is MoveNet's 256x256 input, whose heatmap is 64x64 (stride 4, cell
``u`` at crop pixel ``4u`` as in MMPose's targets), so columns 8..55 of the teacher's heatmap
lie exactly on the student's 48 columns.

Only the chosen person counts: MoveNet's raw heatmap also lights up the joints of people beside
them. The graph's own person choice (the heatmap divided by the distance to the joint it regressed
from the person's centre) picks one cell per joint, and the raw heatmap is kept only within a
Gaussian window (``window`` cells) around it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sdpose_core.errors import UserError
from sdpose_core.keypoints import NUM_KEYPOINTS

__all__ = ["TeacherHeatmaps", "heatmap_outputs"]

_SIZE = 256
_HEATMAP = 64


def heatmap_outputs(model) -> tuple[str, str]:
    """Names of MoveNet's raw keypoint heatmap (1,64,64,17) and of the person-weighted map its
    argmax reads, found by walking back from the score the graph gathers for ``Identity:0``.

    Raises `UserError` when the graph does not have that shape (another model or export).
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    weighted = raw = None
    for node in model.graph.node:
        if node.op_type == "ArgMax" and node.input[0] in producers:
            reshape = producers[node.input[0]]
            if reshape.op_type == "Reshape" and producers.get(reshape.input[0]) is not None:
                divide = producers[reshape.input[0]]
                if divide.op_type == "Div":
                    weighted, raw = divide.output[0], divide.input[0]
    if weighted is None or raw is None:
        raise UserError("this MoveNet ONNX file does not expose the keypoint heatmap its argmax reads")
    return raw, weighted


class TeacherHeatmaps:
    """``teacher(crop_bgr (256,192,3) uint8) -> (17,64,48) float32``: MoveNet's heatmap for the
    crop's person, on the student's heatmap grid (see the module docstring).

    The ONNX session is created on first use, so a dataset holding this object can be sent to
    loader worker processes (each opens its own session, one thread).
    """

    def __init__(self, onnx_path: str | os.PathLike, window: float = 3.0, threads: int = 1) -> None:
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise UserError(
                f"teacher model not found: {self.path} (movenet/movenet-thunder.onnx in shared/data/models/)"
            )
        self.window, self.threads = float(window), int(threads)
        self._session = None
        self._names: tuple[str, str] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_session"] = None  # sessions do not pickle; each process opens its own
        return state

    def _open(self):
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(self.path))
        raw, weighted = heatmap_outputs(model)
        for name in (raw, weighted):
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        self._names = (raw, weighted)
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, crop_bgr: np.ndarray) -> np.ndarray:
        h, w = crop_bgr.shape[:2]
        if h != _SIZE or w > _SIZE or (_SIZE - w) % 8:
            raise ValueError(f"expected a crop 256 high and at most 256 wide in steps of 8, got {w}x{h}")
        if self._session is None:
            self._session = self._open()
        pad = (_SIZE - w) // 2
        square = np.zeros((_SIZE, _SIZE, 3), dtype=np.int32)
        square[:, pad : pad + w] = crop_bgr[:, :, ::-1]
        raw, weighted = self._session.run(list(self._names), {"input:0": square[None]})
        raw, weighted = raw[0], weighted[0]  # (64,64,17)
        flat = weighted.reshape(-1, NUM_KEYPOINTS).argmax(axis=0)
        rows, cols = np.divmod(flat, _HEATMAP)
        y, x = np.mgrid[0:_HEATMAP, 0:_HEATMAP]
        d2 = (y[..., None] - rows) ** 2 + (x[..., None] - cols) ** 2
        local = raw * np.exp(-d2 / (2 * self.window**2))
        first = pad // 4
        return np.ascontiguousarray(local[:, first : first + w // 4].transpose(2, 0, 1), dtype=np.float32)
