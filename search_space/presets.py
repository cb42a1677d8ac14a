"""Named points of the space: the PNFS fixed models (``search_alpha``/``search_beta`` off,
fixed widths — PNFS's "None" baseline, every operation and input mixed with equal weights).

A config whose ``space`` section equals a preset builds exactly the registered model of that
name (tested), so baselines and searched models share one code path.
"""
from __future__ import annotations

from trainers.config import BackboneSpaceConfig, CellConfig, SpaceConfig

__all__ = ["SPACE_PRESETS"]

_CNF = CellConfig(search_alpha=False, search_beta=False, one_shot_search=True,
                  vector_in_pixel=True, vector_dim=8, convolution_mode="2D",
                  operators=("Zero", "skip_connect", "Atr_Conv_3x3", "Sep_Conv_3x3"), depth=6,
                  cut_layers_num=3, size_types=(4, 8, 16, 32), hidden_states_num=1, factor=16)

#: model name → the space config of that fixed model
SPACE_PRESETS: dict[str, SpaceConfig] = {
    # PNFS "HRNet-W32-stem~stage3 + CNF×5" (P=5, H=1, C=16)
    "pnfs_hrnet_w32_cnf5": SpaceConfig(
        backbone=BackboneSpaceConfig(name="hrnet_w32", stages=3), parts_num=5, cell_config=_CNF),
    # the same fabric heads on the small HRNet of the CPU demo (3 parts, factor 4)
    "pnfs_hrnet_tiny_cnf3": SpaceConfig(
        backbone=BackboneSpaceConfig(name="hrnet_tiny", stages=3), parts_num=3,
        cell_config=CellConfig(search_alpha=False, search_beta=False, vector_dim=4,
                               operators=("Zero", "skip_connect", "Sep_Conv_3x3"), depth=5,
                               cut_layers_num=3, factor=4)),
}
