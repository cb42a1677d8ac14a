"""Lite-HRNet (Yu et al., CVPR 2021, https://arxiv.org/abs/2104.06403) and its naive variant.

A shuffle-style stem, then stages of parallel branches (1/8 … 1/64 of the input after the stem's
/4) in which every block is a *conditional channel weighting* (CCW): half of each branch's
channels pass through; the other half is reweighted across resolutions (cross-resolution
weighting), filtered by a 3×3 depthwise conv and reweighted spatially, then the halves are
concatenated and channel-shuffled. The naive variant uses ShuffleNet-v2 units instead of CCW.
Fuse layers use depthwise-separable convs; an iterative head adds each lower-resolution output
into the next higher one; a 1×1 conv makes the heatmaps from the highest-resolution branch.

Written from the paper and the authors' description; parameter counts equal the official
constructor (1,130,769 for Lite-HRNet-18 and 1,763,717 for Lite-HRNet-30 with 17 joints).

Shape legend: N batch, K joints, C channels, H×W.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from search_space.choices import Chooser
from search_space.backbone_plan import BackboneOptions, BackbonePlan
from search_space.layouts import LiteHRNetLayout

__all__ = ["LiteHRNetBackbone", "litehrnet_plan"]


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            relu: bool = False) -> nn.Sequential:
    """Conv (no bias) + BN (+ ReLU)."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups,
                                         bias=False), nn.BatchNorm2d(out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def dw_pw(in_ch: int, out_ch: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Depthwise 3×3 + BN, then pointwise 1×1 + BN (+ ReLU)."""
    layers = [*conv_bn(in_ch, in_ch, 3, stride, groups=in_ch), *conv_bn(in_ch, out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (N, g·c, H, W) → interleave the g groups."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Stem(nn.Module):
    """3×3 stride-2 conv, then a shuffle block that halves the resolution again (→ 1/4)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        half = width // 2
        self.conv1 = conv_bn(3, width, 3, 2, relu=True)
        self.branch1 = nn.Sequential(*conv_bn(half, half, 3, 2, groups=half),
                                     *conv_bn(half, width - half, relu=True))
        self.branch2 = nn.Sequential(conv_bn(half, width, relu=True),
                                     conv_bn(width, width, 3, 2, groups=width),
                                     conv_bn(width, half, relu=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.conv1(x).chunk(2, dim=1)
        return channel_shuffle(torch.cat([self.branch1(x1), self.branch2(x2)], dim=1), 2)


def _pool_to(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Adaptive average pooling of ``x`` (N, C, H, W) to ``size`` (h, w). Traced (ONNX's
    TorchScript export), where h | H and w | W, as the average pooling it then equals (kernel and
    stride H/h × W/w): the exporter cannot pool adaptively to a size read off another tensor."""
    if torch.jit.is_tracing():
        (in_h, in_w), (out_h, out_w) = ((int(s) for s in shape) for shape in (x.shape[-2:], size))
        if in_h % out_h == 0 and in_w % out_w == 0:
            return F.avg_pool2d(x, (in_h // out_h, in_w // out_w))
    return F.adaptive_avg_pool2d(x, size)


class CrossResolutionWeighting(nn.Module):
    """Weights from all branches pooled to the smallest size: 1×1 squeeze (ReLU), 1×1
    excite (sigmoid), split per branch and upsampled (nearest) onto each branch."""

    def __init__(self, channels: Sequence[int], ratio: int) -> None:
        super().__init__()
        self.channels = list(channels)
        total = sum(channels)
        self.squeeze = conv_bn(total, total // ratio, relu=True)
        self.excite = conv_bn(total // ratio, total)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        size = xs[-1].shape[-2:]
        pooled = [_pool_to(x, size) for x in xs[:-1]] + [xs[-1]]
        weights = torch.sigmoid(self.excite(self.squeeze(torch.cat(pooled, dim=1))))
        return [x * F.interpolate(w, size=x.shape[-2:], mode="nearest")
                for x, w in zip(xs, torch.split(weights, self.channels, dim=1))]


class SpatialWeighting(nn.Module):
    """Squeeze-and-excitation with biased 1×1 convs: x · sigmoid(W2 ReLU(W1 avgpool(x)))."""

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // ratio, 1)
        self.conv2 = nn.Conv2d(channels // ratio, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.conv2(F.relu(self.conv1(w))))


class ConditionalChannelWeighting(nn.Module):
    """Lite-HRNet's block over all branches at once (each branch keeps its shape)."""

    def __init__(self, widths: Sequence[int], reduce_ratio: int) -> None:
        super().__init__()
        half = [w // 2 for w in widths]
        self.cross_resolution = CrossResolutionWeighting(half, reduce_ratio)
        self.depthwise = nn.ModuleList(conv_bn(c, c, 3, groups=c) for c in half)
        self.spatial = nn.ModuleList(SpatialWeighting(c) for c in half)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        halves = [x.chunk(2, dim=1) for x in xs]
        kept, weighted = [h[0] for h in halves], [h[1] for h in halves]
        weighted = self.cross_resolution(weighted)
        weighted = [sw(dw(x)) for x, dw, sw in zip(weighted, self.depthwise, self.spatial)]
        return [channel_shuffle(torch.cat([a, b], dim=1), 2) for a, b in zip(kept, weighted)]


class ShuffleUnit(nn.Module):
    """ShuffleNet-v2 unit, stride 1: half the channels through 1×1 → dw 3×3 → 1×1, then shuffle."""

    def __init__(self, width: int) -> None:
        super().__init__()
        half = width // 2
        self.branch2 = nn.Sequential(conv_bn(half, half, relu=True),
                                     conv_bn(half, half, 3, groups=half),
                                     conv_bn(half, half, relu=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([x1, self.branch2(x2)], dim=1), 2)


class LiteFuse(nn.Module):
    """The fuse of a Lite-HRNet module, with the official arithmetic.

    The official forward starts output 0 as an alias of branch 0 and adds into it in place, and
    adds branch 0's own term for every output a second time. So branch 0 counts twice in output
    0, and every other output reads the *already fused* (pre-ReLU) branch 0, twice. We keep this
    exactly — it is what the released weights were trained with — but without in-place aliasing.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.paths = nn.ModuleList()
        for i, w_i in enumerate(widths):
            row = nn.ModuleList()
            for j, w_j in enumerate(widths):
                if j > i:
                    row.append(conv_bn(w_j, w_i))  # then nearest upsampling in forward
                elif j == i:
                    row.append(nn.Identity())
                else:
                    steps = [dw_pw(w_j, w_j, stride=2, relu=True) for _ in range(i - j - 1)]
                    steps.append(dw_pw(w_j, w_i, stride=2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.paths.append(row)

    def _path(self, i: int, j: int, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        y = self.paths[i][j](x)
        return F.interpolate(y, size=size, mode="nearest") if j > i else y

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(xs)
        fused0 = xs[0] + xs[0]
        for j in range(1, n):
            fused0 = fused0 + self._path(0, j, xs[j], xs[0].shape[-2:])
        outs = [F.relu(fused0)]
        for i in range(1, n):
            size = xs[i].shape[-2:]
            # paths[i][0] runs twice, as in the official loop (BN statistics update twice)
            y = self.paths[i][0](fused0) + self.paths[i][0](fused0)
            for j in range(1, n):
                y = y + (xs[j] if j == i else self._path(i, j, xs[j], size))
            outs.append(F.relu(y))
        return outs


class LiteModule(nn.Module):
    """``num_blocks`` CCW blocks (or per-branch shuffle units), then the fuse."""

    def __init__(self, widths: Sequence[int], layout: LiteHRNetLayout, num_blocks: int) -> None:
        super().__init__()
        self.naive = layout.block == "naive"
        if self.naive:
            self.blocks = nn.ModuleList(nn.Sequential(*[ShuffleUnit(w) for _ in range(num_blocks)])
                                        for w in widths)
        else:
            self.blocks = nn.Sequential(*[ConditionalChannelWeighting(widths, layout.reduce_ratio)
                                          for _ in range(num_blocks)])
        self.fuse = LiteFuse(widths)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.naive:
            xs = [branch(x) for branch, x in zip(self.blocks, xs)]
        else:
            xs = self.blocks(xs)
        return self.fuse(xs)


class LiteTransition(nn.Module):
    """Depthwise-separable transitions: width changes, and new stride-2 branches."""

    def __init__(self, prev: Sequence[int], cur: Sequence[int]) -> None:
        super().__init__()
        self.num_prev = len(prev)
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(cur):
            if i < len(prev):
                layers.append(dw_pw(prev[i], out_ch) if prev[i] != out_ch else nn.Identity())
            else:
                steps = [dw_pw(prev[-1], out_ch if j == i - len(prev) else prev[-1], stride=2)
                         for j in range(i + 1 - len(prev))]
                layers.append(nn.Sequential(*steps))
        self.layers = nn.ModuleList(layers)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [layer(xs[i] if i < self.num_prev else xs[-1]) for i, layer in enumerate(self.layers)]


class IterativeHead(nn.Module):
    """From the lowest resolution up: add the (bilinearly upsampled) previous output, then a
    depthwise-separable conv to the next branch's width. Returns outputs highest-resolution first."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        rev = list(widths)[::-1]
        self.projects = nn.ModuleList(
            dw_pw(rev[i], rev[i + 1] if i + 1 < len(rev) else rev[i]) for i in range(len(rev)))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        outs, last = [], None
        for x, project in zip(xs[::-1], self.projects):
            if last is not None:
                x = x + F.interpolate(last, size=x.shape[-2:], mode="bilinear", align_corners=True)
            last = project(x)
            outs.append(last)
        return outs[::-1]


class LiteHRNetBackbone(nn.Module):
    """(N, 3, H, W) → list of branch features after the iterative head (highest first)."""

    def __init__(self, layout: LiteHRNetLayout) -> None:
        super().__init__()
        self.stem = Stem(layout.stem_width)
        prev: Sequence[int] = (layout.stem_width,)
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        for n_modules, widths, n_blocks in zip(layout.num_modules, layout.widths, layout.num_blocks):
            self.transitions.append(LiteTransition(prev, widths))
            self.stages.append(nn.Sequential(*[LiteModule(widths, layout, n_blocks)
                                               for _ in range(n_modules)]))
            prev = widths
        self.head = IterativeHead(prev)
        # the iterative head projects branch b to the width of branch b-1 (branch 0 keeps its)
        self.out_channels = (prev[0], *prev[:-1])

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports: stem, transitions, stages, iterative head."""
        parts: dict[str, nn.Module] = {"stem": self.stem}
        for i, (t, s) in enumerate(zip(self.transitions, self.stages), start=2):
            parts[f"transition{i}"] = t
            parts[f"stage{i}"] = s
        parts["iterative_head"] = self.head
        return parts

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        xs = [self.stem(x)]
        for transition, stage in zip(self.transitions, self.stages):
            xs = transition(xs)
            for module in stage:
                xs = module(xs)
        return self.head(xs)


def litehrnet_plan(layout: LiteHRNetLayout, cfg: BackboneOptions, chooser: Chooser,
                   plain: bool, levels: int) -> BackbonePlan:
    """The ``litehrnet`` family: fixed widths (no decisions), the released structure."""
    backbone = LiteHRNetBackbone(layout)
    return BackbonePlan(tuple(backbone.out_channels), lambda used: backbone,
                        plain_head_name="final")
