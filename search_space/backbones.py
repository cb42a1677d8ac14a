"""The backbone registry: every backbone a space (``space.backbone.name``) or a model can use.

A backbone is a layout (data, :mod:`search_space.layouts`) of one family: ``hrnet`` (built by
:class:`~search_space.hrnet.HRNetBackbone`, with width choices and truncation to "stem~stageN")
``litehrnet`` (:class:`~search_space.litehrnet.LiteHRNetBackbone`), ``resnet``
(:class:`~search_space.resnet.ResNetBackbone`) or ``mobilenet_v2``
(:class:`~search_space.mobilenetv2.MobileNetV2Backbone`). Config validation,
``--help`` texts and the model registry take their names from :data:`BACKBONES`.

To add a backbone of an existing family: write its layout function and add one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from search_space.layouts import (LITE_HRNET_PRESETS, HRNetLayout, LiteHRNetLayout,
                                  MobileNetV2Layout, ResNetLayout, hrnet_layout,
                                  hrnet_tiny_layout, mobilenet_v2_layout, resnet_layout)

__all__ = ["Backbone", "BACKBONES", "backbone_names", "get_backbone"]

Layout = Union[HRNetLayout, LiteHRNetLayout, ResNetLayout, MobileNetV2Layout]


@dataclass(frozen=True)
class Backbone:
    """One registered backbone.

    Attributes:
        family: a registered family (:data:`search_space.families.FAMILIES`): ``"hrnet"``,
            ``"litehrnet"``, … — which module builds it and which widths it may search.
        layout: returns its layout.
        description: one line for ``--help`` and the README's model table.
        plain_model: the name of its registered plain-head model (default: its own name),
            e.g. ``pose_resnet_50`` for ``resnet_50`` with SimpleBaseline's head.
    """

    family: str
    layout: Callable[[], Any]
    description: str
    plain_model: str = ""


def _lite(name: str) -> Callable[[], LiteHRNetLayout]:
    return lambda: LITE_HRNET_PRESETS[name]


#: backbone name → :class:`Backbone`
BACKBONES: dict[str, Backbone] = {
    "hrnet_w32": Backbone("hrnet", lambda: hrnet_layout(32), "HRNet-W32 (Sun et al., CVPR 2019)"),
    "hrnet_w48": Backbone("hrnet", lambda: hrnet_layout(48), "HRNet-W48"),
    "hrnet_tiny": Backbone("hrnet", hrnet_tiny_layout,
                           "width 16, one block per branch, for tests and the CPU demo"),
    "litehrnet_18": Backbone("litehrnet", _lite("litehrnet_18"),
                             "Lite-HRNet-18 (Yu et al., CVPR 2021)"),
    "litehrnet_30": Backbone("litehrnet", _lite("litehrnet_30"), "Lite-HRNet-30"),
    "naive_litehrnet_18": Backbone("litehrnet", _lite("naive_litehrnet_18"),
                                   "shuffle units instead of channel weighting, widths 30·2^b"),
    "wider_naive_litehrnet_18": Backbone("litehrnet", _lite("wider_naive_litehrnet_18"),
                                         "the naive variant with widths 40·2^b"),
    **{f"resnet_{d}": Backbone("resnet", (lambda d=d: resnet_layout(d)),
                               f"SimpleBaseline (Xiao et al., ECCV 2018): ResNet-{d} + 3 "
                               "deconvolutions", plain_model=f"pose_resnet_{d}")
       for d in (18, 34, 50, 101, 152)},
    "mobilenet_v2": Backbone("mobilenet_v2", mobilenet_v2_layout,
                             "MobileNet-V2 to its 160-channel 1/32 block (PoseNFS's pyramid) + 3 "
                             "deconvolutions", plain_model="pose_mobilenet_v2"),
}


def backbone_names() -> list[str]:
    """Registered backbone names, in registry order."""
    return list(BACKBONES)


def get_backbone(name: str) -> Backbone:
    """The registered backbone ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return BACKBONES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}") from None
