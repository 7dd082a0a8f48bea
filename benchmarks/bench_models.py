"""CPU latency per crop of every SDPose variant: torch eager vs ONNX Runtime, batch 1 and 8.

    .venv/bin/python benchmarks/bench_models.py [--threads 2] [--variants sdpose_t] [--repeats 20]

Runs ONE MCT cycle (what inference needs). Machines are shared and noisy: read the ratios,
and the medians rather than single figures. The reference column is the authors' modules
(torch eager, 2 threads, all cycles, batch 1) measured on this machine kind (issue 2).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdpose_core.export import INPUT_NAME, OUTPUT_NAME, export_onnx  # noqa: E402
from sdpose_core.models import VARIANT_NAMES, build_model  # noqa: E402

REFERENCE_MS = {"sdpose_t": 52.0, "sdpose_s_v1": 54.0, "sdpose_s_v2": 390.0, "sdpose_b": 82.0}


def _median_ms(fn, batch: int, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / batch


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"threads={args.threads}  torch {torch.__version__}  ms per crop (median), one MCT cycle")
    header = (
        f"{'variant':<12} {'batch':>5} {'torch':>8} {'onnx':>8} {'torch/onnx':>10} {'ref':>6} {'ref/best':>8}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            model = build_model(name).eval()
            session = ort_session(export_onnx(model, Path(tmp) / f"{name}.onnx"), args.threads)
            for batch in args.batches:
                x = torch.randn(batch, 3, 256, 192)
                x_np = x.numpy()
                with torch.inference_mode():
                    torch_ms = _median_ms(lambda m=model, t=x: m(t), batch, args.repeats)
                onnx_ms = _median_ms(
                    lambda s=session, a=x_np: s.run([OUTPUT_NAME], {INPUT_NAME: a}), batch, args.repeats
                )
                ref = REFERENCE_MS.get(name, float("nan"))
                print(
                    f"{name:<12} {batch:>5} {torch_ms:>8.1f} {onnx_ms:>8.1f} {torch_ms / onnx_ms:>10.2f}"
                    f" {ref:>6.0f} {ref / min(torch_ms, onnx_ms):>7.1f}x"
                )
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
