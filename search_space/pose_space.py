"""The networks of the unified search space: the model code both the supernet
(:mod:`search_space.supernet`, ``PoseSpace``, an NNI ``ModelSpace``) and the frozen networks
are built from, and the frozen side (no NNI import: training, inference and export of a frozen
network never load NNI or the Lightning its evaluators pull in).

backbone (HRNet with width choices, or Lite-HRNet) → pyramid → per body part: 1×1 adapters →
PNFS fabric → vector or heatmap head → the part's joints; joints shared by two parts are summed.
With ``space.search_head_type`` each part chooses that fabric head or a plain one (a 1×1 conv on
the backbone's 1/4 level, :class:`PlainPartHead`), label ``part{p}/head``.
``head: plain`` instead puts the family's own head on the backbone (the fixed baselines): HRNet's
1×1 heatmap conv on its 1/4 branch, SimpleBaseline's deconvolutions on a ResNet's 1/32 stage.

- :func:`search_space.supernet.build` — the supernet for a config: every decision is an NNI mutable with a stable
  label (``stage3/branch1/width``, ``stage2/module0/branch1/block3/inner0``,
  ``part2/fabric/l3s1/input``, ``part2/fabric/cell/edge0_op`` or per cell
  ``part2/fabric/l3s1/cell/edge0_op``).
- :func:`freeze` — a plain PyTorch network for one choice of every label: no NNI mutables, no
  ``Zero`` operations, no cells or routes without a path to an output. Its state-dict keys are a
  subset of the supernet's (tensors are leading slices for width choices), see
  :func:`search_space.inherit.inherit_weights`.

Shape legend: N batch, K joints, H×W input; heatmaps are H/4 × W/4.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from search_space.backbones import get_backbone
from search_space.blocks import init_pose_weights
from search_space.choices import Chooser, FixedChooser
from search_space.config import SpaceConfig
from search_space.fabric import Fabric, pyramid_levels_read
from search_space.families import get_family
from search_space.joints import keypoint_spec
from search_space.layers import conv2d, max_width
from search_space.parts import BodyPart, body_parts

__all__ = ["PoseNetwork", "PartHead", "PlainPartHead", "ChosenHead", "HEAD_TYPES", "freeze",
           "check_architecture", "VectorHead", "HeatmapHead", "populate_network", "pose_forward",
           "named_components", "levels_read", "part_fabric"]


# --------------------------------------------------------------------------------------------
# heads


class HeatmapHead(nn.Module):
    """ReLU → 1×1 conv: (N, C, h, w) → (N, J, h, w) heatmaps."""

    def __init__(self, channels: int, joints: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, joints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(x))


class VectorHead(nn.Module):
    """PNFS's vector-in-pixel head: a d-dimensional vector v per joint and pixel, output
    ‖v‖² / (1 + ‖v‖²) ∈ [0, 1): (N, C, h, w) → (N, J, h, w).

    ``"2D"``: a 1×1 conv to J·d channels. ``"3D"``: the C channels are read as C/d groups of
    d-vectors, (N, C/d, d, h, w), and a 1×1×1 3D conv maps groups to joints (weights shared by
    the d components), giving the (N, J, d, h, w) tensor directly.
    """

    def __init__(self, channels: int, joints: int, dim: int, mode: str) -> None:
        super().__init__()
        self.dim, self.mode, self.joints = dim, mode, joints
        if mode == "2D":
            self.conv: nn.Module = nn.Conv2d(channels, joints * dim, 1)
        else:
            if channels % dim:
                raise ValueError(f"3D vector head: cell channels {channels} are not divisible by "
                                 f"vector_dim {dim}")
            self.conv = nn.Conv3d(channels // dim, joints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        n, c, h, w = x.shape
        if self.mode == "2D":
            v = self.conv(x).view(n, self.joints, self.dim, h, w)
        else:
            v = self.conv(x.view(n, c // self.dim, self.dim, h, w))
        sq = (v * v).sum(dim=2)
        return sq / (1.0 + sq)


class PartHead(nn.Module):
    """One body part: its fabric and its output head, (pyramid) → (N, J_part, H/4, W/4)."""

    def __init__(self, fabric: Fabric, head: nn.Module) -> None:
        super().__init__()
        self.fabric = fabric
        self.head = head

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.fabric(pyramid))


class PlainPartHead(nn.Module):
    """A part's plain head: a 1×1 conv from the backbone's 1/4 level to the part's joints, as
    HRNet's final layer does for the whole body. (pyramid) → (N, J_part, H/4, W/4).

    The conv is built at the level's largest width and reads the leading input channels it is
    given (a frozen network's conv has exactly its chosen width). It is not an NNI mutable conv:
    a one-shot strategy would rebuild one with PyTorch's default initialisation, and a head
    whose initial maps are far from 0 loses every early comparison with the fabric's."""

    def __init__(self, channels: Any, joints: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(max_width(channels), joints, 1, bias=True)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        x = pyramid[0]
        c = x.shape[1]
        if c == self.conv.in_channels:
            return self.conv(x)
        return F.conv2d(x, self.conv.weight[:, :c], self.conv.bias)


#: the candidates of a part's head type (``part{p}/head``), the default first
HEAD_TYPES = ("fabric", "plain")


class ChosenHead(nn.ModuleDict):
    """The head type a frozen architecture chose for a part, kept under its name like the
    supernet's ``LayerChoice`` candidate (so the state-dict keys match)."""

    def __init__(self, name: str, head: nn.Module) -> None:
        super().__init__({name: head})

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return next(iter(self.values()))(pyramid)


def levels_read(head: nn.Module) -> tuple[int, ...]:
    """The backbone levels a frozen part head reads."""
    if isinstance(head, ChosenHead):
        head = next(iter(head.values()))
    return (0,) if isinstance(head, PlainPartHead) else head.fabric.used_levels


def part_fabric(head: nn.Module) -> Fabric | None:
    """The fabric of a part head (a frozen network's, or the supernet's under any head type
    choice); ``None`` for a plain part head."""
    fabrics = [m for m in head.modules() if isinstance(m, Fabric)]
    return fabrics[0] if fabrics else None


# --------------------------------------------------------------------------------------------
# the network (shared by the supernet and the frozen model)


def populate_network(module: nn.Module, space: SpaceConfig, dataset: str,
                     chooser: Chooser) -> None:
    """Build backbone and heads onto ``module`` (a ``PoseSpace`` or a ``PoseNetwork``)."""
    module.space_config = space
    module.dataset = dataset
    module.num_joints = keypoint_spec(dataset).num_joints
    plain = space.head == "plain"
    bcfg = space.backbone
    module.parts = body_parts(dataset, 1 if plain else space.parts_num)
    backbone_entry = get_backbone(bcfg.name)
    plan = get_family(backbone_entry.family).plan(backbone_entry.layout(), bcfg, chooser, plain,
                                                  pyramid_levels_read(space.cell_config))
    widths = plan.widths
    if plain:
        module.backbone = plan.build(None)
        name = plan.plain_head_name  # the official codes' names
        head = (plan.plain_head(module.num_joints) if plan.plain_head is not None
                else conv2d(widths[0], module.num_joints, 1, bias=True))
        setattr(module, name, head)
        module.plain_head_name = name
        module.plain_level = plan.plain_level
        init_pose_weights(module)
        return
    module.plain_head_name = None
    cell = space.cell_config
    heads = nn.ModuleList()
    c0 = cell.factor * cell.size_types[0]

    def fabric_head(p: int, joints: int) -> PartHead:
        head = (VectorHead(c0, joints, cell.vector_dim, cell.convolution_mode)
                if cell.vector_in_pixel else HeatmapHead(c0, joints))
        return PartHead(Fabric(cell, widths, chooser, prefix=f"part{p}/fabric"), head)

    def plain_head(joints: int) -> PlainPartHead:
        return PlainPartHead(widths[0], joints)

    for p, part in enumerate(module.parts):
        joints = len(part.joints)
        if not space.search_head_type:
            heads.append(fabric_head(p, joints))
            continue
        kind = chooser.operation(f"part{p}/head", HEAD_TYPES,
                                 lambda name, p=p, j=joints: (fabric_head(p, j) if name == "fabric"
                                                              else plain_head(j)))
        if chooser.searching:
            heads.append(kind)
            continue
        if kind == "plain":  # the fabric's labels stay part of the architecture: checked, unbuilt
            with torch.device("meta"):
                Fabric(cell, widths, chooser, prefix=f"part{p}/fabric")
        heads.append(ChosenHead(kind, fabric_head(p, joints) if kind == "fabric"
                                else plain_head(joints)))
    # a frozen network's backbone computes only the levels its heads read
    backbone = plan.build(None if chooser.searching
                          else {i for h in heads for i in levels_read(h)})
    init_pose_weights(backbone)
    for m in heads.modules():  # the output layers (the fabrics keep PyTorch's initialisation)
        if isinstance(m, (VectorHead, HeatmapHead, PlainPartHead)):
            init_pose_weights(m)
    module.backbone = backbone
    module.heads = heads
    for p, part in enumerate(module.parts):
        module.register_buffer(f"_joints{p}", torch.tensor(part.joints), persistent=False)
    # parts that partition the joints (each joint in exactly one) are assembled by a reordering
    # (a Gather when exported) instead of a sum into zeros (a ScatterElements: 115 µs of a 1.3 ms
    # derived network in onnxruntime); the same values, since 0 + y = y
    listed = [j for part in module.parts for j in part.joints]
    module.joints_partitioned = sorted(listed) == list(range(module.num_joints))
    order = sorted(range(len(listed)), key=listed.__getitem__)
    # None: the concatenated maps are already in joint order
    module.joint_order = None if order == list(range(len(order))) else order


def _heatmap_size(x: torch.Tensor) -> tuple[int, int]:
    """The 1/4 grid of an input, as the stride-2 convolutions of every stem give it."""
    h, w = x.shape[-2:]
    return (h + 3) // 4, (w + 3) // 4


def pose_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    pyramid = module.backbone(x)
    if module.plain_head_name is not None:
        out = getattr(module, module.plain_head_name)(pyramid[module.plain_level])
        h, w = _heatmap_size(x)
        if out.shape[-2] > h or out.shape[-1] > w:
            # a deconvolution head on a 1/32 map of an input not divisible by 32 (64×48: 2×2
            # → 16×16): the strided convs pad at the bottom/right, so the grid is aligned at the
            # top-left and the extra rows/columns lie past the image
            out = out[..., :h, :w]
        return out
    maps = [part_head(pyramid) for part_head in module.heads]
    if module.joints_partitioned:
        out = torch.cat(maps, dim=1)
        return out if module.joint_order is None else out[:, module.joint_order]
    out = maps[0].new_zeros(maps[0].shape[0], module.num_joints, *maps[0].shape[2:])
    for p, y in enumerate(maps):  # overlapping parts: a joint's maps are summed
        out = out.index_add(1, getattr(module, f"_joints{p}"), y)
    return out


def named_components(module: nn.Module) -> dict[str, nn.Module]:
    if module.plain_head_name is not None:  # the baselines: stem, stages, head
        parts = dict(module.backbone.components())
        parts["head"] = getattr(module, module.plain_head_name)
        return parts
    parts = {"backbone": module.backbone}
    for p, part in enumerate(module.parts):
        parts[f"part{p}:{part.name}"] = module.heads[p]
    return parts


class PoseNetwork(nn.Module):
    """A frozen architecture of the space: a plain PyTorch pose network (N, 3, H, W) →
    (N, K, H/4, W/4). Build it with :func:`freeze`."""

    parts: list[BodyPart]

    def __init__(self, space: SpaceConfig, dataset: str, choices: Mapping[str, Any]) -> None:
        super().__init__()
        chooser = FixedChooser(choices)
        populate_network(self, space, dataset, chooser)
        chooser.check_unused()
        self.choices = {k: choices[k] for k in chooser.decisions}

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports: backbone, then each body part's head."""
        return named_components(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pose_forward(self, x)


# --------------------------------------------------------------------------------------------
# entry points


def freeze(space: SpaceConfig, dataset: str, choices: Mapping[str, Any]) -> PoseNetwork:
    """The plain network of one architecture.

    Raises:
        UserInputError: (field ``choices.<label>``) a label is missing, unknown or has a value outside its candidates.
    """
    return PoseNetwork(space, dataset, choices)


def check_architecture(space: SpaceConfig, dataset: str, choices: Mapping[str, Any]) -> None:
    """Check that ``choices`` fit the space (the network is built on the meta device: no memory).

    Raises:
        UserInputError: (field ``choices.<label>``) a label is missing, unknown or has a value outside its candidates.
        ValueError: the space itself cannot be built (e.g. a head that does not fit the cell).
    """
    with torch.device("meta"):
        PoseNetwork(space, dataset, choices)


