"""int8 SDPose for ONNX Runtime: static quantization calibrated on real person crops.

    python -m sdpose_core.quantize --onnx sdpose_t.onnx --output sdpose_t.int8.onnx
    python -m sdpose_core.quantize --model sdpose_t --weights ckpt.pth --output sdpose_t.int8.onnx

Which layers run in int8 was measured on SDPose-T (int8 against fp32 of the same weights, real
crops): the backbone's convolutions and the transformer's linear layers (qkv, out, both
feed-forward layers), about 80 % of the fp32 time, quantize well. Three parts stay fp32, each
having moved most heatmap peaks by 1-8 cells when quantized: the patch embedding, the two
heatmap-head linears, and the attention products (activation by activation, slower in int8
here too). Activations are uint8 and weights int8, the pairing ONNX Runtime's AVX-512 VNNI
kernels take. On a CPU without VNNI those kernels multiply with VPMADDUBSW, which adds pairs of
uint8 x int8 products in 16 bits and saturates where both are large: on an AVX2-only EPYC half
of SDPose-T's heatmap peaks moved (argmax kept on 0.47 of 64 People-Art/fall crops' joints).
Weights in 7 bits (`reduce_range`) leave the pair sums room: 0.73 kept, at the same speed. So
`reduce_range: auto` uses 7-bit weights exactly where the CPU has no int8 dot product. The
format (QDQ or QOperator) and per-channel or per-tensor weight scales are settings (`int8:` in
`configs/app.yaml`); `benchmarks/bench_models.py --int8-modes` and
`benchmarks/bench_accuracy.py --compare-int8` measure all four.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdpose_core.cli import ArgumentParser, run_cli
from sdpose_core.config import CONFIG_DIR, from_dict, load_yaml
from sdpose_core.errors import UserError
from sdpose_core.hardware import cpu_has_int8_dot
from sdpose_core.jsonio import atomic_path, check_outputs, output_error

__all__ = ["QuantizeConfig", "quantize_onnx", "int8_nodes", "is_int8", "PRECISION_KEY", "WEIGHT_BITS_KEY"]

logger = logging.getLogger(__name__)

PRECISION_KEY = "sdpose_precision"  # metadata of a quantized file: "int8"
WEIGHT_BITS_KEY = "int8_weight_bits"  # and "7" or "8" (see QuantizeConfig.weight_bits)
FORMATS = ("qdq", "qoperator")
REDUCE_RANGE = ("auto", "always", "never")
# Module scopes (torch names the exporter records on each node) whose layers run in int8.
INT8_SCOPES = {"Conv": ("backbone",), "MatMul": ("transformer_layer1",)}


@dataclass(frozen=True)
class QuantizeConfig:
    """`int8:` in `configs/app.yaml`: how the int8 model is calibrated and laid out.

    Attributes:
        calibration: training-pool folders the calibration people come from (relative paths
            are from the repository root); never a held-out set.
        crops: how many people calibrate (spread evenly over the folders).
        format: "qdq" (QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses) or
            "qoperator" (QLinearConv / QLinearMatMul nodes).
        per_channel: one weight scale per output channel (else one per tensor).
        seed: which people are drawn.
        reduce_range: "auto" (7-bit weights on a CPU without int8 dot-product instructions,
            where 8-bit ones saturate; see the module doc), "always" or "never".
    """

    calibration: tuple[str, ...] = ("../shared/data/pool2/stanford40", "../shared/data/pool/lsp")
    crops: int = 256
    format: str = "qdq"
    per_channel: bool = True
    seed: int = 0
    reduce_range: str = "auto"

    def __post_init__(self) -> None:
        if self.reduce_range not in REDUCE_RANGE:
            raise ValueError(f"reduce_range {self.reduce_range!r} is not one of {', '.join(REDUCE_RANGE)}")
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.crops < 1:
            raise ValueError(f"crops must be at least 1, got {self.crops}")
        if not self.calibration:
            raise ValueError("calibration needs at least one folder")

    @classmethod
    def load(cls) -> QuantizeConfig:
        """The `int8:` section of `configs/app.yaml` (the app reads it as `AppConfig.int8`)."""
        data = load_yaml(CONFIG_DIR / "app.yaml").get("int8", {})
        return from_dict(cls, data, where="app.yaml int8")

    @property
    def mode(self) -> str:
        """Short name, e.g. "qdq/channel"."""
        return f"{self.format}/{'channel' if self.per_channel else 'tensor'}"

    def with_mode(self, mode: str) -> QuantizeConfig:
        """This config with `mode` ("qdq/channel", "qoperator/tensor", ...) applied."""
        fmt, _, scales = mode.partition("/")
        if fmt not in FORMATS or scales not in ("channel", "tensor"):
            raise UserError(f"int8 mode {mode!r} is not FORMAT/SCALES (qdq|qoperator)/(channel|tensor)")
        return dataclasses.replace(self, format=fmt, per_channel=scales == "channel")

    def folders(self) -> list[Path]:
        root = CONFIG_DIR.parent
        return [(root / folder).resolve() for folder in self.calibration]

    @property
    def weight_bits(self) -> int:
        """7 or 8: `reduce_range` resolved for this machine's CPU (unknown CPUs get 8)."""
        if self.reduce_range == "auto":
            return 7 if cpu_has_int8_dot() is False else 8
        return 7 if self.reduce_range == "always" else 8

    def identity(self) -> str:
        """Everything that changes the quantized file, for cache names."""
        bits = ":7bit" if self.weight_bits == 7 else ""  # 8-bit files keep their earlier names
        return f"{self.mode}:{self.crops}:{self.seed}:{','.join(map(str, self.folders()))}{bits}"


def _scopes(node) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                return list(ast.literal_eval(prop.value))
            except (ValueError, SyntaxError):
                return []
    return []


