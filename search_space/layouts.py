"""Backbone layouts as data: the widths, blocks and modules of HRNet, Lite-HRNet, ResNet and
MobileNet-V2 variants.

Plain frozen dataclasses (no torch, no NNI), so the backbone registry and config validation can
read them cheaply; :mod:`search_space.hrnet`, :mod:`search_space.litehrnet`, :mod:`search_space.resnet` and
:mod:`search_space.mobilenetv2` build networks from them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

__all__ = ["StageLayout", "HRNetLayout", "hrnet_layout", "hrnet_tiny_layout", "LiteHRNetLayout",
           "LITE_HRNET_PRESETS", "ResNetLayout", "resnet_layout", "MobileNetV2Layout",
           "mobilenet_v2_layout"]


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


def hrnet_tiny_layout() -> HRNetLayout:
    """A small HRNet for tests and the CPU demo: width 16, one block per branch."""
    stages = (
        StageLayout(1, (1,), (64,), "bottleneck"),
        StageLayout(1, (1, 1), (16, 32)),
        StageLayout(1, (1, 1, 1), (16, 32, 64)),
        StageLayout(1, (1, 1, 1, 1), (16, 32, 64, 128)),
    )
    return HRNetLayout(stages, stem_width=32,
                       inner_widths={"stage1/module0/branch0/block0": (16, 16)})


@dataclass(frozen=True)
class LiteHRNetLayout:
    """Stages of Lite-HRNet: modules, blocks per module, branch widths and the block type."""

    num_modules: tuple[int, ...]
    widths: tuple[tuple[int, ...], ...]
    num_blocks: tuple[int, ...] = (2, 2, 2)
    block: str = "lite"  #: "lite" (conditional channel weighting) or "naive" (shuffle units)
    reduce_ratio: int = 8  #: squeeze ratio of the cross-resolution weighting
    stem_width: int = 32


LITE_HRNET_PRESETS: dict[str, LiteHRNetLayout] = {
    "litehrnet_18": LiteHRNetLayout((2, 4, 2), ((40, 80), (40, 80, 160), (40, 80, 160, 320))),
    "litehrnet_30": LiteHRNetLayout((3, 8, 3), ((40, 80), (40, 80, 160), (40, 80, 160, 320))),
    "naive_litehrnet_18": LiteHRNetLayout((2, 4, 2), ((30, 60), (30, 60, 120), (30, 60, 120, 240)),
                                          block="naive"),
    "wider_naive_litehrnet_18": LiteHRNetLayout((2, 4, 2), ((40, 80), (40, 80, 160), (40, 80, 160, 320)),
                                                block="naive"),
}


@dataclass(frozen=True)
class ResNetLayout:
    """A ResNet (He et al., CVPR 2016) as torchvision builds it: a 7×7 stride-2 stem and a
    max-pool (→ 1/4), then ``layer1`` … ``layer4`` at 1/4 … 1/32 (stride 2 on the 3×3 conv of
    each stage's first block, the "v1.5" layout of torchvision and SimpleBaseline).

    Attributes:
        depth: 18, 34, 50, 101 or 152 (the torchvision constructor of that name).
        block: ``"basic"`` (18, 34) or ``"bottleneck"``.
        num_blocks: blocks per stage.
        widths: output channels per stage (bottleneck: 4 × the inner width).
        stem_width: channels of the stem conv.
    """

    depth: int
    block: str
    num_blocks: tuple[int, int, int, int]
    widths: tuple[int, int, int, int]
    stem_width: int = 64

    @property
    def inner_widths(self) -> tuple[int, ...]:
        """Inner (3×3) width per stage: the output width, divided by 4 for a bottleneck."""
        return tuple(w // 4 if self.block == "bottleneck" else w for w in self.widths)


_RESNET_BLOCKS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                  50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
                  152: ("bottleneck", (3, 8, 36, 3))}


def resnet_layout(depth: int) -> ResNetLayout:
    """torchvision's ``resnet{depth}`` (without its classifier)."""
    block, blocks = _RESNET_BLOCKS[depth]
    expansion = 4 if block == "bottleneck" else 1
    return ResNetLayout(depth, block, blocks, tuple(64 * 2 ** s * expansion for s in range(4)))


@dataclass(frozen=True)
class MobileNetV2Layout:
    """MobileNet-V2 (Sandler et al., CVPR 2018) as PoseNFS reads it: a 3×3 stride-2 conv, then
    the inverted-residual settings (t expansion, c channels, n blocks, s stride), numbered as
    torchvision's ``features`` (0 the stem conv, 1 … 17 the blocks). PoseNFS takes its pyramid
    after blocks 3, 6, 13 and 16 (24, 32, 96, 160 channels at 1/4 … 1/32); block 17 (320 ch)
    and the final 1×1 conv to 1280 are not part of it.

    Attributes:
        settings: (t, c, n, s) per stage.
        stem_width: channels of the stem conv.
        taps: the ``features`` index whose output is each pyramid level.
    """

    settings: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
        (6, 160, 3, 2), (6, 320, 1, 1))
    stem_width: int = 32
    taps: tuple[int, int, int, int] = (3, 6, 13, 16)

    def blocks(self) -> list[tuple[int, int, int, int]]:
        """(stage, expansion t, output channels, stride) of every block, ``features`` order
        (block i is ``features[i + 1]``), up to the last tap."""
        out = []
        for stage, (t, c, n, s) in enumerate(self.settings):
            for k in range(n):
                out.append((stage, t, c, s if k == 0 else 1))
        return out[:self.taps[-1]]


def mobilenet_v2_layout() -> MobileNetV2Layout:
    """torchvision's ``mobilenet_v2`` (width 1.0) up to PoseNFS's last tap."""
    return MobileNetV2Layout()
