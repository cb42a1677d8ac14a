"""The hardware-aware objective of a search (``search.objective``)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from trainers.config import Config, SearchConfig

__all__ = ["objective", "train_and_score"]


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


def train_and_score(cfg: Config, model: nn.Module, out: Path, name: str,
                    callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train a candidate with ``cfg``'s recipe (a trial's config: its epochs and batch) and
    score it: ``{"objective", metric, "params", "gflops", "train_loss"}``."""
    from trainers.engine import fit
    from trainers.module import primary_metric
    from visualize.param_flop import param_flop_report

    metric = primary_metric(cfg.dataset.name)
    report = param_flop_report(model, cfg.model.input_size)  # the architecture's cost
    summary = fit(cfg, model, {"name": name}, out, progress=False, callbacks=list(callbacks))
    value = summary["best"] if summary["best"] is not None else float("nan")
    return {"objective": objective(value, report["gflops"], cfg.search), metric: value,
            "params": report["params"], "gflops": round(report["gflops"], 5),
            "train_loss": summary["history"][-1]["train_loss"] if summary["history"] else None}
