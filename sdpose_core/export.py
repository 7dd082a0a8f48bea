"""Export an SDPose variant (with weights) to one self-contained `.onnx` file.

    python -m sdpose_core.export --model sdpose_t [--weights ckpt.pth] --output sdpose_t.onnx

The graph is the inference path: one MCT cycle, input `input` (B, 3, 256, 192) normalised RGB,
output `heatmaps` (B, 17, 64, 48), with a dynamic batch axis. The variant name is stored in the
file's metadata so the app can check it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from sdpose_core.checkpoint import load_checkpoint
from sdpose_core.cli import ArgumentParser, run_cli
from sdpose_core.errors import UserError
from sdpose_core.jsonio import atomic_path, check_outputs, output_error
from sdpose_core.models import VARIANT_NAMES, SDPose, build_model

__all__ = ["export_onnx", "verify_onnx", "INPUT_NAME", "OUTPUT_NAME", "GRAPH_VERSION"]

logger = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
# Bumped when the exported graph changes for the same weights, so that cached exports are
# redone (2: the patch embedding is a strided convolution, not a permute and a MatMul).
GRAPH_VERSION = 2


def export_onnx(model: SDPose, output: str | os.PathLike, opset: int = 18) -> Path:
    """Write `model`'s one-cycle inference graph to `output` (atomically)."""
    import onnx
    from torch.export import Dim

    output = Path(output)
    model = model.eval()
    h, w = model.cfg.image_size
    # A batch-2 example: with batch 1 the exporter silently freezes the batch axis.
    example = torch.zeros(2, 3, h, w)
    with atomic_path(output) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                tmp,
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: Dim("batch")}},
                external_data=False,
                optimize=True,
                verbose=False,
            )
        proto = onnx.load(tmp)
        for key, value in {"sdpose_variant": model.cfg.name, "input_size_hw": f"{h},{w}"}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)
    return output


def verify_onnx(model: SDPose, path: str | os.PathLike, batch_sizes: tuple[int, ...] = (1, 8)) -> float:
    """Largest |ONNX Runtime - torch| over random batches; the export's parity check."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h, w = model.cfg.image_size
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for batch in batch_sizes:
        x = torch.randn(batch, 3, h, w, generator=generator)
        with torch.no_grad():
            expected = model.eval()(x).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m sdpose_core.export", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="sdpose_t", help=f"variant ({', '.join(VARIANT_NAMES)}) or config path"
    )
    parser.add_argument("--weights", help="checkpoint (.pth): the authors' release or our own")
    parser.add_argument("--output", required=True, help="where to write the .onnx file")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime parity check")
    args = parser.parse_args(argv)

    check_outputs({"--output": args.output}, {"--weights": args.weights})  # before the export's minute
    model = build_model(args.model)
    if args.weights:
        load_checkpoint(model, args.weights)
    else:
        logger.warning("no --weights given: exporting randomly initialised weights")
    try:
        path = export_onnx(model, args.output, args.opset)
    except OSError as exc:
        raise output_error(args.output, exc, "--output") from None
    size_mb = path.stat().st_size / 2**20
    logger.info("wrote %s (%.1f MiB, variant %s)", path, size_mb, model.cfg.name)
    if not args.no_verify:
        diff = verify_onnx(model, path)
        logger.info("ONNX Runtime vs torch, batch 1 and 8: max |diff| = %.2e", diff)
        if diff > 1e-4:
            raise UserError(f"exported graph differs from torch by {diff:.2e} (> 1e-4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
