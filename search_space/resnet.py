"""ResNet backbones (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
https://arxiv.org/abs/1512.03385) for top-down pose: SimpleBaseline's and PNFS's.

The four stages ``layer1`` … ``layer4`` give the pyramid at 1/4 … 1/32 (PoseNFS's
``resnet_feature.py`` reads these four; SimpleBaseline's deconvolution head reads the last).
Module names are torchvision's (``conv1 bn1 layer1.0.conv1 … downsample.0``), which the official
``pose_resnet.py``, PoseNFS and mmpose share, so their files load by renaming the prefix alone.

One module builds every variant: the fixed networks (torchvision's ``resnet{18,34,50,101,152}``
without pooling and classifier) and, with ``space.backbone.width_multipliers``, the searchable
one, where each stage's output width (``layer{s}/width``) and inner width (``layer{s}/inner``) are
choices. Blocks are :class:`search_space.blocks.BasicBlock` / ``Bottleneck`` (torchvision's
structure: stride on the 3×3 conv, a 1×1 projection when the width or the stride changes). For
the basic-block ResNets (18, 34) the stem's width is ``layer1/width``, as it equals it in the
original (no projection in ``layer1``). torchvision itself is not a dependency: its wheels on
PyPI need the CUDA build of torch (``libc10_cuda.so``), not the CPU build we pin; the tests check
this module output-equal to a reference written from torchvision's structure, whose parameter
counts equal torchvision's published ones (``tests/test_backbone_families.py``).

Shape legend: N batch, C_s channels of stage s, H×W input; level s is (N, C_s, H/2^(s+2), W/2^(s+2)).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from search_space.backbone_plan import BackboneOptions, BackbonePlan
from search_space.blocks import BLOCKS
from search_space.choices import Chooser
from search_space.deconv_head import DeconvHead
from search_space.layers import Width, batch_norm, conv2d, width_choices
from search_space.layouts import ResNetLayout

__all__ = ["ResNetBackbone", "resnet_plan"]


class ResNetBackbone(nn.Module):
    """Stem (7×7/2 conv, BN, ReLU, 3×3/2 max-pool) and ``layer1`` … ``layer{num_levels}``:
    (N, 3, H, W) → [(N, C_1, H/4, W/4), …] (one tensor per stage built).

    Args:
        stem: ``conv1``, ``bn1`` (the stem's modules).
        layers: the stages, in order (``layer1`` …).
        widths: output width of each stage (for the reports and graphs).
    """

    def __init__(self, stem: tuple[nn.Module, nn.Module], layers: list[nn.Module],
                 widths: tuple[Width, ...]) -> None:
        super().__init__()
        self.conv1, self.bn1 = stem
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for s, layer in enumerate(layers, start=1):
            setattr(self, f"layer{s}", layer)
        self.num_levels = len(layers)
        self.out_channels = tuple(widths[:len(layers)])

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports: stem, layer1 …"""
        parts: dict[str, nn.Module] = {"stem": nn.ModuleList([self.conv1, self.bn1])}
        for s in range(1, self.num_levels + 1):
            parts[f"layer{s}"] = getattr(self, f"layer{s}")
        return parts

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        levels = []
        for s in range(1, self.num_levels + 1):
            x = getattr(self, f"layer{s}")(x)
            levels.append(x)
        return levels



def _resnet(layout: ResNetLayout, widths: list[Any], inner: list[Any], stem: Any,
                num_levels: int) -> ResNetBackbone:
    block = BLOCKS[layout.block]
    layers = []
    prev = stem
    for s in range(num_levels):
        blocks = []
        for k in range(layout.num_blocks[s]):
            mids = (inner[s],) * block.num_inner
            blocks.append(block(prev, widths[s], mids, stride=2 if s > 0 and k == 0 else 1))
            prev = widths[s]
        layers.append(nn.Sequential(*blocks))
    return ResNetBackbone((conv2d(3, stem, 7, stride=2, padding=3), batch_norm(stem)), layers,
                          tuple(widths))


def resnet_plan(layout: ResNetLayout, cfg: BackboneOptions, chooser: Chooser, plain: bool,
                levels: int) -> BackbonePlan:
    """The ``resnet`` family: four pyramid levels, width choices per stage (output and inner),
    SimpleBaseline's deconvolution head on 1/32 as the plain head."""
    mult = tuple(cfg.width_multipliers)
    widths: list[Any] = list(layout.widths)
    inner: list[Any] = list(layout.inner_widths)
    for s in range(4):
        if mult and cfg.search_branch_widths:
            widths[s] = chooser.width(f"layer{s + 1}/width", width_choices(layout.widths[s], mult))
        if layout.block == "basic" and not (mult and cfg.search_block_widths):
            inner[s] = widths[s]
        elif mult and cfg.search_block_widths:
            inner[s] = chooser.width(f"layer{s + 1}/inner",
                                     width_choices(layout.inner_widths[s], mult))
    stem = widths[0] if layout.block == "basic" else layout.stem_width

    def build(used: set[int] | None) -> nn.Module:
        num_levels = 4 if used is None else max(used | {0}) + 1
        return _resnet(layout, widths, inner, stem, num_levels)

    return BackbonePlan(tuple(widths), build, plain_head_name="head",
                        plain_head=lambda joints: DeconvHead(widths[3], joints), plain_level=3)
