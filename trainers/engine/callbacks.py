"""Lightning callbacks that save overlays during training (PNFS's ``--visualize``/``--debug``).

Pictures are drawn by :mod:`trainers.deploy.drawing` (:func:`~trainers.deploy.drawing.heatmap_grid`: one
input crop with its skeleton, then a tile per joint with that joint's heatmap over the crop).

- :class:`VisualizeCallback` (``--visualize``): after each validation, predictions of the first
  few validation samples → ``DIR/visualize/epoch{E:03d}_{k}.jpg``;
- :class:`DebugCallback` (``--debug``): the first augmented training batch of each epoch with
  its target heatmaps → ``DIR/debug/epoch{E:03d}.jpg``.

Shape legend: K joints, h×w heatmaps, H×W crops (uint8 CHW as the loaders give them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from trainers.data.topdown import normalize_images
from trainers.deploy.drawing import crop_to_bgr, heatmap_grid, save_image

__all__ = ["VisualizeCallback", "DebugCallback", "save_prediction_grids"]


class VisualizeCallback(pl.Callback):
    """Predictions of the first ``num`` validation samples after each validation."""

    def __init__(self, out_dir: str | Path, num: int = 4) -> None:
        self.out_dir = Path(out_dir) / "visualize"
        self.num = num

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        module = getattr(pl_module, "training_module", pl_module)
        dataset = getattr(module, "val_dataset", None)
        if dataset is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        save_prediction_grids(module.model, dataset, self.out_dir,
                              f"epoch{trainer.current_epoch:03d}", self.num,
                              module.cfg.dataset.color_rgb)


@torch.no_grad()
def save_prediction_grids(model: torch.nn.Module, dataset: Any, out_dir: Path, tag: str,
                          num: int, color_rgb: bool) -> list[Path]:
    """Heatmap grids of ``model``'s predictions on the first ``num`` samples of ``dataset``."""
    samples = [dataset[(0, i)] for i in range(min(num, len(dataset)))]
    samples = [s for s in samples if isinstance(s, dict)]
    if not samples:
        return []
    device = next(model.parameters()).device
    images = torch.stack([torch.as_tensor(s["image"]) for s in samples]).to(device)
    was_training = model.training
    model.eval()
    heatmaps = model(normalize_images(images, color_rgb)).float().cpu().numpy()
    model.train(was_training)
    paths = []
    for k, (s, hm) in enumerate(zip(samples, heatmaps)):
        grid = heatmap_grid(crop_to_bgr(np.asarray(s["image"])), hm, dataset.spec)
        paths.append(Path(out_dir) / f"{tag}_{k}.jpg")
        save_image(paths[-1], grid)
    return paths


class DebugCallback(pl.Callback):
    """The first augmented training batch of each epoch with its targets."""

    def __init__(self, out_dir: str | Path, num: int = 4) -> None:
        self.out_dir = Path(out_dir) / "debug"
        self.num = num
        self._epoch_done = -1

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:
        if self._epoch_done == trainer.current_epoch or not trainer.is_global_zero:
            return
        if isinstance(batch, dict) and "train" in batch:  # a bi-level search batch
            batch = batch["train"]
        if isinstance(batch, (tuple, list)):  # ENAS's (batch, tag)
            batch = batch[0]
        if not isinstance(batch, dict) or not batch.get("size"):
            return
        module = getattr(pl_module, "training_module", pl_module)
        spec = module.val_dataset.spec if module.val_dataset is not None else None
        if spec is None:
            return
        rows = []
        n = min(self.num, int(batch["size"]))
        targets, weights = module.batch_targets({k: v[:n] for k, v in batch.items()
                                                 if k in ("target", "target_weight", "joints",
                                                          "visible")})
        for i in range(n):
            image = crop_to_bgr(batch["image"][i].cpu().numpy())
            target = (targets[i] * weights[i].view(-1, 1, 1)).cpu().numpy()
            rows.append(heatmap_grid(image, target, spec, columns=len(spec.names) + 1))
        save_image(self.out_dir / f"epoch{trainer.current_epoch:03d}.jpg", np.concatenate(rows, 0))
        self._epoch_done = trainer.current_epoch
