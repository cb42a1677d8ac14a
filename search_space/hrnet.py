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

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from search_space.blocks import BLOCKS, conv3x3, init_pose_weights
from search_space.layers import Width, batch_norm, conv2d, same_width

__all__ = ["StageLayout", "HRNetLayout", "HRNetBackbone", "HRNetPose", "hrnet_layout"]


@dataclass(frozen=True)
class StageLayout:
    """One stage: ``num_modules`` repeated multi-branch modules of residual blocks.

    Attributes:
        num_modules: modules in the stage (each ends with a fuse).
        num_blocks: residual blocks per branch.
        widths: output channels per branch (tied across the stage, so every fuse layer that
            reads a branch sees the same width).
        block: ``"basic"`` or ``"bottleneck"``.
    """

    num_modules: int
    num_blocks: tuple[int, ...]
    widths: tuple[int, ...]
    block: str = "basic"

    def __post_init__(self) -> None:
        if len(self.num_blocks) != len(self.widths):
            raise ValueError(f"num_blocks {self.num_blocks} and widths {self.widths} differ in length")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {self.block!r}")

    @property
    def num_branches(self) -> int:
        return len(self.widths)


@dataclass(frozen=True)
class HRNetLayout:
    """The whole network's layout.

    Attributes:
        stem_width: channels of the two stride-2 stem convs.
        stages: stage 1 (one branch) to the last stage.
        inner_widths: block path (``"stage3/module0/branch1/block2"``) → inner widths of that
            block (1 value for a BasicBlock, 2 for a Bottleneck); missing paths use the default.
        multi_scale_output: the last module outputs every branch (a pyramid, e.g. to feed PNFS
            fabrics from "stem~stage3") instead of only the highest-resolution one.
        next_widths: when set, the transition into the next (cut-off) stage is kept, opening
            its new lower-resolution branch: PNFS's "HRNet-W32-stem~stage3" pyramid 32/64/128/256.
        output_branches: with ``multi_scale_output``, the branches the last module outputs
            (None: all); the others' fuse layers are not built (a frozen network whose heads
            read only some levels).
    """

    stages: tuple[StageLayout, ...]
    stem_width: int = 64
    inner_widths: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    multi_scale_output: bool = False
    next_widths: tuple[int, ...] | None = None
    output_branches: tuple[int, ...] | None = None

    def inner(self, path: str) -> tuple[int, ...] | None:
        return tuple(self.inner_widths[path]) if path in self.inner_widths else None

    def truncated(self, num_stages: int) -> "HRNetLayout":
        """The first ``num_stages`` stages with a multi-scale output plus the transition into
        the next stage (PNFS's stem~stageN: 4 branches for N = 3)."""
        nxt = self.stages[num_stages].widths if num_stages < len(self.stages) else None
        return replace(self, stages=self.stages[:num_stages], multi_scale_output=True,
                       next_widths=nxt)


def hrnet_layout(width: int, blocks: int = 4, modules: Sequence[int] = (1, 4, 3),
                 stem_width: int = 64, stage1_blocks: int = 4, stage1_inner: int = 64) -> HRNetLayout:
    """The standard HRNet-W``width`` layout (widths width·[1, 2, 4, 8]; W32: modules 1/4/3)."""
    stages = [StageLayout(1, (stage1_blocks,), (stage1_inner * 4,), "bottleneck")]
    for i, n_modules in enumerate(modules):
        branches = i + 2
        stages.append(StageLayout(n_modules, (blocks,) * branches,
                                  tuple(width * 2 ** b for b in range(branches))))
    return HRNetLayout(tuple(stages), stem_width=stem_width,
                       inner_widths={f"stage1/module0/branch0/block{k}": (stage1_inner, stage1_inner)
                                     for k in range(stage1_blocks)})


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

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        xs = [self.stem(x)]
        for stage in self.stages:
            xs = stage(xs)
        if self.next_transition is not None:
            xs = self.next_transition(xs)
        return xs


class HRNetPose(nn.Module):
    """HRNet + a 1×1 conv to K heatmaps at 1/4 resolution: (N, 3, H, W) → (N, K, H/4, W/4)."""

    def __init__(self, layout: HRNetLayout, num_joints: int) -> None:
        super().__init__()
        self.backbone = HRNetBackbone(replace(layout, multi_scale_output=False))
        self.head = nn.Conv2d(self.backbone.out_channels[0], num_joints, 1)
        init_pose_weights(self)

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports: stem, stage1..N, head."""
        parts: dict[str, nn.Module] = {"stem": self.backbone.stem}
        for i, stage in enumerate(self.backbone.stages, start=1):
            parts[f"stage{i}"] = stage
        parts["head"] = self.head
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[0])
