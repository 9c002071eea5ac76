"""Which autocast precision the hardware runs fast: the `mixed_precision: auto` default.

bf16 autocast is only a gain where the hardware computes in bf16. On a CPU without oneDNN bf16 kernels (AVX2
only, no AVX-512) PyTorch falls back to slow reference code: one SFD iteration of the default run measured
24.0 s in bf16 against 1.8 s in fp32 on a 2-core AMD EPYC (Zen 2, bench/results/iteration-speed-avx2.md), while
an AVX-512 machine ran bf16 1.35× faster than fp32. "auto" therefore asks the device, before anything is loaded.
"""

from __future__ import annotations

import os
import platform

import torch

CHOICES = ("auto", "no", "fp16", "bf16")


def cpu_has_fast_bf16() -> bool:
    """oneDNN's own test for bf16 kernels (AVX-512 or AMX on x86); False where PyTorch cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # a private torch call
    except (AttributeError, RuntimeError):
        return False


def resolve_mixed_precision(choice: str, use_cpu: bool | None = None) -> str:
    """ "auto" → "bf16" on a CUDA GPU that supports it or a CPU with bf16 kernels, otherwise "no" (fp32);
    an explicit "no" / "fp16" / "bf16" is returned unchanged. `use_cpu` forces the CPU answer (default: the
    device accelerate will pick, CUDA when there is one)."""
    if choice not in CHOICES:
        raise ValueError(f"mixed_precision must be one of {list(CHOICES)}, got {choice!r}")
    if choice != "auto":
        return choice
    if use_cpu is None:
        use_cpu = not torch.cuda.is_available()
    if not use_cpu:
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_has_fast_bf16() else "no"


def describe_machine() -> str:
    """Where a wall time was measured (model cards, benchmark files): the CPU's architecture and widest vector unit,
    its cores, torch's threads and version, and the GPU when there is one."""
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{platform.machine()} ({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}{gpu}"
    )
