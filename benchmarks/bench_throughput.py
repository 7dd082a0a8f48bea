"""Crops/s of the SDPose network alone at large batches: the GPU serving figure.

    .venv/bin/python benchmarks/bench_throughput.py --device cuda \
        [--variants sdpose_t ...] [--batches 64 256] [--precisions fp32 bf16] \
        [--modes eager cudagraph compile compile-cudagraph] [--seconds 3] [--json out.json]

One MCT cycle in eval mode (what `PoseEngine` runs), random crops already on the device, so
the figure is the network's ceiling; decoding and cropping are timed by bench_pipeline.py.

Modes:
* eager: plain PyTorch (SDPA attention is already fused).
* cudagraph: the eager model captured once in a CUDA graph per batch size (CUDA only).
* compile: ``torch.compile`` (inductor, default mode).
* compile-cudagraph: ``torch.compile(mode="reduce-overhead")``, inductor plus CUDA graphs.

fp32 allows TF32 matmuls and convolutions on CUDA, as the reference figures did; bf16 is
autocast. ``--channels-last`` tries the NHWC layout for the convolutions. The reference
column is the authors' modules on one H100: torch eager, TF32, all cycles, best batch.
On a CPU the same command runs (cudagraph modes are skipped): useful to check the script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdpose_core.models import VARIANT_NAMES, build_model

H100_REFERENCE_CROPS_S = {"sdpose_t": 4422, "sdpose_s_v1": 3526, "sdpose_s_v2": 720, "sdpose_b": 1576}
MODES = ("eager", "cudagraph", "compile", "compile-cudagraph")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def make_runner(
    model: torch.nn.Module, crops: torch.Tensor, mode: str, precision: str
) -> Callable[[], torch.Tensor]:
    """A no-argument callable that runs one batch in the given mode (compiling/capturing first)."""
    device = crops.device
    if mode in ("eager", "cudagraph"):
        net = model
    elif mode == "compile":
        net = torch.compile(model)
    else:
        net = torch.compile(model, mode="reduce-overhead")

    def forward() -> torch.Tensor:
        with torch.inference_mode(), _autocast(device, precision):
            return net(crops)

    if mode != "cudagraph":
        return forward
    # Warm up on a side stream (as the CUDA graph docs require), then capture one replay.
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            forward()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode(), _autocast(device, precision):
        static_out = model(crops)

    def replay() -> torch.Tensor:
        graph.replay()
        return static_out

    return replay


def crops_per_second(
    run: Callable[[], torch.Tensor], batch: int, device: torch.device, seconds: float
) -> float:
    """Warm up (compilation happens here), then time whole batches for about ``seconds``."""
    for _ in range(3):
        run()
    _sync(device)
    done, start = 0, time.perf_counter()
    while True:
        run()
        done += 1
        if done % 5 == 0:
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return done * batch / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES), choices=VARIANT_NAMES)
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per row, after warm-up")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda but no CUDA GPU is visible; use --device cpu", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    modes = [m for m in args.modes if device.type == "cuda" or "cudagraph" not in m]
    print(f"{name}  torch {torch.__version__}  crops/s, one MCT cycle, network only")
    header = f"{'variant':12} {'batch':>5} {'prec':>5} {'mode':>18} {'crops/s':>9} {'x H100 ref':>10}"
    print(header)
    print("-" * len(header))
    rows = []
    for variant in args.variants:
        for batch in args.batches:
            for precision in args.precisions:
                for mode in modes:
                    torch._dynamo.reset()
                    model = build_model(variant).eval().to(device)
                    crops = torch.randn(batch, 3, 256, 192, device=device)
                    if args.channels_last:
                        model = model.to(memory_format=torch.channels_last)
                        crops = crops.contiguous(memory_format=torch.channels_last)
                    try:
                        run = make_runner(model, crops, mode, precision)
                        rate = crops_per_second(run, batch, device, args.seconds)
                    except Exception as exc:  # a mode that fails on this stack is a result, not a crash
                        print(f"{variant:12} {batch:5d} {precision:>5} {mode:>18}  failed: {exc!r:.60}")
                        continue
                    ratio = rate / H100_REFERENCE_CROPS_S[variant]
                    print(f"{variant:12} {batch:5d} {precision:>5} {mode:>18} {rate:9.0f} {ratio:10.2f}")
                    rows.append(
                        dict(variant=variant, batch=batch, precision=precision, mode=mode, crops_per_s=rate)
                    )
                    del model, crops
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
