"""The search-space section of an experiment config (``space:``), validated into dataclasses.

Names come from the registries: backbones (:mod:`search_space.backbones`) and cell operations
(:mod:`search_space.operations`). A check that fails raises :class:`~search_space.errors.UserInputError` naming the field;
the config loader (``trainers.config.schema``) turns it into an error naming the file and the dotted key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from search_space.backbones import BACKBONES, backbone_names
from search_space.errors import UserInputError
from search_space.families import get_family
from search_space.operations import OPERATIONS, operation_names

__all__ = ["BackboneSpaceConfig", "CellConfig", "SpaceConfig"]


@dataclass(frozen=True, kw_only=True)
class BackboneSpaceConfig:
    """The backbone feeding the part heads, and its channel-width choices."""

    name: str = "hrnet_w32"  #: a registered backbone (search_space.backbones)
    #: HRNet stages kept: 0 = all (the full HRNet's pyramid); 3 = PNFS's "stem~stage3" (stages
    #: 1-3 plus the transition that opens the 1/32 branch); with a plain head, the first N
    #: stages, the last fusing into its 1/4 branch (HRNet's single-scale output)
    stages: int = 0
    #: width choices as multiples of the base widths, e.g. [0.25, 0.5, 0.75, 1.0]; [] = fixed
    width_multipliers: tuple[float, ...] = ()
    search_branch_widths: bool = True  #: one width choice per branch (tied across stages/fuses)
    search_block_widths: bool = True  #: one choice per inner width of every residual block

    def __post_init__(self) -> None:
        if self.name not in BACKBONES:
            raise UserInputError.at_field("name", f"unknown backbone {self.name!r}; known: "
                               f"{', '.join(backbone_names())}")
        family = get_family(BACKBONES[self.name].family)
        if self.stages not in (0, 2, 3, 4):
            raise UserInputError.at_field("stages", f"must be 0 (all), 2, 3 or 4, got {self.stages}")
        if self.stages and not family.truncatable:
            raise UserInputError.at_field("stages", "truncation is not defined for the "
                                          f"{BACKBONES[self.name].family} family")
        for m in self.width_multipliers:
            if not 0.0 < m <= 1.0:
                raise UserInputError.at_field("width_multipliers", f"multipliers must be in (0, 1], got {m}")
        if self.width_multipliers and not family.width_choices:
            raise UserInputError.at_field("width_multipliers", "the "
                                          f"{BACKBONES[self.name].family} family has no width "
                                          "choices")


@dataclass(frozen=True, kw_only=True)
class CellConfig:
    """A PNFS cell-based neural fabric (field names of the PNFS configs)."""

    one_shot_search: bool = True  #: one alpha per edge shared by every cell of a fabric
    vector_in_pixel: bool = True  #: vector head: |v|^2 / (1 + |v|^2) per joint
    vector_dim: int = 8
    convolution_mode: Literal["2D", "3D"] = "2D"
    search_alpha: bool = True  #: false: every operation mixed with fixed equal weights
    search_beta: bool = True  #: false: the three inputs of a cell mixed with fixed equal weights
    operators: tuple[str, ...] = ("Zero", "skip_connect", "Sep_Conv_3x3", "Atr_Conv_3x3")
    depth: int = 6
    cut_layers_num: int = 3  #: layers replaced by the backbone pyramid
    size_types: tuple[int, ...] = (4, 8, 16, 32)  #: strides of the fabric's scales
    hidden_states_num: int = 1
    factor: int = 16  #: cell channels = factor × size_type (/4: 1/4 scale has 4·factor)
    input_nodes_num: int = 1
    #: PC-DARTS's partial channel connections (Xu et al., ICLR 2020, arXiv:1907.05737): K > 1
    #: sends 1/K of a cell's channels through the supernet's mixed operations, the others
    #: bypass them, then the channels are shuffled; less memory and time per search step. The
    #: frozen network uses every channel (it trains from scratch: no inherited weights). PC-DARTS
    #: uses 4; 1 = off
    partial_channels: int = 1

    def __post_init__(self) -> None:
        unknown = [op for op in self.operators if op not in OPERATIONS]
        if unknown:
            raise UserInputError.at_field("operators", f"unknown {unknown}; known: {operation_names()}")
        if not self.operators or len(set(self.operators)) != len(self.operators):
            raise UserInputError.at_field("operators", "must be a non-empty list without repeats")
        if self.operators == ("Zero",):
            raise UserInputError.at_field("operators", "needs an operation besides Zero")
        if self.depth < 2:
            raise UserInputError.at_field("depth", f"must be at least 2, got {self.depth}")
        if not 1 <= self.cut_layers_num < self.depth:
            raise UserInputError.at_field("cut_layers_num", f"must be in [1, depth), got {self.cut_layers_num}")
        sizes = list(self.size_types)
        if not sizes or sizes[0] != 4 or any(b != 2 * a for a, b in zip(sizes, sizes[1:])):
            raise UserInputError.at_field("size_types", f"must be 4, 8, ... doubling (1/4 first), got {sizes}")
        if self.hidden_states_num < 1:
            raise UserInputError.at_field("hidden_states_num", "must be at least 1")
        if self.input_nodes_num != 1:
            raise UserInputError.at_field("input_nodes_num", "only 1 is supported (the setting of the "
                               "PNFS paper; the released checkpoints' second node was unused)")
        if self.factor < 1 or self.vector_dim < 1:
            raise UserInputError.at_field("factor" if self.factor < 1 else "vector_dim", "must be positive")
        if self.partial_channels < 1 or (self.factor * sizes[0]) % self.partial_channels:
            raise UserInputError.at_field("partial_channels", "must be at least 1 and divide the "
                                          f"smallest cell width factor × 4 = {self.factor * 4}, "
                                          f"got {self.partial_channels}")


@dataclass(frozen=True, kw_only=True)
class SpaceConfig:
    """The unified search space: backbone widths × body parts × PNFS fabrics."""

    backbone: BackboneSpaceConfig = field(default_factory=BackboneSpaceConfig)
    #: "fabric": a PNFS fabric per part; "plain": the family's own head on the backbone (one
    #: part: HRNet's 1×1 conv on its 1/4 branch, SimpleBaseline's deconvolutions on a ResNet)
    head: Literal["fabric", "plain"] = "fabric"
    #: with ``head: fabric``, each part also chooses its head type (label ``part{p}/head``):
    #: its fabric, or a plain 1×1 conv from the backbone's 1/4 level to the part's joints — so
    #: the search can keep a plain head where a fabric does not pay
    search_head_type: bool = False
    parts_num: int = 5
    cell_config: CellConfig = field(default_factory=CellConfig)

    def __post_init__(self) -> None:
        if self.parts_num not in (1, 3, 5, 8):
            raise UserInputError.at_field("parts_num", f"must be 1, 3, 5 or 8, got {self.parts_num}")
        if self.search_head_type and self.head != "fabric":
            raise UserInputError.at_field("search_head_type", "chooses between a part's fabric "
                                          "and a plain head: it needs head: fabric")
