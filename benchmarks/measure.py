"""What every step benchmark reads around its timed region: a device synchronisation and the peak
memory (CUDA: max allocated since the last ``torch.cuda.reset_peak_memory_stats``; CPU: the
process's peak resident set, which is why each case runs in its own process); and the machine a
figure came from (:func:`machine`)."""
from __future__ import annotations

import resource

import torch

__all__ = ["synchronize", "peak_memory_bytes", "resident_bytes", "machine"]


def synchronize(device: torch.device | str) -> None:
    """Wait for the queued CUDA work (nothing on CPU), so a wall-clock time covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_memory_bytes(device: torch.device | str) -> int:
    """Peak memory of this process on ``device``, in bytes."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def resident_bytes(device: torch.device | str) -> int:
    """Memory this process holds now on ``device``, in bytes (CUDA: allocated; CPU: the resident
    set, from ``/proc/self/statm``, or the peak where that file does not exist): read before a
    timed region, ``peak_memory_bytes() - resident_bytes()`` is what the region added on top of
    the interpreter, the libraries, the weights and the batch."""
    if torch.device(device).type == "cuda":
        return torch.cuda.memory_allocated()
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return peak_memory_bytes(device)


def machine() -> dict[str, object]:
    """The CPU (model, cores, the vector unit torch's kernels use) and the torch build: the same
    seed gives the same AP only where these match (kernels of another vector width round
    differently), so every result JSON records them."""
    # strategies.latency loads NNI; the step benchmarks that import this module must not
    from strategies.latency import cpu_cores, cpu_name

    return {"cpu": cpu_name(), "cores": cpu_cores(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
