"""What this machine's CPU can do, for choosing (or warning about) bf16 and int8 on the CPU."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_has_native_bf16", "cpu_has_int8_dot", "prefers_channels_last"]


def _cpu_flags(cpuinfo: str | None) -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (or the given text); None where unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split()}
    return flags or None


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), from /proc/cpuinfo;
    None where that cannot be read. Without it, bf16 autocast is emulated and slower than fp32
    (a 2-core Xeon here: 9.5 s against 6.5 s per SDPose-T training step of 32 crops)."""
    flags = _cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8_dot(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX int8),
    which ONNX Runtime's int8 kernels need to be much faster than fp32; None where unknown.
    Measured with SDPose-T, 2 threads, batch 1: int8 1.5x fp32 on an AVX-512 VNNI EPYC, but
    only 1.1-1.2x on an AVX2-only EPYC (40.9 against 45.2 ms a crop)."""
    flags = _cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def prefers_channels_last(device_type: str) -> bool:
    """Whether eager convolutions run faster on channels-last (NHWC) weights and inputs here. On
    a CPU, oneDNN computes convolutions in NHWC and reorders NCHW tensors on every call; measured
    on SDPose-T (2-core Xeon, AVX-512): a training step of 32 crops in bf16, 12.0 -> 19.7 crops/s;
    inference, 31.7 -> 26.4 ms a crop in fp32 and 18.1 -> 14.3 in bf16. Compiled training gains
    nothing (inductor picks its own layouts: 22.3 against 21.2 crops/s), and CUDA is unmeasured,
    so both keep the default layout."""
    return device_type == "cpu"
