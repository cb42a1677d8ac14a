"""SimpleBaseline's deconvolution head (Xiao et al., "Simple Baselines for Human Pose Estimation
and Tracking", ECCV 2018, https://arxiv.org/abs/1804.06208).

Three 4×4 stride-2 transposed convolutions (256 channels, no bias) each followed by BN and ReLU
take the 1/32 feature map to 1/4, then a 1×1 conv gives the heatmaps. Module names are the
official ``pose_resnet.py``'s (``deconv_layers``, ``final_layer``), so its files load by renaming
alone.

Shape legend: N batch, C input channels, K joints; (N, C, H/32, W/32) → (N, K, H/4, W/4).
"""
from __future__ import annotations

import torch
from torch import nn

from search_space.layers import BN_MOMENTUM, Width, max_width

__all__ = ["DeconvHead"]


class DeconvHead(nn.Module):
    """``deconv_layers`` (3 × [ConvTranspose2d 4×4/2 → BN → ReLU]) → ``final_layer`` (1×1 conv).

    Args:
        in_channels: channels of the 1/32 feature map it reads (a fixed width: the last level
            of a searched backbone reads at its largest width are sliced by NNI).
        joints: heatmaps out.
        widths: channels of each transposed convolution (SimpleBaseline: 256, 256, 256).
    """

    def __init__(self, in_channels: Width, joints: int,
                 widths: tuple[int, ...] = (256, 256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for width in widths:
            layers += [self._deconv(prev, width), nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
                       nn.ReLU(inplace=True)]
            prev = width
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(prev, joints, 1)

    @staticmethod
    def _deconv(in_ch: Width, out_ch: int) -> nn.Module:
        if isinstance(in_ch, int):
            return nn.ConvTranspose2d(int(in_ch), out_ch, 4, stride=2, padding=1, bias=False)
        # a searched input width: NNI has no mutable transposed convolution, so the head reads
        # the leading channels it is given (the frozen network's width) from a full-width weight
        return _SlicedConvTranspose(max_width(in_ch), out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class _SlicedConvTranspose(nn.ConvTranspose2d):
    """A transposed 4×4/2 convolution over the first ``x.shape[1]`` of its input channels (the
    supernet's: its input width is a choice; weight (C_max, C_out, 4, 4))."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        weight = self.weight[:x.shape[1]]
        return nn.functional.conv_transpose2d(x, weight, None, 2, 1)
