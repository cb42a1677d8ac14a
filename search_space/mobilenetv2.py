"""MobileNet-V2 backbones (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018, https://arxiv.org/abs/1801.04381) as PNFS uses them.

PoseNFS's ``mobilenet_v2_feature.py`` (from tonylins/pytorch-mobilenet-v2) takes four feature
maps from the blocks: after ``features[3]`` (24 ch, 1/4), ``[6]`` (32, 1/8), ``[13]`` (96, 1/16)
and ``[16]`` (160, 1/32); the last block (320 ch) and the 1×1 conv to 1280 are not used. Module
names are torchvision's (``features.{i}.conv.{j}``); tonylins' and PoseNFS's files are renamed
into them (:mod:`trainers.weights.formats`).

One module builds the fixed network (torchvision's ``mobilenet_v2`` ``features[0:17]``) and,
with ``space.backbone.width_multipliers``, the searchable one: each stage's output width
(``stage{i}/width``, i = 0 … 5 over the (t, c, n, s) settings up to the last tap) is a choice, and — with
``search_block_widths`` — the expanded (hidden) width of every block with t > 1
(``features{i}/hidden``: t·C_in·m for m in the multipliers, so the expansion ratio is searched as
t·m). torchvision itself is not a dependency (see :mod:`search_space.resnet`); the tests check
this module output-equal to a reference written from torchvision's structure.

Shape legend: N batch, C_l channels of level l, H×W input; level l is 1/2^(l+2) of H×W.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from search_space.backbone_plan import BackboneOptions, BackbonePlan
from search_space.choices import Chooser
from search_space.deconv_head import DeconvHead
from search_space.layers import Width, batch_norm, conv2d, same_width, width_choices
from search_space.layouts import MobileNetV2Layout

__all__ = ["MobileNetV2Backbone", "InvertedResidual", "mobilenet_v2_plan"]


def _conv_bn_relu6(in_ch: Width, out_ch: Width, kernel: int, stride: int = 1,
                   depthwise: bool = False) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation`` (conv, BN, ReLU6) with searchable widths."""
    conv = conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2,
                  groups=out_ch if depthwise else 1)
    return nn.Sequential(conv, batch_norm(out_ch), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1×1 expansion (t > 1) → 3×3 depthwise (stride s) → 1×1 linear projection, with the
    input added when s = 1 and the widths are equal: (N, C_in, H, W) → (N, C_out, H/s, W/s)."""

    def __init__(self, in_ch: Width, out_ch: Width, stride: int, hidden: Width,
                 expand: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expand:
            layers.append(_conv_bn_relu6(in_ch, hidden, 1))
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, depthwise=True),
                   conv2d(hidden, out_ch, 1), batch_norm(out_ch)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and same_width(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Backbone(nn.Module):
    """``features[0 … last tap]``: (N, 3, H, W) → the outputs of the tapped blocks.

    Args:
        features: the stem conv and the blocks, torchvision's ``features`` order.
        taps: the ``features`` index whose output is each level returned.
        widths: channels of each level (for the reports and graphs).
    """

    def __init__(self, features: nn.Sequential, taps: tuple[int, ...],
                 widths: tuple[Width, ...]) -> None:
        super().__init__()
        self.features = features
        self.taps = tuple(taps)
        self.out_channels = tuple(widths[:len(taps)])

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports: the stem conv and the blocks per level."""
        parts: dict[str, nn.Module] = {"stem": self.features[0]}
        start = 1
        for level, tap in enumerate(self.taps):
            parts[f"blocks_1/{4 * 2 ** level}"] = self.features[start:tap + 1]
            start = tap + 1
        return parts

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.taps:
                levels.append(x)
        return levels



def mobilenet_v2_plan(layout: MobileNetV2Layout, cfg: BackboneOptions, chooser: Chooser,
                      plain: bool, levels: int) -> BackbonePlan:
    """The ``mobilenet_v2`` family: PoseNFS's four levels, width choices per stage and per
    block's expansion, SimpleBaseline's deconvolution head on 1/32 as the plain head."""
    mult = tuple(cfg.width_multipliers)
    stage_width: list[Any] = [c for _, c, _, _ in layout.settings]
    blocks = layout.blocks()
    if mult and cfg.search_branch_widths:  # the stages up to the last tap
        stage_width = [chooser.width(f"stage{i}/width", width_choices(c, mult))
                       for i, c in enumerate(stage_width[:blocks[-1][0] + 1])]
    plan_blocks = []
    prev: Any = layout.stem_width
    prev_full = layout.stem_width
    for i, (stage, t, c, s) in enumerate(blocks, start=1):
        hidden: Any = prev if t == 1 else int(round(prev_full * t))
        if t != 1 and mult and cfg.search_block_widths:
            hidden = chooser.width(f"features{i}/hidden", width_choices(hidden, mult))
        plan_blocks.append((prev, stage_width[stage], s, hidden, t != 1))
        prev, prev_full = stage_width[stage], c
    level_widths = tuple(plan_blocks[t - 1][1] for t in layout.taps)

    def build(used: set[int] | None) -> nn.Module:
        num_levels = 4 if used is None else max(used | {0}) + 1
        taps = layout.taps[:num_levels]
        features = [_conv_bn_relu6(3, layout.stem_width, 3, stride=2)]
        features += [InvertedResidual(*args) for args in plan_blocks[:taps[-1]]]
        return MobileNetV2Backbone(nn.Sequential(*features), taps, level_widths)

    return BackbonePlan(level_widths, build, plain_head_name="head",
                        plain_head=lambda joints: DeconvHead(level_widths[3], joints),
                        plain_level=3)
