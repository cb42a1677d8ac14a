"""The backbone-family registry: how each family of backbones enters the space.

A backbone (:data:`search_space.backbones.BACKBONES`) is a layout of one family; its family
says how the space builds it: which width decisions it asks of the chooser, which channel counts
its pyramid levels (1/4, 1/8, …) give the heads, and how the backbone module is built once the
heads are known (:class:`~search_space.backbone_plan.BackbonePlan`). The network code
(:func:`search_space.pose_space.populate_network`) knows no family by name.

To add a family: one file with its backbone module and a plan function
``(layout, options, chooser, plain, levels) -> BackbonePlan``, one entry in :data:`FAMILIES`,
and its backbones (layouts) in :data:`search_space.backbones.BACKBONES`.
"""
from __future__ import annotations

from search_space.backbone_plan import BackboneFamily
from search_space.hrnet import hrnet_plan
from search_space.litehrnet import litehrnet_plan
from search_space.mobilenetv2 import mobilenet_v2_plan
from search_space.resnet import resnet_plan

__all__ = ["FAMILIES", "get_family"]

#: family name → :class:`~search_space.backbone_plan.BackboneFamily`
FAMILIES: dict[str, BackboneFamily] = {
    "hrnet": BackboneFamily(hrnet_plan, "HRNet (Sun et al., CVPR 2019): width choices per "
                            "branch and block, truncation after stage 2/3/4", width_choices=True,
                            truncatable=True),
    "litehrnet": BackboneFamily(litehrnet_plan, "Lite-HRNet (Yu et al., CVPR 2021), as released"),
    "resnet": BackboneFamily(resnet_plan, "ResNet (He et al., CVPR 2016) as torchvision builds "
                             "it: width choices per stage (output and inner); plain head: "
                             "SimpleBaseline's deconvolutions", width_choices=True),
    "mobilenet_v2": BackboneFamily(mobilenet_v2_plan, "MobileNet-V2 (Sandler et al., CVPR 2018) "
                                   "to PoseNFS's 1/32 level: width choices per stage and "
                                   "expansion per block; plain head: deconvolutions",
                                   width_choices=True),
}


def get_family(name: str) -> BackboneFamily:
    """The registered family ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown backbone family {name!r}; known: {', '.join(FAMILIES)}") from None
