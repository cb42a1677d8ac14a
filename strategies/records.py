"""What a search leaves behind: ``history.jsonl`` (one line per epoch or trial) and the
architecture files — ``arch.json`` (the best so far by the validation metric, the epoch it came
from in its ``metrics``) and, for one-shot strategies, ``last_arch.json`` (the latest epoch's)."""
from __future__ import annotations

import logging
import json
import os
from pathlib import Path
from typing import Any, Mapping

import math

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from search_space.counting import param_flop_report
from strategies.collapse import arch_collapse
from strategies.latency import LatencyTable, latency_table_path, space_latency_table
from trainers.network.arch_file import ArchFile, save_arch
from trainers.network.build import build_network, spec_from_choices
from trainers.config.schema import Config
from search_space.errors import UserInputError
from trainers.report import format_table

__all__ = ["HistoryWriter", "split_probs", "arch_value_table", "ArchRecorder",
           "architecture_cost"]

logger = logging.getLogger(__name__)


class HistoryWriter:
    """Appends JSON lines to ``path``; on resume keeps only the records before ``start``."""

    def __init__(self, path: str | Path, key: str = "epoch") -> None:
        self.path = Path(path)
        self.key = key

    def truncate(self, start: int) -> None:
        """Drop records with ``key >= start`` (they are redone after a resume)."""
        if not self.path.is_file():
            return
        keep = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get(self.key, -1) < start]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, self.path)

    def append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def split_probs(probs: Mapping[str, Mapping[Any, float]]) -> dict[str, dict[str, Any]]:
    """NNI's ``export_probs()`` as arch.json ``weights``: α (operations and widths, by candidate)
    and β (a cell's three input slots, as a list)."""
    alpha: dict[str, Any] = {}
    beta: dict[str, Any] = {}
    for label, distribution in probs.items():
        if label.endswith("/input"):
            beta[label] = [round(float(distribution.get(i, 0.0)), 6)
                           for i in range(len(distribution))]
        else:
            alpha[label] = {str(k): round(float(v), 6) for k, v in distribution.items()}
    return {"alpha": alpha, "beta": beta}


def arch_value_table(weights: Mapping[str, Mapping[str, Any]]) -> str:
    """``--show_arch_value``: softmax of α and β per label."""
    rows = []
    for label, distribution in weights.get("alpha", {}).items():
        rows.append([label, "  ".join(f"{k}={v:.3f}" for k, v in distribution.items())])
    for label, probs in weights.get("beta", {}).items():
        rows.append([label, "  ".join(f"{name}={p:.3f}" for name, p in
                                      zip(("same", "from_higher", "from_lower"), probs))])
    return format_table(["label", "softmax"], rows)


def architecture_cost(cfg: Config, choices: Mapping[str, Any],
                      latency: LatencyTable | None = None) -> dict[str, Any]:
    """Params and GFLOPs of the frozen network of ``choices``, and with a latency table its
    predicted latency (``latency_ms``). An architecture the space cannot freeze (an export NNI
    made that the builder refuses) has no cost: a warning says why, and the record carries the
    reason (``freeze_error``) instead of silently lacking the numbers."""
    try:
        network = build_network(spec_from_choices(cfg, choices))
    except (UserInputError, ValueError) as err:
        logger.warning("this architecture cannot be frozen, so it has no params/GFLOPs: %s", err)
        return {"freeze_error": str(err)}
    report = param_flop_report(network, cfg.model.input_size)
    cost = {"params": report["params"], "gflops": round(report["gflops"], 5)}
    if latency is not None:
        cost["latency_ms"] = round(latency.predict(network), 5)
        latency.save()
    return cost


def check_same_across_ranks(pl_module: pl.LightningModule) -> None:
    """Under DDP every process must hold the same architecture parameters (α/β, width logits);
    raise if they drifted apart (a gradient that skipped the all-reduce)."""
    params = list(pl_module.arch_parameters()) if hasattr(pl_module, "arch_parameters") else []
    if not params or not (dist.is_available() and dist.is_initialized()):
        return
    mine = torch.cat([p.detach().flatten().float().cpu() for p in params])
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    worst = max(float((g - gathered[0]).abs().max()) for g in gathered)
    if worst > 0:
        raise RuntimeError(f"architecture parameters differ across DDP ranks (max |Δ| {worst:.3g}): "
                           "a gradient skipped the all-reduce")


