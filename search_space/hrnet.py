"""HRNet for top-down pose estimation, built from a layout (widths and blocks per stage).

The pose HRNet of Sun et al., "Deep High-Resolution Representation Learning for Human Pose
Estimation" (CVPR 2019, https://arxiv.org/abs/1902.09212): a stride-4 stem, stage 1 of
Bottlenecks, then stages of parallel branches at 1/4, 1/8, 1/16, 1/32 joined by transitions and
repeatedly fused (sum of up-/down-sampled branches). The layout — blocks, branch widths, and the
inner width of every residual block — is data (:class:`HRNetLayout`), so the baselines, pruned
widths and searched widths are all built by this one module.

Shape legend: N batch, K joints, C_b channels of branch b, H×W input.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from search_space.blocks import BLOCKS, conv3x3
from search_space.layers import Width, batch_norm, conv2d, same_width, width_choices
from search_space.choices import Chooser
from search_space.backbone_plan import BackboneOptions, BackbonePlan
from search_space.layouts import HRNetLayout, StageLayout

__all__ = ["HRNetBackbone", "hrnet_space_layout", "hrnet_plan"]


def _conv_bn(in_ch: Width, out_ch: Width, kernel: int, stride: int = 1,
             relu: bool = True) -> nn.Sequential:
    conv = conv3x3(in_ch, out_ch, stride) if kernel == 3 else conv2d(in_ch, out_ch, kernel, stride)
    layers: list[nn.Module] = [conv, batch_norm(out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Transition(nn.Module):
    """Adapts the branches of one stage to the next: width changes (3×3 conv) and new,
    lower-resolution branches (stride-2 3×3 convs from the lowest-resolution branch)."""

    def __init__(self, prev: Sequence[int], cur: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(cur):
            if i < len(prev):
                layers.append(nn.Identity() if same_width(prev[i], out_ch) else _conv_bn(prev[i], out_ch, 3))
            else:
                convs = []
                for j in range(i + 1 - len(prev)):
                    in_ch = prev[-1]
                    convs.append(_conv_bn(in_ch, out_ch if j == i - len(prev) else in_ch, 3, stride=2))
                layers.append(nn.Sequential(*convs))
        self.layers = nn.ModuleList(layers)
        self.num_prev = len(prev)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [layer(xs[i] if i < self.num_prev else xs[-1]) for i, layer in enumerate(self.layers)]


class FuseLayer(nn.Module):
    """Output branch ``i`` = ReLU(Σ_j resample_j→i(x_j)): 1×1 conv + BN + nearest upsampling
    from lower resolutions, chains of stride-2 3×3 convs from higher ones, identity for j = i."""

    def __init__(self, widths: Sequence[int], i: int) -> None:
        super().__init__()
        paths: list[nn.Module] = []
        for j, w_j in enumerate(widths):
            if j > i:
                # upsampled in forward() to branch i's exact size: the official
                # Upsample(scale_factor=2^(j-i)) whenever the input is divisible by 32, and
                # still correct when it is not (64×48 inputs in tests)
                paths.append(nn.Sequential(conv2d(w_j, widths[i], 1), batch_norm(widths[i])))
            elif j == i:
                paths.append(nn.Identity())
            else:
                steps = [_conv_bn(w_j, w_j, 3, stride=2) for _ in range(i - j - 1)]
                steps.append(_conv_bn(w_j, widths[i], 3, stride=2, relu=False))
                paths.append(nn.Sequential(*steps))
        self.paths = nn.ModuleList(paths)
        self.relu = nn.ReLU(inplace=True)
        self.index = i

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        size = xs[self.index].shape[-2:]
        out = None
        for j, (path, x) in enumerate(zip(self.paths, xs)):
            y = path(x)
            if j > self.index:
                y = F.interpolate(y, size=size, mode="nearest")
            out = y if out is None else out + y
        return self.relu(out)


class HRModule(nn.Module):
    """One multi-resolution module: residual blocks per branch, then the fuse layers."""

    def __init__(self, in_widths: Sequence[int], stage: StageLayout, layout: HRNetLayout,
                 prefix: str, multi_scale_output: bool,
                 outputs: Sequence[int] | None = None) -> None:
        super().__init__()
        block = BLOCKS[stage.block]
        branches = []
        for b, (n_blocks, width) in enumerate(zip(stage.num_blocks, stage.widths)):
            blocks = [block(in_widths[b] if k == 0 else width, width,
                            layout.inner(f"{prefix}/branch{b}/block{k}")) for k in range(n_blocks)]
            branches.append(nn.Sequential(*blocks))
        self.branches = nn.ModuleList(branches)
        if outputs is None:
            outputs = range(stage.num_branches if multi_scale_output else 1)
        self.num_outputs = max(outputs) + 1 if outputs else 0
        # keyed "0", "1", ...: the state-dict keys of a list, with gaps allowed
        self.fuse = (nn.ModuleDict({str(i): FuseLayer(stage.widths, i) for i in outputs})
                     if stage.num_branches > 1 else None)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse is None:
            return xs
        return [self.fuse[str(i)](xs) if str(i) in self.fuse else None
                for i in range(self.num_outputs)]


class Stage(nn.Module):
    """A transition from the previous branches followed by ``num_modules`` HR modules."""

    def __init__(self, index: int, prev_widths: Sequence[int], stage: StageLayout,
                 layout: HRNetLayout, multi_scale_output: bool,
                 outputs: Sequence[int] | None = None) -> None:
        super().__init__()
        self.transition = Transition(prev_widths, stage.widths) if index > 1 else None
        in_widths = list(stage.widths) if index > 1 else list(prev_widths)
        modules = []
        for m in range(stage.num_modules):
            last = m == stage.num_modules - 1
            modules.append(HRModule(in_widths, stage, layout, f"stage{index}/module{m}",
                                    multi_scale_output or not last,
                                    outputs if last else None))
            in_widths = list(stage.widths)
        self.modules_ = nn.Sequential(*modules)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.transition is not None:
            xs = self.transition(xs)
        for module in self.modules_:
            xs = module(xs)
        return xs


class HRNetBackbone(nn.Module):
    """The stem and the stages: (N, 3, H, W) → list of (N, C_b, H/4/2^b, W/4/2^b).

    Only branch 0 comes out unless ``layout.multi_scale_output``.
    """

    def __init__(self, layout: HRNetLayout) -> None:
        super().__init__()
        self.layout = layout
        w = layout.stem_width
        self.stem = nn.Sequential(_conv_bn(3, w, 3, stride=2), _conv_bn(w, w, 3, stride=2))
        prev: Sequence[int] = (w,)
        stages = []
        for s, stage in enumerate(layout.stages, start=1):
            last = s == len(layout.stages)
            stages.append(Stage(s, prev, stage, layout, layout.multi_scale_output or not last,
                                layout.output_branches if last and layout.multi_scale_output
                                and layout.next_widths is None else None))
            prev = stage.widths
        self.stages = nn.ModuleList(stages)
        self.out_channels = (tuple(layout.stages[-1].widths) if layout.multi_scale_output
                             else (layout.stages[-1].widths[0],))
        self.next_transition = None
        if layout.next_widths is not None:
            self.next_transition = Transition(layout.stages[-1].widths, layout.next_widths)
            self.out_channels = tuple(layout.next_widths)

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports: stem, stage1..N (and the next transition)."""
        parts: dict[str, nn.Module] = {"stem": self.stem}
        for i, stage in enumerate(self.stages, start=1):
            parts[f"stage{i}"] = stage
        if self.next_transition is not None:
            parts["next_transition"] = self.next_transition
        return parts

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        xs = [self.stem(x)]
        for stage in self.stages:
            xs = stage(xs)
        if self.next_transition is not None:
            xs = self.next_transition(xs)
        return xs


