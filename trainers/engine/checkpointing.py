"""Atomic checkpoints during training: ``last.ckpt`` every epoch, ``best.ckpt`` when the primary
metric improves, and ``metrics.json`` (one record per epoch).

A checkpoint is written to a temporary file in the same folder and renamed over the old one,
so a SIGKILL at any moment leaves a loadable ``last.ckpt``; the callback's state (best value,
history) travels in the checkpoint, so a resumed run continues ``metrics.json``.

Why not Lightning's ``ModelCheckpoint``: Lightning 2.6 saves through
``lightning_fabric.utilities.cloud_io._atomic_save``, which stages the file with
``tempfile.mkstemp()`` in the system temp folder and ``shutil.move``s it into place — a copy,
not a rename, whenever the run folder is on another file system than ``/tmp`` (a cluster's
shared disk), so a kill mid-copy leaves a truncated ``last.ckpt``. Writing the temporary file
beside the target and renaming it is atomic on every POSIX file system.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl

from trainers.atomic import publish, write_json_atomic
from trainers.evaluation.keypoint_metrics import LOWER_IS_BETTER

__all__ = ["AtomicCheckpoint"]

logger = logging.getLogger(__name__)


def _is_better(new: float | None, best: float | None, lower_is_better: bool = False) -> bool:
    """Higher is better (lower for an error such as EPE); a missing or NaN metric never is."""
    if new is None or math.isnan(new):
        return False
    return best is None or (new < best if lower_is_better else new > best)


class AtomicCheckpoint(pl.Callback):
    """Save ``last.ckpt`` each epoch and ``best.ckpt`` when the metric improves; keep
    ``metrics.json`` (one record per epoch: loss, learning rate, validation metrics; with
    ``recipe``, the recipe the run trained with, e.g. :func:`recipe_record`)."""

    def __init__(self, out_dir: str | Path, metric: str, verbose: bool = True,
                 recipe: Mapping[str, Any] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.metric = metric
        self.recipe = dict(recipe) if recipe else None
        self.verbose = verbose  # a line per epoch when there is no progress bar
        self.best: float | None = None
        self.history: list[dict[str, Any]] = []

    @property
    def state_key(self) -> str:
        return "AtomicCheckpoint"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.history = list(state.get("history", []))

    def _save(self, trainer: pl.Trainer, name: str) -> None:
        final = self.out_dir / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.out_dir)
        os.close(fd)
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # full state: resumable
            if trainer.is_global_zero:
                publish(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        metrics = dict(getattr(pl_module, "last_metrics", {}))
        loss = trainer.callback_metrics.get("train/loss_epoch")
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        record = {"epoch": trainer.current_epoch,
                  "train_loss": float(loss) if loss is not None else None, "lr": lr, **metrics}
        for term in ("loss_gt", "loss_teacher"):  # distillation's two terms
            value = trainer.callback_metrics.get(f"train/{term}")
            if value is not None:
                record[f"train_{term}"] = float(value)
        self.history.append(record)
        value = metrics.get(self.metric)
        improved = _is_better(value, self.best, self.metric in LOWER_IS_BETTER)
        if improved:
            self.best = value
        if self.verbose and trainer.is_global_zero and not trainer.progress_bar_callback:
            logger.info(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: train loss "
                        f"{record['train_loss'] if record['train_loss'] is not None else float('nan'):.6f}"
                        f", {self.metric} {value if value is not None else float('nan'):.4f}"
                        + (" (best)" if improved else ""))
        self._save(trainer, "last.ckpt")
        if improved:
            self._save(trainer, "best.ckpt")
        if trainer.is_global_zero:
            write_json_atomic(self.out_dir / "metrics.json",
                              {"metric": self.metric, "best": self.best,
                               "world_size": trainer.world_size,
                               **({"recipe": self.recipe} if self.recipe else {}),
                               "epochs": self.history},
                              indent=1)
