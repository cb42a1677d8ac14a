"""What a backbone family gives the space (:class:`BackbonePlan`): the channels of its pyramid
levels and how to build it once the heads are known. See :mod:`search_space.families`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from torch import nn

from search_space.choices import Chooser

__all__ = ["BackbonePlan", "BackboneOptions", "PlanFunction", "BackboneFamily"]


class BackboneOptions(Protocol):
    """What a family reads of the ``space.backbone`` config section
    (:class:`search_space.config.BackboneSpaceConfig`)."""

    name: str
    stages: int
    width_multipliers: tuple[float, ...]
    search_branch_widths: bool
    search_block_widths: bool


@dataclass(frozen=True)
class BackbonePlan:
    """A family's answer for one space.

    Attributes:
        widths: channels of each pyramid level the heads may read, highest resolution (1/4)
            first; chosen widths while searching.
        build: the backbone module, given the set of levels the heads read (``None``: every
            level, e.g. in a supernet); it maps (N, 3, H, W) to a list of those levels.
        plain_head_name: the attribute name of the plain head (the official code's name, so
            its checkpoints load as released).
        plain_head: the family's plain head, given the number of joints (None: HRNet's 1×1
            heatmap conv on level 0); e.g. SimpleBaseline's deconvolution head for ResNet.
        plain_level: the pyramid level the plain head reads.
    """

    widths: tuple[Any, ...]
    build: Callable[[set[int] | None], nn.Module]
    plain_head_name: str = "head"
    plain_head: Callable[[int], nn.Module] | None = None
    plain_level: int = 0


#: ``(layout, backbone options, chooser, plain head?, pyramid levels the heads read) → plan``
PlanFunction = Callable[[Any, BackboneOptions, Chooser, bool, int], BackbonePlan]


@dataclass(frozen=True)
class BackboneFamily:
    """One registered family.

    Attributes:
        plan: how the space builds a backbone of the family (:data:`PlanFunction`).
        description: one line for the README.
        width_choices: whether ``space.backbone.width_multipliers`` can give it width choices.
        truncatable: whether ``space.backbone.stages`` can cut it after a stage.
    """

    plan: PlanFunction
    description: str
    width_choices: bool = False
    truncatable: bool = False
