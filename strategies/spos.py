"""SPOS's second phase: rank sampled single paths of the trained supernet on the validation set
(weights shared, no retraining; each path's BN statistics recalibrated on
``search.bn_recalibration_batches`` training batches first, as the SPOS paper does) and keep the
best as ``arch.json``: by the search objective, ties broken by the lower validation loss."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from strategies.latency import latency_table_path, space_latency_table
from strategies.trials import COST_KEY, objective
from strategies.records import HistoryWriter, architecture_cost
from trainers.network.arch_file import ArchFile, save_arch
from trainers.engine.bn_recalibration import recalibrate_bn
from trainers.config.schema import Config
from trainers.report import format_table

__all__ = ["pick_best_path"]

logger = logging.getLogger(__name__)


def pick_best_path(cfg: Config, oneshot_module: Any, trainer: Any, data: Any,
                   out: Path) -> dict[str, Any]:
    """Evaluate ``cfg.search.num_trials`` uniformly sampled paths; write the best to arch.json."""
    metric = oneshot_module.training_module.metric_name
    space = oneshot_module.training_module.model
    rng = np.random.RandomState(cfg.seed)
    latency = (space_latency_table(cfg, latency_table_path(cfg, out))
               if cfg.search.goal.cost == "latency" and cfg.search.goal.objective != "metric" else None)
    history = HistoryWriter(out / "history.jsonl", key="trial")
    best: tuple[float, float, float, dict] | None = None  # objective, -loss, metric, choices
    rows = []
    for trial in range(cfg.search.num_trials):
        sample = {label: m.random(random_state=rng) for label, m in space.simplify().items()}
        oneshot_module.fixed_sample = sample
        bn_batches = 0
        if cfg.search.bn_recalibration_batches:  # SPOS: the path's own BN statistics
            for module in oneshot_module.supernet_modules():
                module.resample(memo=dict(sample))
            bn_batches = recalibrate_bn(space, cfg, cfg.search.bn_recalibration_batches)
        trainer.validate(oneshot_module, data.val, verbose=False)
        metrics = oneshot_module.training_module.last_metrics
        ap = float(metrics.get(metric, float("nan")))
        loss = float(metrics.get("loss", float("nan")))
        costs = (architecture_cost(cfg, sample, latency)
                 if cfg.search.goal.objective != "metric" else {})
        value = objective(ap, costs.get(COST_KEY[cfg.search.goal.cost]), cfg.search.goal)
        history.append({"trial": trial, "phase": "path_ranking", metric: ap, "loss": loss,
                        "objective": value,
                        "bn_batches": bn_batches, "choices": sample, **{k: v for k, v in costs.items() if k != "params"}})
        rows.append([trial, f"{ap:.4f}", f"{loss:.3e}", f"{value:.4f}"])
        # ties (a short supernet often scores every path AP 0) go to the lower validation loss
        if best is None or (value, -loss) > best[:2]:
            best = (value, -loss, ap, sample)
    oneshot_module.fixed_sample = None
    logger.info(format_table(["path", f"{metric} (shared weights)", "val loss", "objective"], rows))
    assert best is not None
    value, _, ap, choices = best
    save_arch(out / "arch.json", ArchFile(cfg, choices, "search", {},
                                          {"strategy": "spos", metric: ap, "objective": value}))
    return {"best": value, "choices": choices}
