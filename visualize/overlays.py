"""Keypoint and heatmap overlays of training and evaluation (PNFS's ``--visualize``/``--debug``).

- :func:`heatmap_grid`: one input crop with its skeleton, then a tile per joint with that
  joint's heatmap blended over the crop;
- :class:`VisualizeCallback` (``--visualize``): after each validation, predictions of the first
  few validation samples → ``DIR/visualize/epoch{E:03d}_{k}.jpg``;
- :class:`DebugCallback` (``--debug``): the first augmented training batch of each epoch with
  its target heatmaps → ``DIR/debug/epoch{E:03d}.jpg``.

Shape legend: K joints, h×w heatmaps, H×W crops (uint8 CHW as the loaders give them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch

from trainers.data.joints import KeypointSpec
from trainers.data.topdown import normalize_images
from visualize.keypoints import draw_skeleton

__all__ = ["heatmap_grid", "crop_to_bgr", "VisualizeCallback", "DebugCallback", "save_image",
           "save_prediction_grids"]


def crop_to_bgr(image_chw: np.ndarray, color_rgb: bool = True) -> np.ndarray:
    """A loader crop (uint8 3×H×W, RGB unless ``color_rgb`` is false) as a BGR HWC image."""
    img = np.ascontiguousarray(np.transpose(image_chw, (1, 2, 0)))
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if color_rgb else img.copy()


def _peaks(heatmaps: np.ndarray, stride: float) -> np.ndarray:
    """(K, h, w) → (K, 3) crop-pixel argmax positions and peak values."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1)
    idx = flat.argmax(1)
    return np.stack([(idx % w + 0.5) * stride - 0.5, (idx // w + 0.5) * stride - 0.5,
                     flat.max(1)], axis=1)


def heatmap_grid(image_bgr: np.ndarray, heatmaps: np.ndarray, spec: KeypointSpec,
                 columns: int = 6, threshold: float = 0.2) -> np.ndarray:
    """The crop with the skeleton decoded from ``heatmaps`` (K, h, w), then a tile per joint."""
    h, w = image_bgr.shape[:2]
    stride = w / heatmaps.shape[-1]
    first = draw_skeleton(image_bgr.copy(), _peaks(heatmaps, stride), spec, threshold)
    tiles = [first]
    for j in range(heatmaps.shape[0]):
        hm = np.clip(heatmaps[j], 0, 1)
        hm = cv2.resize((hm * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        tile = cv2.addWeighted(image_bgr, 0.5, cv2.applyColorMap(hm, cv2.COLORMAP_JET), 0.5, 0)
        cv2.putText(tile, spec.names[j][:12], (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(image_bgr))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def save_image(path: Path, image: np.ndarray) -> None:
    """Write an image atomically."""
    from trainers.atomic import atomic_path

    ok, data = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise OSError(f"cannot encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


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
        grid = heatmap_grid(crop_to_bgr(np.asarray(s["image"]), color_rgb), hm, dataset.spec)
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
        color_rgb = module.cfg.dataset.color_rgb
        rows = []
        for i in range(min(self.num, int(batch["size"]))):
            image = crop_to_bgr(batch["image"][i].cpu().numpy(), color_rgb)
            target = (batch["target"][i] * batch["target_weight"][i].view(-1, 1, 1)).cpu().numpy()
            rows.append(heatmap_grid(image, target, spec, columns=len(spec.names) + 1))
        save_image(self.out_dir / f"epoch{trainer.current_epoch:03d}.jpg", np.concatenate(rows, 0))
        self._epoch_done = trainer.current_epoch
