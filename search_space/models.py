"""The registry of fixed models: name → builder. Every model goes through here.

Variants are data: each entry is a layout preset handed to one builder. ``build_model`` is what
configs (``model.name``), ``train_derived.py --model`` and ``visualize.param_flop`` call.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from search_space.hrnet import HRNetLayout, HRNetPose, StageLayout, hrnet_layout

__all__ = ["MODELS", "build_model", "model_names", "hrnet_tiny_layout"]


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


def _lite(name: str) -> Callable[[int], nn.Module]:
    def build(num_joints: int) -> nn.Module:
        from search_space.litehrnet import LiteHRNetPose, LITE_HRNET_PRESETS

        return LiteHRNetPose(LITE_HRNET_PRESETS[name], num_joints)

    return build


def _preset(name: str) -> Callable[[int], nn.Module]:
    def build(num_joints: int) -> nn.Module:
        from search_space.pose_space import freeze
        from search_space.presets import SPACE_PRESETS

        dataset = {17: "coco", 16: "mpii"}.get(num_joints)
        if dataset is None:
            raise KeyError(f"{name} has body-part heads for COCO (17) or MPII (16) joints, "
                           f"not {num_joints}")
        return freeze(SPACE_PRESETS[name], dataset, {})

    return build


#: model name → builder(num_joints)
MODELS: dict[str, Callable[[int], nn.Module]] = {
    "hrnet_w32": lambda k: HRNetPose(hrnet_layout(32), k),
    "hrnet_w48": lambda k: HRNetPose(hrnet_layout(48), k),
    "hrnet_tiny": lambda k: HRNetPose(hrnet_tiny_layout(), k),
    "litehrnet_18": _lite("litehrnet_18"),
    "litehrnet_30": _lite("litehrnet_30"),
    "naive_litehrnet_18": _lite("naive_litehrnet_18"),
    "wider_naive_litehrnet_18": _lite("wider_naive_litehrnet_18"),
    "pnfs_hrnet_w32_cnf5": _preset("pnfs_hrnet_w32_cnf5"),
    "pnfs_hrnet_tiny_cnf3": _preset("pnfs_hrnet_tiny_cnf3"),
}


def model_names() -> list[str]:
    """Registered model names."""
    return sorted(MODELS)


def build_model(name: str, num_joints: int) -> nn.Module:
    """Build the registered model ``name`` with ``num_joints`` heatmap channels.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        builder = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None
    return builder(num_joints)
