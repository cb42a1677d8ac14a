"""Backbone layouts as data: the widths, blocks and modules of HRNet and Lite-HRNet variants.

Plain frozen dataclasses (no torch, no NNI), so the backbone registry and config validation can
read them cheaply; :mod:`search_space.hrnet` and :mod:`search_space.litehrnet` build networks
from them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

__all__ = ["StageLayout", "HRNetLayout", "hrnet_layout", "hrnet_tiny_layout", "LiteHRNetLayout",
           "LITE_HRNET_PRESETS"]


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
