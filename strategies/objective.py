"""The hardware-aware objective of a search (``search.objective``)."""
from __future__ import annotations

import math

from trainers.config import SearchConfig

__all__ = ["objective"]


def objective(metric: float, gflops: float | None, s: SearchConfig) -> float:
    """What trials and rankings maximise.

    - ``metric``: AP (COCO) or PCKh (MPII) alone;
    - ``flops_penalty``: ``metric × (gflops / target_gflops) ** -penalty_weight`` when above the
      target, the metric otherwise (MnasNet's soft constraint);
    - ``flops_constraint``: the metric when ``gflops ≤ target_gflops``, else 0.
    """
    if s.objective == "metric" or not math.isfinite(metric):
        return metric
    if gflops is None or s.target_gflops <= 0:
        raise ValueError("search.objective needs search.target_gflops > 0 and measured GFLOPs")
    if gflops <= s.target_gflops:
        return metric
    if s.objective == "flops_constraint":
        return 0.0
    return metric * (gflops / s.target_gflops) ** (-s.penalty_weight)
