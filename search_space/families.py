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

__all__ = ["FAMILIES", "get_family"]

#: family name → :class:`~search_space.backbone_plan.BackboneFamily`
FAMILIES: dict[str, BackboneFamily] = {
    "hrnet": BackboneFamily(hrnet_plan, "HRNet (Sun et al., CVPR 2019): width choices per "
                            "branch and block, truncation after stage 2/3/4", width_choices=True,
                            truncatable=True),
    "litehrnet": BackboneFamily(litehrnet_plan, "Lite-HRNet (Yu et al., CVPR 2021), as released"),
}


def get_family(name: str) -> BackboneFamily:
    """The registered family ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown backbone family {name!r}; known: {', '.join(FAMILIES)}") from None
