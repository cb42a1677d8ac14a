"""Convolution and batch-norm constructors that accept searchable widths.

A width is either an ``int`` or an NNI :class:`~nni.mutable.Categorical` (a channel-count
choice). The same model code builds the supernet (NNI ``MutableConv2d`` where a width is a
choice) and the frozen network (plain ``nn.Conv2d``), so both have the same module tree and
state-dict keys; a frozen tensor is the leading slice of its supernet tensor (NNI's weight
sharing for width choices keeps the first channels).
"""
from __future__ import annotations

import sys
from typing import Any, Union

from torch import nn

from search_space.operations import BN_MOMENTUM

__all__ = ["Width", "ChosenWidth", "is_choice", "same_width", "conv2d", "batch_norm",
           "max_width", "width_choices"]

#: a channel count or an NNI choice of channel counts
Width = Union[int, Any]

class ChosenWidth(int):
    """The value an architecture gave a width choice. Structure never depends on the value: a
    layer that exists in the supernet because a width *may* differ (a 1×1 adapter, a residual
    projection) exists in the frozen network too, so ``same_width`` compares these by identity,
    as it compares the choices themselves."""


def is_choice(width: Width) -> bool:
    """True when ``width`` is an NNI mutable (a searchable width). NNI is imported only where a
    supernet is built (:mod:`search_space.supernet`): without it nothing can be one."""
    mutable = sys.modules.get("nni.mutable")
    return mutable is not None and isinstance(width, mutable.Mutable)


def same_width(a: Width, b: Width) -> bool:
    """Whether two widths are always equal: the same choice object, or equal integers."""
    if is_choice(a) or is_choice(b) or isinstance(a, ChosenWidth) or isinstance(b, ChosenWidth):
        return a is b
    return a == b


def max_width(width: Width) -> int:
    """The largest value a width can take (its own value for an ``int``)."""
    if is_choice(width):
        return max(width.grid())  # type: ignore[union-attr]
    return int(width)


def conv2d(in_ch: Width, out_ch: Width, kernel: int, stride: int = 1, padding: int = 0,
           bias: bool = False, groups: Width = 1) -> nn.Module:
    """``nn.Conv2d``, or NNI's ``MutableConv2d`` when a width is a choice (a depthwise conv:
    ``groups`` the same width as ``in_ch`` and ``out_ch``)."""
    if is_choice(in_ch) or is_choice(out_ch):
        from nni.nas.nn.pytorch import MutableConv2d  # a supernet: NNI is loaded already

        return MutableConv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=bias,
                             groups=groups)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=bias,
                     groups=groups)


def width_choices(base: int, multipliers: tuple[float, ...]) -> list[int]:
    """The channel counts ``multipliers`` give a layer of ``base`` channels, largest first."""
    return sorted({max(1, int(round(base * m))) for m in multipliers}, reverse=True)


def batch_norm(channels: Width, momentum: float = BN_MOMENTUM) -> nn.Module:
    """``nn.BatchNorm2d``, or NNI's ``MutableBatchNorm2d`` when the width is a choice."""
    if is_choice(channels):
        from nni.nas.nn.pytorch import MutableBatchNorm2d

        return MutableBatchNorm2d(channels, momentum=momentum)
    return nn.BatchNorm2d(channels, momentum=momentum)
