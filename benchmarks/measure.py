"""What every step benchmark reads around its timed region: a device synchronisation and the peak
memory (CUDA: max allocated since the last ``torch.cuda.reset_peak_memory_stats``; CPU: the
process's peak resident set, which is why each case runs in its own process); and the machine a
figure came from (:func:`machine`)."""
from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import torch

__all__ = ["synchronize", "peak_memory_bytes", "machine"]


def synchronize(device: torch.device | str) -> None:
    """Wait for the queued CUDA work (nothing on CPU), so a wall-clock time covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_memory_bytes(device: torch.device | str) -> int:
    """Peak memory of this process on ``device``, in bytes."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine() -> dict[str, object]:
    """The CPU (model, cores, the widest vector unit torch's kernels can use) and the torch
    build: the same seed gives the same AP only where these match (kernels of another vector
    width round differently), so every result JSON records them."""
    model, flags = platform.processor() or "", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    vector = next((v for v in ("avx512f", "avx2", "avx", "neon", "asimd") if v in flags), "")
    return {"cpu": model, "cores": os.cpu_count(),
            "vector": vector.replace("avx512f", "avx512"), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