# --------------------------------------------------------------------------------------------
# the family's place in the space: widths from the config and the chooser


def hrnet_space_layout(layout: HRNetLayout, cfg: BackboneOptions, chooser: Chooser,
                       pyramid: bool, levels: int = 4) -> HRNetLayout:
    """The HRNet ``layout`` as ``cfg`` configures it, with every width asked of ``chooser``.

    A branch keeps one width from the stage that opens it on (HRNet's transitions are
    identities for existing branches, so a per-stage width would add convolutions the
    baseline does not have): label ``stage{S}/branch{b}/width`` with S that stage. Inner widths
    of residual blocks: ``stage{s}/module{m}/branch{b}/block{k}/inner{i}``. A truncated HRNet
    opens the next stage's branch only if the heads read ``levels`` > its branches.
    """
    base = layout
    if pyramid:
        base = base.truncated(cfg.stages) if cfg.stages else replace(base, multi_scale_output=True)
        if base.next_widths is not None and levels <= len(base.stages[-1].widths):
            base = replace(base, next_widths=None)
    elif cfg.stages:  # a plain head on stem~stageN: the last stage fuses into its 1/4 branch
        base = replace(base, stages=base.stages[:cfg.stages])
    mult = tuple(cfg.width_multipliers)
    all_stages = list(base.stages) + ([StageLayout(1, (1,) * len(base.next_widths),
                                                   base.next_widths)] if base.next_widths else [])
    branch: dict[int, Any] = {}
    for s, stage in enumerate(all_stages, start=1):
        for b, width in enumerate(stage.widths):
            if s == 1 or b in branch:
                continue
            if mult and cfg.search_branch_widths:
                branch[b] = chooser.width(f"stage{s}/branch{b}/width", width_choices(width, mult))
            else:
                branch[b] = width

    def widths_of(stage_index: int, stage: StageLayout) -> tuple[Any, ...]:
        return tuple(stage.widths) if stage_index == 1 else tuple(branch[b] for b in
                                                                    range(len(stage.widths)))

    stages = tuple(replace(st, widths=widths_of(s, st)) for s, st in enumerate(base.stages, 1))
    next_widths = (widths_of(len(all_stages), all_stages[-1]) if base.next_widths else None)
    inner: dict[str, tuple[Any, ...]] = {}
    for s, stage in enumerate(base.stages, start=1):
        block_cls = BLOCKS[stage.block]
        for m in range(stage.num_modules):
            for b, n_blocks in enumerate(stage.num_blocks):
                for k in range(n_blocks):
                    path = f"stage{s}/module{m}/branch{b}/block{k}"
                    default = base.inner(path) or ((stage.widths[b],) if block_cls.num_inner == 1
                                                   else (stage.widths[b] // 4,) * 2)
                    if mult and cfg.search_block_widths:
                        inner[path] = tuple(chooser.width(f"{path}/inner{i}", width_choices(w, mult))
                                            for i, w in enumerate(default))
                    else:
                        inner[path] = tuple(default)
    return replace(base, stages=stages, inner_widths=inner, next_widths=next_widths)


def _pyramid_widths(layout: HRNetLayout) -> tuple[Any, ...]:
    return (tuple(layout.next_widths) if layout.next_widths is not None
            else tuple(layout.stages[-1].widths))


def _prune_outputs(layout: HRNetLayout, used: set[int]) -> HRNetLayout:
    """A frozen network's backbone computes only the pyramid levels its heads read: no
    transition to an unread new branch, no fuse layers for unread outputs."""
    used = used | {0}
    if layout.next_widths is not None and len(layout.stages[-1].widths) not in used:
        layout = replace(layout, next_widths=None)
    if layout.next_widths is None:
        layout = replace(layout, output_branches=tuple(sorted(used)))
    return layout


def hrnet_plan(layout: HRNetLayout, cfg: BackboneOptions, chooser: Chooser, plain: bool,
               levels: int) -> BackbonePlan:
    """The ``hrnet`` family: width choices per branch and block; a frozen network's backbone
    computes only the levels its heads read."""
    layout = hrnet_space_layout(layout, cfg, chooser, pyramid=not plain, levels=levels)

    def build(used: set[int] | None) -> nn.Module:
        return HRNetBackbone(layout if used is None else _prune_outputs(layout, used))

    return BackbonePlan(_pyramid_widths(layout), build, plain_head_name="head")
