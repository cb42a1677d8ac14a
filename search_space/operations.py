"""Candidate operations on the edges of a PNFS cell (all keep channels and resolution).

Names follow the PNFS configs. Parametric operations are conv → BN → ReLU ("mode 2" of the
reference) with non-affine BN, as in DARTS; pooling is followed by a non-affine BN so its scale
is comparable with the convolutions in a softmax mixture. ``Zero`` is the "no edge" candidate:
the Prune step and :func:`~search_space.pose_space.freeze` remove it.

Shape legend: N batch, C channels, H×W.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["OPERATIONS", "ZERO", "PARAMETER_FREE", "Zero", "operation_names", "make_operation",
           "BN_MOMENTUM"]

ZERO = "Zero"
#: momentum of every BatchNorm of posenas networks (HRNet's)
BN_MOMENTUM = 0.1


class Zero(nn.Module):
    """The absent edge: zeros of the input's shape (only ever run inside a supernet mixture)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=False, momentum=BN_MOMENTUM)


def _sep_conv(channels: int, kernel: int) -> nn.Module:
    """Two rounds of depthwise k×k + pointwise 1×1, each followed by BN and ReLU."""
    pad = kernel // 2
    layers: list[nn.Module] = []
    for _ in range(2):
        layers += [nn.Conv2d(channels, channels, kernel, padding=pad, groups=channels, bias=False),
                   nn.Conv2d(channels, channels, 1, bias=False), _bn(channels), nn.ReLU(inplace=False)]
    return nn.Sequential(*layers)


def _atrous_conv(channels: int, kernel: int) -> nn.Module:
    """Depthwise k×k with dilation 2, pointwise 1×1, BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel, padding=kernel - 1, dilation=2, groups=channels,
                  bias=False),
        nn.Conv2d(channels, channels, 1, bias=False), _bn(channels), nn.ReLU(inplace=False))


def _conv(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), _bn(channels),
                         nn.ReLU(inplace=False))


#: operation name → builder(channels)
OPERATIONS: dict[str, Callable[[int], nn.Module]] = {
    ZERO: lambda c: Zero(),
    "skip_connect": lambda c: nn.Identity(),
    "Sep_Conv_3x3": lambda c: _sep_conv(c, 3),
    "Sep_Conv_5x5": lambda c: _sep_conv(c, 5),
    "Atr_Conv_3x3": lambda c: _atrous_conv(c, 3),
    "Atr_Conv_5x5": lambda c: _atrous_conv(c, 5),
    "avg_pool_3x3": lambda c: nn.Sequential(
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), _bn(c)),
    "max_pool_3x3": lambda c: nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _bn(c)),
    "conv_3x3": _conv,
}


#: the operations without learnable weights (their BN is affine-free): where a collapsing DARTS
#: search drifts (Zela et al. 2020; Chu et al. 2021). ``Zero`` is "no edge", counted apart.
PARAMETER_FREE = frozenset({"skip_connect", "max_pool_3x3", "avg_pool_3x3"})


def operation_names() -> list[str]:
    """Known operation names, in registry order."""
    return list(OPERATIONS)


def make_operation(name: str, channels: int) -> nn.Module:
    """Build operation ``name`` for ``channels`` channels."""
    return OPERATIONS[name](channels)
