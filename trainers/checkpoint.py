"""Atomic checkpoints (``last.ckpt`` every epoch, ``best.ckpt`` by the primary metric),
``metrics.json``, and loading checkpoints safely.

A checkpoint is written to a temporary file in the same folder and renamed over the old one,
so a SIGKILL at any moment leaves a loadable ``last.ckpt``. Checkpoints hold state dicts and
plain metadata only, so they load with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
import torch

from torch import nn

from trainers.atomic import atomic_path, publish, write_json_atomic
from trainers.errors import UserInputError
from trainers.external import Conversion, Target, convert_state, unwrap

__all__ = ["AtomicCheckpoint", "load_checkpoint", "model_state_dict", "read_state_dict",
           "read_weights", "save_state_dict"]

logger = logging.getLogger(__name__)


def _is_better(new: float | None, best: float | None) -> bool:
    """Higher is better; a missing or NaN metric never is."""
    if new is None or math.isnan(new):
        return False
    return best is None or new > best


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
        improved = _is_better(value, self.best)
        if improved:
            self.best = value
        if self.verbose and trainer.is_global_zero and not trainer.progress_bar_callback:
            print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: train loss "
                  f"{record['train_loss'] if record['train_loss'] is not None else float('nan'):.6f}"
                  f", {self.metric} {value if value is not None else float('nan'):.4f}"
                  + (" (best)" if improved else ""), flush=True)
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a posenas checkpoint with ``weights_only=True`` and check its format.

    Raises:
        UserInputError: missing, unreadable, truncated or not a posenas checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(str(path), "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt / foreign files
        raise UserInputError(str(path), f"not a loadable checkpoint ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserInputError(str(path), "not a posenas checkpoint", field="state_dict")
    meta = ckpt.get("posenas")
    if not isinstance(meta, dict) or meta.get("format") != "posenas-ckpt":
        raise UserInputError(str(path), "not a posenas checkpoint (no posenas metadata)",
                             field="posenas")
    return ckpt


def model_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's own state dict (the Lightning module stores it under ``model.``)."""
    prefix = "model."
    return {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


#: where a Lightning checkpoint keeps the network: PoseModule's ``model``, or the one-shot
#: module's ``training_module.model`` (a search supernet)
_NETWORK_PREFIXES = ("training_module.model.", "model.")


def read_weights(path: str | Path, field: str, fmt: str = "auto",
                 target: Target | None = None) -> Conversion:
    """A network's weights from ``path``, in posenas's key layout, with what was converted.

    Reads a posenas/Lightning checkpoint (training or search), a plain state-dict file
    (``derived.pth``, ``pruned.pth``) or a checkpoint released by another code (official HRNet,
    ImageNet HRNet, timm; see :mod:`trainers.external`), always with ``weights_only=True``.
    ``fmt`` forces a format of :data:`~trainers.external.EXTERNAL_FORMATS` (default: detected);
    ``target`` (space, dataset) is the network the weights are for (PoseNFS files need it).

    Raises:
        UserInputError: naming ``path`` and the config key or option ``field``.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - missing, foreign or corrupt file
        raise UserInputError(str(path), f"not a loadable checkpoint or state dict "
                             f"({type(err).__name__}: {str(err).splitlines()[0][:200]})",
                             field=field) from None
    if fmt in ("auto", "posenas") and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        inner = obj["state_dict"]
        for prefix in _NETWORK_PREFIXES:
            if inner and all(isinstance(v, torch.Tensor) for v in inner.values()) \
                    and any(k.startswith(prefix + "backbone.") for k in inner):
                return Conversion("posenas", {k[len(prefix):]: v for k, v in inner.items()
                                              if k.startswith(prefix)})
    state = unwrap(obj)
    if state is None:
        raise UserInputError(str(path), "not a checkpoint or state dict (no tensors found)",
                             field=field)
    try:
        return convert_state(state, fmt, target)
    except ValueError as err:
        raise UserInputError(str(path), str(err), field=field) from None


def read_state_dict(path: str | Path, field: str) -> dict[str, torch.Tensor]:
    """The tensors of :func:`read_weights`, under posenas names."""
    return read_weights(path, field).state


def save_state_dict(network: nn.Module, path: str | Path) -> None:
    """Write ``network``'s state dict atomically (``derived.pth``, ``pruned.pth``): loadable as
    ``model.pretrained`` and by :func:`read_state_dict`."""
    with atomic_path(path) as tmp:
        torch.save(network.state_dict(), tmp)