class ArchRecorder(pl.Callback):
    """For one-shot strategies: after each epoch's validation, append the epoch to
    ``history.jsonl`` (loss, metrics, cost, the collapse signal of :mod:`strategies.collapse`,
    α/β softmax), write ``last_arch.json`` with the current
    export of the strategy (NNI's argmax) and its α/β, and copy it to ``arch.json`` when the
    supernet's validation metric is the best so far (``metrics.epoch`` says which epoch; an
    epoch without a finite metric never is)."""

    def __init__(self, cfg: Config, strategy: str, out_dir: Path, show_arch_value: bool) -> None:
        self.cfg = cfg
        self.strategy = strategy
        self.out_dir = Path(out_dir)
        self.history = HistoryWriter(self.out_dir / "history.jsonl")
        self.show = show_arch_value
        self.records: list[dict[str, Any]] = []
        self.best: float | None = None
        self._latency: LatencyTable | None = None

    def latency_table(self) -> LatencyTable | None:
        """With ``search.goal.cost latency``: the run's table (measured on first use)."""
        if self.cfg.search.goal.cost != "latency":
            return None
        if self._latency is None:
            self._latency = space_latency_table(self.cfg, latency_table_path(self.cfg,
                                                                             self.out_dir))
        return self._latency

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:  # after a resume: drop the epochs that are redone
            self.history.truncate(trainer.current_epoch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.world_size > 1:
            check_same_across_ranks(pl_module)
        stop_at = self.cfg.search.collapse.stop
        if not trainer.is_global_zero and not stop_at:
            return
        probs = pl_module.export_probs()
        choices = {k: (list(v) if isinstance(v, (list, tuple)) else v)
                   for k, v in pl_module.export().items()}
        weights = split_probs(probs)
        collapse = arch_collapse(self.cfg, choices, weights) if weights["alpha"] else {}
        # every rank decides alike (α/β are the same on all of them: checked above)
        collapsed = bool(stop_at and trainer.current_epoch >= self.cfg.search.warmup_epochs
                         and collapse.get("param_free_share", 0.0) >= stop_at)
        if collapsed:
            trainer.should_stop = True
        if not trainer.is_global_zero:
            return
        metrics = dict(pl_module.training_module.last_metrics)
        loss = trainer.callback_metrics.get("train/loss_epoch")
        terms = {f"train_{t}": float(trainer.callback_metrics[f"train/{t}"])  # search.distill
                 for t in ("loss_gt", "loss_teacher") if f"train/{t}" in trainer.callback_metrics}
        record = {"epoch": trainer.current_epoch, "strategy": self.strategy,
                  "train_loss": float(loss) if loss is not None else None, **terms, **metrics,
                  **architecture_cost(self.cfg, choices, self.latency_table()),
                  **collapse, **({"collapse_stop": True} if collapsed else {}),
                  "alpha": weights["alpha"], "beta": weights["beta"]}
        self.history.append(record)
        self.records.append(record)
        metric = pl_module.training_module.metric_name
        arch = ArchFile(self.cfg, choices, "search", weights,
                        {"epoch": trainer.current_epoch, "strategy": self.strategy, **metrics})
        save_arch(self.out_dir / "last_arch.json", arch)
        value = metrics.get(metric)
        if collapsed:
            logger.info(f"epoch {trainer.current_epoch + 1}: parameter-free share "
                        f"{collapse['param_free_share']:.2f} ≥ search.collapse.stop {stop_at}: the "
                        "search stops; arch.json keeps the best epoch before")
            if self.best is None:  # no earlier epoch was kept: this one
                save_arch(self.out_dir / "arch.json", arch)
        elif value is not None and math.isfinite(value) and (self.best is None
                                                             or value > self.best):
            self.best = value
            save_arch(self.out_dir / "arch.json", arch)
        logger.info(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: train loss "
                    f"{record['train_loss'] if record['train_loss'] is not None else float('nan'):.6f}"
                    f", supernet {metric} {metrics.get(metric, float('nan')):.4f}"
                    + (f", parameter-free ops {record['param_free_share']:.2f}, cells kept "
                 f"{record['cells_kept']:.2f}" if "param_free_share" in record else ""))
        if self.show:
            logger.info(arch_value_table(weights))
