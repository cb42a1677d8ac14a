"""Residual blocks of HRNet with configurable inner widths (for pruned or searched widths).

``BasicBlock``: 3×3 conv (in → inner) + BN + ReLU, 3×3 conv (inner → out) + BN, residual.
``Bottleneck``: 1×1 (in → inner1), 3×3 (inner1 → inner2), 1×1 (inner2 → out), residual.
A 1×1 conv + BN projects the residual when ``in != out`` or the stride is not 1.
Default inner widths reproduce He et al. (BasicBlock: inner = out; Bottleneck: out / 4).

Shape legend: N batch, C channels, H×W.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "BLOCKS", "conv3x3", "BN_MOMENTUM", "init_pose_weights"]

BN_MOMENTUM = 0.1


def init_pose_weights(model: nn.Module, std: float = 0.001) -> None:
    """The initialisation of HRNet and Lite-HRNet: conv weights N(0, std), conv biases 0, BN
    weight 1 and bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias (a BN follows)."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM))


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (x: (N, in, H, W) → (N, out, H/s, W/s))."""

    num_inner = 1

    def __init__(self, in_ch: int, out_ch: int, inner: Sequence[int] | None = None,
                 stride: int = 1) -> None:
        super().__init__()
        (mid,) = tuple(inner) if inner else (out_ch,)
        self.conv1 = conv3x3(in_ch, mid, stride)
        self.bn1 = nn.BatchNorm2d(mid, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(mid, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 with a residual connection (x: (N, in, H, W) → (N, out, H/s, W/s))."""

    num_inner = 2

    def __init__(self, in_ch: int, out_ch: int, inner: Sequence[int] | None = None,
                 stride: int = 1) -> None:
        super().__init__()
        mid1, mid2 = tuple(inner) if inner else (out_ch // 4, out_ch // 4)
        self.conv1 = nn.Conv2d(in_ch, mid1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid1, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(mid1, mid2, stride)
        self.bn2 = nn.BatchNorm2d(mid2, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(mid2, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


#: block name → class, as used in the HRNet layout
BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}
