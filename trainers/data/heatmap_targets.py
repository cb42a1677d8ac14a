"""A batch's Gaussian target heatmaps, encoded where the batch is (the training device).

A training sample leaves the loader worker with its joints in crop pixels and their
visibility, not its heatmaps: :class:`BatchTargets` encodes the whole batch in a few tensor
operations, with the very lookups of :meth:`~trainers.data.codec.HeatmapCodec.encode_separable`
(HRNet's ``generate_target``: the integer centre ``int(x / stride + 0.5)``, the Gaussian
truncated to its ``3σ`` window, weight 0 for unlabelled joints and joints whose window misses
the heatmap), so the targets are the per-sample encoder's bit for bit. The worker saves that
encoding (tens of microseconds of small NumPy calls per sample); the device spends a few
microseconds per batch.

Shape legend: N samples, K joints, h×w heatmap.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainers.data.codec import HeatmapCodec, expand_targets

__all__ = ["BatchTargets"]


class BatchTargets:
    """Target heatmaps (N, K, h, w) and weights (N, K, 1) of a loader batch.

    Args:
        codec: the dataset's codec (input and heatmap sizes, σ).
    """

    def __init__(self, codec: HeatmapCodec) -> None:
        self.codec = codec
        self._constants: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The codec's lookup table, stride, heatmap extent and pixel indices on ``device``,
        copied there once (not per batch)."""
        if device not in self._constants:
            hm_h, hm_w = self.codec.heatmap_size
            self._constants[device] = (
                torch.from_numpy(self.codec.gaussian_profile[1]).to(device),
                torch.as_tensor(self.codec.stride, dtype=torch.float64).to(device),
                torch.tensor([hm_w, hm_h]).to(device),
                torch.arange(hm_w).to(device), torch.arange(hm_h).to(device))
        return self._constants[device]

    def separable(self, joints: torch.Tensor, visible: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Row profiles (..., K, w), column profiles (..., K, h) and weights (..., K, 1), float32,
        from joints (..., K, 2) in input pixels and visibility (..., K)."""
        radius = self.codec.gaussian_profile[0]
        table, stride, extent, cols, rows = self._on(joints.device)
        last = len(table) - 1
        weights = (visible[..., None] > 0).to(torch.float32)
        mu = (joints[..., :2].to(torch.float64) / stride + 0.5).to(torch.int64)  # trunc, as int()
        outside = ((mu - radius >= extent) | (mu + radius + 1 < 0)).any(dim=-1, keepdim=True)
        weights = weights.masked_fill(outside, 0.0)
        gx = table[(cols - mu[..., :1] + (radius + 1)).clamp(0, last)]
        gy = table[(rows - mu[..., 1:] + (radius + 1)).clamp(0, last)] * weights
        return gx, gy, weights

    def __call__(self, batch: dict[str, Any]) -> tuple[Any, Any]:
        """(heatmaps, weights) of a batch of tensors, or of one sample of NumPy arrays (returned
        as NumPy); a batch that carries ``target`` and ``target_weight`` keeps them."""
        if "target" in batch:
            return batch["target"], batch["target_weight"]
        joints, visible = batch["joints"], batch["visible"]
        if isinstance(joints, np.ndarray):
            gx, gy, w = self.separable(torch.from_numpy(np.asarray(joints, np.float32)),
                                       torch.from_numpy(np.asarray(visible, np.float32)))
            return expand_targets(gx, gy).numpy(), w.numpy()
        gx, gy, w = self.separable(joints, visible)
        return expand_targets(gx, gy), w
