"""The model registry: every fixed network is a point of the space, built by one function.

A registered model is a :class:`~search_space.config.SpaceConfig` (data) that
:func:`~search_space.pose_space.freeze` turns into a network with no choices left:

- the baselines (``head: plain``): a backbone of :mod:`search_space.backbones` and its family's
  plain head — HRNet's 1×1 heatmap conv on the highest-resolution branch (HRNet-W32/W48,
  Lite-HRNet-18/30 and the naive variants, ``hrnet_tiny``), SimpleBaseline's three
  deconvolutions on the 1/32 stage (``pose_resnet_18`` … ``pose_resnet_152``,
  ``pose_mobilenet_v2``);
- the PNFS fixed models (``search_alpha``/``search_beta`` off, fixed widths): PNFS's "None"
  baseline, every operation and input of the fabric mixed with fixed weights (PoseNFS's with α,
  β at 0: operations summed, inputs averaged; a converted PoseNFS checkpoint sets its own).

``model.name`` in a config, ``train_derived.py --model``, ``visualize.param_flop --model`` and
checkpoints name these entries.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from search_space.backbones import BACKBONES
from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig
from search_space.pose_space import PoseNetwork, freeze

__all__ = ["ModelEntry", "MODELS", "model_names", "build_model"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its point of the space and a one-line description."""

    space: SpaceConfig
    description: str


def _plain(backbone: str) -> ModelEntry:
    return ModelEntry(SpaceConfig(backbone=BackboneSpaceConfig(name=backbone), head="plain"),
                      BACKBONES[backbone].description)


_CNF = CellConfig(search_alpha=False, search_beta=False, one_shot_search=True,
                  vector_in_pixel=True, vector_dim=8, convolution_mode="2D",
                  operators=("Zero", "skip_connect", "Atr_Conv_3x3", "Sep_Conv_3x3"), depth=6,
                  cut_layers_num=3, size_types=(4, 8, 16, 32), hidden_states_num=1, factor=16)

#: model name → :class:`ModelEntry`
MODELS: dict[str, ModelEntry] = {
    **{entry.plain_model or name: _plain(name) for name, entry in BACKBONES.items()},
    # PNFS "HRNet-W32-stem~stage3 + CNF×5" (P=5, H=1, C=16)
    "pnfs_hrnet_w32_cnf5": ModelEntry(
        SpaceConfig(backbone=BackboneSpaceConfig(name="hrnet_w32", stages=3), parts_num=5,
                    cell_config=_CNF),
        "PNFS 'None' baseline: HRNet-W32 stem~stage3 + CNF×5, operations and inputs mixed "
        "with fixed weights"),
    # PoseNFS's configs/mobilenet_v2_CNFx3_coco_384x288.yaml (P=3, H=1, C=16, 3 operators)
    "pnfs_mobilenet_v2_cnf3": ModelEntry(
        SpaceConfig(backbone=BackboneSpaceConfig(name="mobilenet_v2"), parts_num=3,
                    cell_config=replace(_CNF, operators=("skip_connect", "Sep_Conv_3x3",
                                                         "Atr_Conv_3x3"))),
        "PNFS 'None' baseline: MobileNet-V2 + CNF×3, operations and inputs mixed with fixed "
        "weights"),
    # the ResNet-50 backbone PoseNFS offers (resnet_feature.py) with the CNF×5 of its HRNet file
    "pnfs_resnet_50_cnf5": ModelEntry(
        SpaceConfig(backbone=BackboneSpaceConfig(name="resnet_50"), parts_num=5, cell_config=_CNF),
        "PNFS 'None' baseline on ResNet-50 (layer1-4 as the 1/4-1/32 pyramid) + CNF×5"),
    # the same fabric heads on the small HRNet of the CPU demo (3 parts, factor 4)
    "pnfs_hrnet_tiny_cnf3": ModelEntry(
        SpaceConfig(backbone=BackboneSpaceConfig(name="hrnet_tiny", stages=3), parts_num=3,
                    cell_config=CellConfig(search_alpha=False, search_beta=False, vector_dim=4,
                                           operators=("Zero", "skip_connect", "Sep_Conv_3x3"),
                                           depth=5, cut_layers_num=3, factor=4)),
        "the PNFS idea on hrnet_tiny stem~stage3, 3 parts, factor 4"),
}


def model_names() -> list[str]:
    """Registered model names, in registry order."""
    return list(MODELS)


def build_model(name: str, dataset: str) -> PoseNetwork:
    """The registered model ``name`` with heads for ``dataset``'s joints ("coco", "mpii").

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        entry = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None
    return freeze(entry.space, dataset, {})
