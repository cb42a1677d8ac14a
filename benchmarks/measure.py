"""What every step benchmark reads around its timed region: a device synchronisation and the peak
memory (CUDA: max allocated since the last ``torch.cuda.reset_peak_memory_stats``; CPU: the
process's peak resident set, which is why each case runs in its own process); and the machine a
figure came from (:func:`machine`)."""
from __future__ import annotations

import resource

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
    """The CPU (model, cores, the vector unit torch's kernels use) and the torch build: the same
    seed gives the same AP only where these match (kernels of another vector width round
    differently), so every result JSON records them."""
    # strategies.latency loads NNI; the step benchmarks that import this module must not
    from strategies.latency import cpu_cores, cpu_name

    return {"cpu": cpu_name(), "cores": cpu_cores(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
