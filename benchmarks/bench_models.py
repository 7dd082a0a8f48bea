"""CPU latency per crop of every SDPose variant: torch eager (the app's TorchBackend), ONNX Runtime
fp32 and int8.

    .venv/bin/python benchmarks/bench_models.py [--threads 2] [--variants sdpose_t] [--repeats 20]
        [--int8-modes qdq/channel qdq/tensor qoperator/channel qoperator/tensor] [--calib-crops 64]

Runs ONE MCT cycle (what inference needs). The int8 columns are the fp32 export quantized as
`--precision int8` does (`sdpose_core.quantize`, calibrated on `--calib-crops` training-pool
people; the first mode is the ratio's). Weights are random: latency does not depend on them.
ONNX Runtime runs through the app's own `OnnxBackend` (its session settings: threads block while
they wait). Machines are shared and noisy, so every backend is timed in turn within each repeat
and the medians are compared; read the ratios. The reference column is the authors' modules (torch
eager, 2 threads, all cycles, batch 1) measured on this machine kind.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.engine import OnnxBackend, TorchBackend
from sdpose_core.export import export_onnx
from sdpose_core.models import VARIANT_NAMES, build_model
from sdpose_core.quantize import QuantizeConfig, quantize_onnx

REFERENCE_MS = {"sdpose_t": 52.0, "sdpose_s_v1": 54.0, "sdpose_s_v2": 390.0, "sdpose_b": 82.0}


def interleaved_ms(fns: dict[str, Callable[[], object]], batch: int, repeats: int, warmup: int = 3) -> dict:
    """Median ms per crop of each function, all timed in turn within every repeat, so that a
    busy spell on a shared machine slows them alike instead of one of them."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 / batch for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--int8-modes", nargs="*", default=None, help="FORMAT/SCALES, e.g. qdq/channel (default: app.yaml)"
    )
    parser.add_argument("--calib-crops", type=int, default=64, help="calibration people per int8 model")
    parser.add_argument("--no-torch", action="store_true", help="skip torch eager (ONNX Runtime only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = dataclasses.replace(QuantizeConfig.load(), crops=args.calib_crops)
    modes = args.int8_modes if args.int8_modes is not None else [base.mode]
    configs = [base.with_mode(mode) for mode in modes]

    print(
        f"threads={args.threads}  torch {torch.__version__}  ms per crop (median of {args.repeats}, "
        f"interleaved), one MCT cycle; int8: {', '.join(modes) or 'none'}"
    )
    columns = ([] if args.no_torch else ["torch"]) + ["onnx"] + [f"int8 {m}" for m in modes]
    header = f"{'variant':<12} {'batch':>5} " + " ".join(f"{c:>{max(8, len(c))}}" for c in columns)
    header += f" {'onnx/int8':>9} {'ref':>5} {'ref/best':>8}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            model = build_model(name).eval()
            fp32 = export_onnx(model, Path(tmp) / f"{name}.onnx")
            sessions = {"onnx": OnnxBackend(fp32, "cpu", args.threads)}
            if not args.no_torch:  # the app's own eager backend (channels-last on a CPU)
                sessions = {"torch": TorchBackend(model, "cpu"), **sessions}
            for cfg in configs:
                int8 = quantize_onnx(fp32, Path(tmp) / f"{name}.{cfg.mode.replace('/', '-')}.onnx", cfg)
                sessions[f"int8 {cfg.mode}"] = OnnxBackend(int8, "cpu", args.threads)
            for batch in args.batches:
                x = torch.randn(batch, 3, 256, 192)
                x_np = np.ascontiguousarray(x.numpy())
                fns: dict[str, Callable[[], object]] = {}
                for label, backend in sessions.items():
                    fns[label] = lambda b=backend, a=x_np: b(a)
                ms = interleaved_ms(fns, batch, args.repeats)
                cells = " ".join(f"{ms[c]:>{max(8, len(c))}.1f}" for c in columns)
                ratio = ms["onnx"] / ms[f"int8 {modes[0]}"] if modes else float("nan")
                ref = REFERENCE_MS.get(name, float("nan"))
                best = ref / min(ms.values())
                print(f"{name:<12} {batch:>5} {cells} {ratio:>8.2f}x {ref:>5.0f} {best:>7.1f}x")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