def int8_nodes(model) -> list[str]:
    """Names of the nodes of an exported SDPose graph to run in int8 (see the module doc): a
    Conv or MatMul with a constant weight inside one of `INT8_SCOPES`' modules."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    chosen = []
    for node in model.graph.node:
        scopes = INT8_SCOPES.get(node.op_type)
        if not scopes or not any(name in constants for name in node.input[1:2]):
            continue
        if any(part.rsplit(".", 1)[-1] in scopes for part in _scopes(node)):  # inside such a module
            chosen.append(node.name)
    return chosen


def is_int8(path: str | os.PathLike) -> bool:
    """Whether an ONNX file is one this module quantized (its metadata says so)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(p.key == PRECISION_KEY and p.value == "int8" for p in model.metadata_props)


def _reader(crops: np.ndarray, input_name: str, batch: int = 8):
    """A `CalibrationDataReader` over an array of crops, a few at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(np.array_split(crops, max(1, len(crops) // batch)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self.batches, None)
            return None if chunk is None else {input_name: np.ascontiguousarray(chunk)}

    return Crops()


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer warns on the root logger for every shape tensor it leaves in
    fp32 (dozens of multi-line messages that say nothing to a user); keep them out of the run."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.root.setLevel(level)


def quantize_onnx(fp32_path: str | os.PathLike, output: str | os.PathLike, cfg: QuantizeConfig) -> Path:
    """Write the int8 model of an exported fp32 SDPose `.onnx` to `output` (atomically).

    Calibration crops come from `cfg.calibration`; a missing folder is a `UserError`."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from sdpose_core.calibration import calibration_crops

    missing = [str(folder) for folder in cfg.folders() if not folder.is_dir()]
    if missing:
        raise UserError(
            f"int8 calibration folder not found: {missing[0]} (set int8: calibration: in configs/app.yaml "
            "to training-pool folders, or use fp32)"
        )
    source = onnx.load(str(fp32_path))
    nodes = int8_nodes(source)  # before pre-processing, which drops the torch scopes
    if not nodes:
        raise UserError(f"{Path(fp32_path).name} has no SDPose layers to quantize (export it with this app)")
    crops = calibration_crops(cfg.folders(), cfg.crops, cfg.seed)
    weight_bits = cfg.weight_bits
    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(output) as target, _quiet_root_logger():
        prepared = Path(tmp) / "prepared.onnx"
        # No symbolic shape inference: the exporter records the shapes already (SDPose-T's int8
        # file came out identical without it), and where it fails (HRNet, SDPose-B) it saves a
        # debug model into the current folder, sym_shape_infer_temp.onnx and a 50 MB .data file.
        quant_pre_process(str(fp32_path), prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            target,
            _reader(crops, source.graph.input[0].name),
            quant_format=QuantFormat.QDQ if cfg.format == "qdq" else QuantFormat.QOperator,
            per_channel=cfg.per_channel,
            reduce_range=weight_bits == 7,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        )
        model = onnx.load(str(target))
        meta = {p.key: p.value for p in source.metadata_props}
        meta.update({PRECISION_KEY: "int8", "int8_mode": cfg.mode, "int8_crops": str(len(crops))})
        meta[WEIGHT_BITS_KEY] = str(weight_bits)
        del model.metadata_props[:]
        for key, value in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(target))
    return output


def cache_name(fp32_path: Path, cfg: QuantizeConfig) -> Path:
    """The int8 file's path beside its fp32 export, named by the settings that made it."""
    stat = fp32_path.stat()
    key = hashlib.sha1(f"{fp32_path.name}:{stat.st_size}:{stat.st_mtime_ns}:{cfg.identity()}".encode())
    return fp32_path.with_name(f"{fp32_path.stem}.int8-{key.hexdigest()[:12]}.onnx")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m sdpose_core.quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", help="an fp32 .onnx exported with python -m sdpose_core.export")
    parser.add_argument("--model", default="sdpose_t", help="variant, with --weights instead of --onnx")
    parser.add_argument("--weights", help="checkpoint (.pth) to export first")
    parser.add_argument("--output", required=True, help="where to write the int8 .onnx file")
    parser.add_argument("--mode", help="FORMAT/SCALES, e.g. qdq/channel (default: configs/app.yaml)")
    parser.add_argument("--crops", type=int, help="calibration people (default: configs/app.yaml)")
    args = parser.parse_args(argv)
    if (args.onnx is None) == (args.weights is None):
        raise UserError("give either --onnx FILE or --weights FILE")
    check_outputs({"--output": args.output}, {"--onnx": args.onnx, "--weights": args.weights})
    cfg = QuantizeConfig.load()
    if args.mode:
        cfg = cfg.with_mode(args.mode)
    if args.crops:
        cfg = dataclasses.replace(cfg, crops=args.crops)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.onnx) if args.onnx else _export(args.model, args.weights, Path(tmp) / "fp32.onnx")
        if not source.is_file():
            raise UserError(f"ONNX file not found: {source}")
        try:
            path = quantize_onnx(source, args.output, cfg)
        except OSError as exc:
            raise output_error(args.output, exc, "--output") from None
    size_mb = path.stat().st_size / 2**20
    logger.info(
        "wrote %s (%.1f MiB, %s, %d-bit weights, %d calibration crops)",
        path,
        size_mb,
        cfg.mode,
        cfg.weight_bits,
        cfg.crops,
    )
    return 0


def _export(model_name: str, weights: str, output: Path) -> Path:
    from sdpose_core.checkpoint import load_checkpoint
    from sdpose_core.export import export_onnx
    from sdpose_core.models import build_model

    model = build_model(model_name)
    load_checkpoint(model, weights)
    return export_onnx(model, output)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
