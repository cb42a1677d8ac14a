"""Heatmap losses: regression to the targets, and distillation from a teacher's heatmaps.

Shape legend: N batch, K joints, h×w heatmap.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ValidationLoss", "JointsMSELoss", "HeatmapKLLoss", "DistillLoss"]


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


class HeatmapKLLoss(nn.Module):
    """Per joint, KL(softmax(t/τ) ‖ softmax(s/τ)) over the h·w pixels, × τ² (Hinton et al.),
    weighted by the target weight and averaged over samples and joints."""

    def __init__(self, temperature: float = 0.1, use_target_weight: bool = True) -> None:
        super().__init__()
        self.temperature = temperature
        self.use_target_weight = use_target_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                target_weight: torch.Tensor) -> torch.Tensor:
        n, k = student.shape[:2]
        tau = self.temperature
        log_s = F.log_softmax(student.reshape(n, k, -1).float() / tau, dim=-1)
        log_t = F.log_softmax(teacher.reshape(n, k, -1).float() / tau, dim=-1)
        kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (N, K)
        if self.use_target_weight:
            kl = kl * target_weight.reshape(n, k).float()
        return kl.mean() * tau * tau


class DistillLoss(nn.Module):
    """``(1 − alpha) · GT loss + alpha · teacher loss``; :meth:`forward` returns the total and
    its two terms."""

    def __init__(self, alpha: float, kind: str = "mse", temperature: float = 0.1,
                 use_target_weight: bool = True) -> None:
        super().__init__()
        self.alpha = alpha
        self.gt = JointsMSELoss(use_target_weight)
        self.kd: nn.Module = (JointsMSELoss(use_target_weight) if kind == "mse"
                              else HeatmapKLLoss(temperature, use_target_weight))

    def forward(self, student: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor,
                target_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gt = self.gt(student, target, target_weight)
        kd = self.kd(student, teacher, target_weight)
        return (1.0 - self.alpha) * gt + self.alpha * kd, gt, kd


class ValidationLoss:
    """HRNet's validation loss: JointsMSELoss of the heatmaps the metric decodes (flip-averaged
    when the flip test is on), averaged over persons across batches (and DDP ranks, by adding
    up :attr:`state`)."""

    def __init__(self, use_target_weight: bool = True) -> None:
        self.criterion = JointsMSELoss(use_target_weight)
        self.state = [0.0, 0]  #: Σ batch loss × persons, persons

    def update(self, heatmaps: torch.Tensor, target: torch.Tensor,
               target_weight: torch.Tensor) -> None:
        """Add one batch: heatmaps (N, K, h, w) against its targets and weights."""
        loss = self.criterion(heatmaps.float(), target.to(heatmaps.device),
                              target_weight.to(heatmaps.device))
        self.state[0] += float(loss) * len(heatmaps)
        self.state[1] += len(heatmaps)

    @property
    def value(self) -> float | None:
        """The mean over every person added; None before any."""
        return self.state[0] / self.state[1] if self.state[1] else None
