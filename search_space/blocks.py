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

from search_space.layers import BN_MOMENTUM, Width, batch_norm, conv2d, same_width

__all__ = ["BasicBlock", "Bottleneck", "BLOCKS", "conv3x3", "BN_MOMENTUM", "init_pose_weights"]

def init_pose_weights(model: nn.Module, std: float = 0.001) -> None:
    """The initialisation of HRNet, Lite-HRNet and SimpleBaseline: conv and transposed-conv
    weights N(0, std), biases 0, BN weight 1 and bias 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv3x3(in_ch: Width, out_ch: Width, stride: int = 1) -> nn.Module:
    """3×3 convolution with padding 1 and no bias (a BN follows)."""
    return conv2d(in_ch, out_ch, 3, stride=stride, padding=1)


def _projection(in_ch: Width, out_ch: Width, stride: int) -> nn.Module | None:
    if stride == 1 and same_width(in_ch, out_ch):
        return None
    return nn.Sequential(conv2d(in_ch, out_ch, 1, stride=stride), batch_norm(out_ch))


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (x: (N, in, H, W) → (N, out, H/s, W/s))."""

    num_inner = 1

    def __init__(self, in_ch: Width, out_ch: Width, inner: Sequence[Width] | None = None,
                 stride: int = 1) -> None:
        super().__init__()
        (mid,) = tuple(inner) if inner else (out_ch,)
        self.conv1 = conv3x3(in_ch, mid, stride)
        self.bn1 = batch_norm(mid)
        self.conv2 = conv3x3(mid, out_ch)
        self.bn2 = batch_norm(out_ch)
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

    def __init__(self, in_ch: Width, out_ch: Width, inner: Sequence[Width] | None = None,
                 stride: int = 1) -> None:
        super().__init__()
        mid1, mid2 = tuple(inner) if inner else (out_ch // 4, out_ch // 4)
        self.conv1 = conv2d(in_ch, mid1, 1)
        self.bn1 = batch_norm(mid1)
        self.conv2 = conv3x3(mid1, mid2, stride)
        self.bn2 = batch_norm(mid2)
        self.conv3 = conv2d(mid2, out_ch, 1)
        self.bn3 = batch_norm(out_ch)
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
