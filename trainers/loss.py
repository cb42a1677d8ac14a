"""Heatmap regression loss."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["JointsMSELoss"]


class JointsMSELoss(nn.Module):
    """HRNet's JointsMSELoss: 0.5 · mean squared error per joint, averaged over joints,
    each joint's heatmaps multiplied by its target weight (0 for unlabelled joints).

    Shapes: output, target (N, K, H, W); target_weight (N, K, 1).
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output: torch.Tensor, target: torch.Tensor,
                target_weight: torch.Tensor) -> torch.Tensor:
        n, k = output.shape[:2]
        pred = output.reshape(n, k, -1).float()
        gt = target.reshape(n, k, -1).float()
        if self.use_target_weight:
            w = target_weight.reshape(n, k, 1).float()
            pred, gt = pred * w, gt * w
        # mean over batch and pixels per joint, then over joints (= one global mean)
        return 0.5 * ((pred - gt) ** 2).mean()
