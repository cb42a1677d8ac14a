"""The Lightning module shared by search and training: loss, flip-test validation, metrics.

Shape legend: N batch, K joints, H×W input, h×w = H/4×W/4 heatmaps.
"""
from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn

from trainers.config.schema import Config

from trainers.config.experiment import config_to_dict
from trainers.data.codec import HeatmapCodec
from trainers.data.heatmap_targets import BatchTargets
from trainers.data.registry import primary_metric
from trainers.data.images import SkipCounter
from trainers.data.topdown import TopDownDataset, normalize_images
from trainers.evaluation.prediction import flip_test_predictor
from trainers.engine.losses import DistillLoss, JointsMSELoss, ValidationLoss
from trainers.engine.memory_format import channels_last_input, to_channels_last
from trainers.engine.qat import pact_modules
from trainers.weights.checkpoint import checkpoint_record, seal

__all__ = ["PoseModule", "NonFiniteLossError"]

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class BrokenEvaluationError(RuntimeError):
    """Validation cannot give an honest number: the network's heatmaps are not finite (broken
    weights), or persons went unpredicted without being counted as skipped."""


class PoseModule(pl.LightningModule):
    """Trains a heatmap network with JointsMSELoss and evaluates it with the dataset's metric.

    The evaluator of fixed training, multi-trial trials and (as
    :class:`strategies.oneshot.NasPoseModule`, the NNI ``LightningModule`` NNI's one-shot
    evaluator needs) one-shot search. It follows NNI's interface — ``set_model`` and ``model``,
    the network kept as ``_model`` — without importing NNI, so training a frozen network does
    not load it.

    Args:
        model: (N, 3, H, W) → (N, K, h, w).
        cfg: the experiment config (optimiser, schedule, test options).
        val_dataset: evaluated at the end of each validation epoch (optional).
        out_dir: the run's folder; evaluation results (COCO JSON / pred.mat) go to
            ``eval_dir``, by default ``out_dir/eval``.
        model_info: how to rebuild ``model`` (stored in checkpoints).
        teacher: a trained network whose heatmaps are a second target (``cfg.distill``; see
            :mod:`trainers.engine.distill`). Kept out of the module's submodules: never trained,
            never in a checkpoint, moved to the module's device when fitting starts.
    """

    def __init__(self, model: nn.Module, cfg: Config, val_dataset: TopDownDataset | None = None,
                 out_dir: str | Path = "runs/default", model_info: dict[str, Any] | None = None,
                 eval_dir: str | Path | None = None, teacher: nn.Module | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "teacher", teacher)  # not a submodule (see above)
        self.distill_loss = (DistillLoss(cfg.distill.alpha, cfg.distill.loss,
                                         cfg.distill.temperature, cfg.train.use_target_weight)
                             if teacher is not None else None)
        self._loss_terms: tuple[torch.Tensor, torch.Tensor] | None = None
        self.set_model(model)
        self.cfg = cfg
        self.val_dataset = val_dataset
        self.out_dir = Path(out_dir)
        self.eval_dir = Path(eval_dir) if eval_dir is not None else self.out_dir / "eval"
        #: of the last validation, over all ranks: persons predicted, images skipped
        self.last_predicted = 0
        self.last_skipped = 0
        self.model_info = model_info or {}
        self.criterion = JointsMSELoss(cfg.train.use_target_weight)
        #: the batch's target heatmaps and weights, encoded on the device
        self.batch_targets = BatchTargets(HeatmapCodec.for_model(cfg.model))
        self.metric_name = primary_metric(cfg)
        self.last_metrics: dict[str, float] = {}
        self._train_skips = SkipCounter()
        self._val_skips = SkipCounter()
        self._val_preds: list[np.ndarray] = []
        self._val_index: list[np.ndarray] = []
        self._val_loss = ValidationLoss(cfg.train.use_target_weight)

    @property
    def model(self) -> nn.Module:
        """The network (registered as the submodule ``model``: checkpoint keys ``model.*``)."""
        return self._modules["model"]

    def set_model(self, model: nn.Module) -> None:
        """Set (or replace, e.g. by a one-shot supernet) the network (NNI's ``LightningModule``
        interface)."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self._modules["model"] = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    # ---------------------------------------------------------------- training
    def compute_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The heatmap loss of ``batch`` (no logging; a reward for ENAS); with a teacher, the
        distillation loss (its GT and teacher terms are kept for the training log)."""
        images = channels_last_input(normalize_images(batch["image"], self.cfg.dataset.color_rgb),
                                     self.cfg.train.channels_last)
        output = self.model(images)
        target, target_weight = self.batch_targets(batch)
        if self.teacher is None:
            return self.criterion(output, target, target_weight)
        with torch.no_grad():
            guide = self.teacher(images)
        total, gt, kd = self.distill_loss(output, target, guide, target_weight)
        self._loss_terms = (gt.detach(), kd.detach())
        return total

    def setup(self, stage: str) -> None:
        # before Lightning moves the network and DDP wraps it (its buckets follow the layout)
        if self.cfg.train.channels_last:
            to_channels_last(self.model)
            if self.teacher is not None:
                to_channels_last(self.teacher)

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device).eval()

    def count_skips(self, batch: dict[str, Any]) -> None:
        """Count ``batch``'s unreadable images into the epoch's training skips (reported at the
        epoch's end); the gradient strategies count their validation split's batches here."""
        self._train_skips.update(batch)

    def batch_loss(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """The training loss of ``batch``, checked finite, neither logged nor its skips
        counted; ``None`` when every image of it was unreadable. The gradient strategies'
        architecture steps take it on batches the weights do not step on (DARTS's validation
        split, the second-order virtual step), which ``train/loss`` must not average in."""
        if batch["size"] == 0:
            return None  # every image of this batch was unreadable
        loss = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, step "
                f"{self.global_step}; stopped (last.ckpt keeps the last good epoch). Lower "
                "train.lr, or check the data and the targets.")
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        """The weight step's loss (:meth:`batch_loss`), logged as ``train/loss``."""
        self.count_skips(batch)
        loss = self.batch_loss(batch)
        if loss is None:
            return None
        # the epoch value is averaged over ranks (the step value is this rank's)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=batch["size"], sync_dist=True)
        if self._loss_terms is not None:
            gt, kd = self._loss_terms
            self.log_dict({"train/loss_gt": gt, "train/loss_teacher": kd}, on_step=False,
                          on_epoch=True, batch_size=batch["size"], sync_dist=True)
        return loss

    def on_train_epoch_end(self) -> None:
        self._train_skips.report(f"epoch {self.current_epoch} train")

    def configure_optimizers(self):
        t = self.cfg.train
        clips = {id(m.alpha) for m in pact_modules(self.model)}  # QAT: PACT's own decay
        params = [p for p in self.model.parameters() if p.requires_grad and id(p) not in clips]
        groups = [{"params": params, "weight_decay": t.weight_decay}]
        if clips:
            groups.append({"params": [m.alpha for m in pact_modules(self.model)],
                           "weight_decay": self.cfg.quant.alpha_decay})
        if t.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=t.lr)
        elif t.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=t.lr)
        else:
            opt = torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=True)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(t.lr_steps), gamma=t.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # -------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val_preds, self._val_index = [], []
        self._val_loss = ValidationLoss(self.cfg.train.use_target_weight)


    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._val_skips.update(batch)
        if batch["size"] == 0 or self.val_dataset is None:
            return
        predict = flip_test_predictor(self.model, self.val_dataset.spec.flip_pairs,
                                      self.cfg.test.flip_test, self.cfg.test.shift_heatmap,
                                      self.cfg.dataset.color_rgb, self.device)
        output = predict(batch).float()
        self._val_loss.update(output, *self.batch_targets(batch))
        heatmaps = output.cpu().numpy()
        coords, maxvals = self.val_dataset.codec.decode_to_image(
            heatmaps, batch["center"].cpu().numpy(), batch["scale"].cpu().numpy(),
            self.cfg.test.post_process)
        self._val_preds.append(np.concatenate([coords, maxvals], axis=2))
        self._val_index.append(batch["index"].cpu().numpy())

    def _check_complete(self, preds: np.ndarray, index: np.ndarray, skipped: int) -> None:
        """Every validation person predicted with finite values, or counted as skipped."""
        bad = int((~np.isfinite(preds)).any(axis=(1, 2)).sum()) if len(preds) else 0
        if bad:
            raise BrokenEvaluationError(
                f"the network's heatmaps are not finite for {bad} of {len(preds)} validation "
                "persons: its weights are broken (corrupted, or a diverged training)")
        expected = len(self.val_dataset)
        limited = self.trainer.limit_val_batches not in (1, 1.0)
        if not limited and len(np.unique(index)) + skipped < expected:
            raise BrokenEvaluationError(
                f"{len(np.unique(index))} predictions and {skipped} skipped images for "
                f"{expected} validation persons: some went missing")

    def on_validation_epoch_end(self) -> None:
        if self.val_dataset is None:
            return
        skipped = self._val_skips.report(f"epoch {self.current_epoch} validation")
        preds = (np.concatenate(self._val_preds) if self._val_preds
                 else np.zeros((0, self.val_dataset.num_joints, 3), np.float32))
        index = np.concatenate(self._val_index) if self._val_index else np.zeros(0, np.int64)
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (preds, index, skipped, self._val_loss.state))
            preds = np.concatenate([g[0] for g in gathered])
            index = np.concatenate([g[1] for g in gathered])
            skipped = sum(g[2] for g in gathered)
            self._val_loss.state = [sum(g[3][0] for g in gathered), sum(g[3][1] for g in gathered)]
        self.last_predicted, self.last_skipped = int(len(np.unique(index))), int(skipped)
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self._check_complete(preds, index, skipped)
        metrics: dict[str, float] = {}
        if self.trainer.is_global_zero and len(index):
            metrics = self.val_dataset.evaluate(preds, index, str(self.eval_dir))
        metrics = self.trainer.strategy.broadcast(metrics)
        if self._val_loss.value is not None:  # the same sums on every rank (gathered above)
            metrics = {**metrics, "loss": self._val_loss.value}
        self.last_metrics = metrics
        for name, value in metrics.items():
            # computed on rank 0 and broadcast: every rank logs the same value
            self.log(f"val/{name}", float(value), prog_bar=name == self.metric_name,
                     sync_dist=True)

    # ------------------------------------------------------------- checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what rebuilds and resumes this run, as plain data (``weights_only`` loadable)."""
        np_state = np.random.get_state()
        checkpoint["posenas"] = checkpoint_record(
            config_to_dict(self.cfg), self.model_info, self.last_metrics,
            rng={
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                          int(np_state[2]), int(np_state[3]), float(np_state[4])],
                "python": random.getstate(),
            })
        seal(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("posenas", {}).get("rng")
        if not rng:
            return
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        name, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, state, gauss = rng["python"]
        random.setstate((version, tuple(state), gauss))
        self.last_metrics = dict(checkpoint["posenas"].get("metrics", {}))
