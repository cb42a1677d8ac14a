"""SPOS's second phase: rank sampled single paths of the trained supernet on the validation set
(weights shared, no retraining) and keep the best as ``arch.json``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from search_space.arch import ArchFile, save_arch
from strategies.records import HistoryWriter
from trainers.config import Config
from trainers.report import format_table

__all__ = ["pick_best_path"]


def pick_best_path(cfg: Config, oneshot_module: Any, trainer: Any, data: Any, out: Path,
                   recorder: Any) -> dict[str, Any]:
    """Evaluate ``cfg.search.num_trials`` uniformly sampled paths; write the best to arch.json."""
    metric = oneshot_module.training_module.metric_name
    space = oneshot_module.training_module.model
    rng = np.random.RandomState(cfg.seed)
    history = HistoryWriter(out / "history.jsonl", key="trial")
    best: tuple[float, dict] | None = None
    rows = []
    for trial in range(cfg.search.num_trials):
        sample = {label: m.random(random_state=rng) for label, m in space.simplify().items()}
        oneshot_module.fixed_sample = sample
        trainer.validate(oneshot_module, data.val, verbose=False)
        value = float(oneshot_module.training_module.last_metrics.get(metric, float("nan")))
        history.append({"trial": trial, "phase": "path_ranking", metric: value,
                        "choices": sample})
        rows.append([trial, f"{value:.4f}"])
        if best is None or value > best[0]:
            best = (value, sample)
    oneshot_module.fixed_sample = None
    print(format_table(["path", f"{metric} (shared weights)"], rows))
    assert best is not None
    save_arch(out / "arch.json", ArchFile(cfg, best[1], "search", {},
                                          {"strategy": "spos", metric: best[0]}))
    return {"best": best[0], "choices": best[1]}
