"""PoseNFS checkpoints (yangsenius/PoseNFS) read into a posenas PNFS network.

PoseNFS's ``Body_Part_Representation`` holds, under these keys:

- ``backbone.*``: HRNet stem~stage3 and ``transition3`` under the official names (our
  ``next_transition``: the branch that opens the 1/32 level of the pyramid); or ResNet's
  ``resnet_feature.py`` (torchvision's names, ours); or MobileNet-V2's
  ``mobilenet_v2_feature.py`` (tonylins' ``features.{i}.conv.{j}``, renamed; ``features.17``,
  which it builds and never runs, skipped);
- per part, named as PoseNFS names it (``left_arm_part``, ``head_shoulder_part``, ...):
  - ``cell_{j}_{i}`` (layer j, scale i): ``propress_list.{k}`` — the route of slot k (0 same
    scale, 1 from the higher resolution, 2 from the lower): a 3×3 stride-2 conv **with a bias**
    + BN (``operation.0``/``operation.1``), or a 1×1 conv with a bias + BN (``conv_1x1``/``bn``)
    before bilinear upsampling, or nothing (identity); ``cell_arch.{e}.ops.{o}`` — candidate o
    of edge e (``operation.*`` for the convolutions, ``1.*`` for the BN after a pooling);
    ``channel_keep`` — the 1×1 conv after the hidden nodes (our ``merge``);
  - ``alphas`` (edges × operations, one per part) and ``betas`` (cells × 3, in forward order);
  - ``final_layer.1`` — the vector (or heatmap) head's 1×1 conv;
  - ``stem`` — a stem every part builds and never runs (skipped);
- ``reduce.{p}.{level}``: the 1×1 convs between the backbone and part p (our ``adapters``).

The result is the fixed-mixture network of the same space (``search_alpha``/``search_beta``
off): each edge sums its operations with PoseNFS's weights ``n · softmax(α)`` and each cell mixes
its slots by ``softmax(β)``, so it computes what PoseNFS's supernet computes. A bias before a BN
is folded into the BN's running mean (exact in eval mode, and a no-op in training, where the
batch mean absorbs it). PoseNFS orders the parts differently and numbers MPII's joints its own
way ("similar to coco"); parts and joints are matched by name. The argmax of α/β is also
returned as an architecture of the searchable space, for ``strategies.prune``.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Mapping

import torch
from torch import nn
import torch.nn.functional as F

from search_space.config import SpaceConfig
from search_space.fabric import SLOT_NAMES, Fabric
from search_space.joints import keypoint_spec
from search_space.operations import ZERO
from search_space.pose_space import freeze
from search_space.backbones import get_backbone
from trainers.weights.hrnet_keys import hrnet_backbone_key
from trainers.weights.torchvision_keys import resnet_backbone_key, tonylins_mobilenet_key

__all__ = ["PNFS_PART_ORDER", "is_pnfs", "convert_pnfs", "PNFSResult"]

State = Mapping[str, torch.Tensor]

#: PoseNFS's parts per part count, in its order (``body_parts.py``), with our names
PNFS_PART_ORDER: dict[int, list[tuple[str, str]]] = {
    1: [("whole_body", "whole_body")],
    3: [("upper_limb_part", "upper_limbs"), ("head_part", "head"),
        ("lower_limb_part", "lower_limbs")],
    5: [("left_arm_part", "left_arm"), ("right_arm_part", "right_arm"), ("legs_part", "legs"),
        ("head_shoulder_part", "head_shoulders"), ("hips_part", "hips")],
    8: [("left_upper_arm_part", "left_upper_arm"), ("right_upper_arm_part", "right_upper_arm"),
        ("left_lower_arm_part", "left_lower_arm"), ("right_lower_arm_part", "right_lower_arm"),
        ("left_lower_leg_part", "left_lower_leg"), ("right_lower_leg_part", "right_lower_leg"),
        ("head_shoulder_part", "head_shoulders"), ("upper_legs_part", "upper_legs")],
}
#: PoseNFS's MPII joint order (its whole-body head's channels), in our joint names
_PNFS_MPII_ORDER = ("head_top", "upper_neck", "thorax", "l_shoulder", "r_shoulder", "l_elbow",
                    "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee",
                    "l_ankle", "r_ankle", "pelvis")

_CELL = re.compile(r"^(?P<part>[a-z_]+)\.cell_(?P<j>\d+)_(?P<i>\d+)\.(?P<rest>.*)$")
_REDUCE = re.compile(r"^reduce\.(?P<p>\d+)\.(?P<level>\d+)\.(?P<param>weight|bias)$")


def is_pnfs(keys: set[str]) -> bool:
    """A PoseNFS ``Body_Part_Representation``: a backbone and per-part fabric cells."""
    return any(k.startswith("backbone.") for k in keys) and any(
        _CELL.match(k) and ".channel_keep." in k for k in keys)


class PNFSResult:
    """What :func:`convert_pnfs` made: the tensors under our names, the source keys skipped,
    and the argmax architecture of the searchable space with its α/β softmax."""

    def __init__(self, state: dict[str, torch.Tensor], skipped: list[str],
                 choices: dict[str, Any], weights: dict[str, Any], space: SpaceConfig) -> None:
        self.state = state
        self.skipped = skipped
        self.choices = choices
        self.weights = weights
        self.search_space = space


def _parts_num(keys: set[str]) -> int:
    names = {m["part"] for k in keys if (m := _CELL.match(k))}
    for n, order in PNFS_PART_ORDER.items():
        if names == {p for p, _ in order}:
            return n
    raise ValueError(f"PoseNFS checkpoint with parts {sorted(names)}: not one of PoseNFS's 1, 3, "
                     "5 or 8-part groupings")


def _fixed_space(space: SpaceConfig) -> SpaceConfig:
    cell = replace(space.cell_config, search_alpha=False, search_beta=False)
    backbone = replace(space.backbone, width_multipliers=())
    return replace(space, cell_config=cell, backbone=backbone)


def _route_keys(kind: str, rest: str) -> tuple[str, str] | None:
    """(our key under ``routes.<kind>``, role) for a PoseNFS route tensor; role ``bias`` marks
    the conv bias to fold into the BN."""
    if kind == "down":
        m = re.match(r"^operation\.(0|1)\.(.*)$", rest)
        if m:
            return (f"down.{m[1]}.{m[2]}", "bias" if m[1] == "0" and m[2] == "bias" else "")
    elif kind == "up":
        m = re.match(r"^(conv_1x1|bn)\.(.*)$", rest)
        if m:
            index = "0" if m[1] == "conv_1x1" else "1"
            return (f"up.{index}.{m[2]}", "bias" if index == "0" and m[2] == "bias" else "")
    return None


def _op_key(name: str, rest: str) -> str | None:
    """Our key inside operation ``name`` for PoseNFS's ``ops.{o}.<rest>``."""
    m = re.match(r"^operation\.(\d+)\.(.*)$", rest)
    if m and name.startswith(("Sep_Conv", "Atr_Conv")):
        return f"{m[1]}.{m[2]}"
    m = re.match(r"^1\.(.*)$", rest)
    if m and name.endswith("pool_3x3"):
        return f"1.{m[1]}"
    return None


def convert_pnfs(state: State, target: tuple[SpaceConfig, str]) -> PNFSResult:
    """Map a PoseNFS state dict onto the fixed-mixture posenas network of ``target``
    ((space, dataset); the space's own search switches and width choices are ignored: its
    geometry and operator names are what count).

    Raises:
        ValueError: a checkpoint that does not fit the target, naming the first misfit.
    """
    space, dataset = target
    if space.head != "fabric":
        raise ValueError("a PoseNFS checkpoint holds fabric heads: read it as a PNFS model "
                         "(e.g. --model pnfs_hrnet_w32_cnf5, or a config with a fabric space)")
    parts_num = _parts_num(set(state))
    if parts_num != space.parts_num:
        raise ValueError(f"the checkpoint has {parts_num} parts, the model {space.parts_num} "
                         "(space.parts_num)")
    fixed = _fixed_space(space)
    with torch.device("meta"):
        network = freeze(fixed, dataset, {})
    mapping = _KeyMapping(network, dataset, parts_num, space.backbone.stages,
                          tuple(fixed.cell_config.operators),
                          get_backbone(space.backbone.name).family)
    for key, value in state.items():
        mapping.map(key, value)
    out = mapping.finish()
    choices, weights = _mixture(state, network, mapping.order, mapping.pnfs_parts, mapping.ours,
                                mapping.operators, out)
    search = replace(space, backbone=fixed.backbone,
                     cell_config=replace(fixed.cell_config, search_alpha=True, search_beta=True))
    return PNFSResult(out, mapping.skipped, choices, weights, search)


class _KeyMapping:
    """PoseNFS keys → the keys of our fixed-mixture ``network``, one key at a time."""

    def __init__(self, network: nn.Module, dataset: str, parts_num: int, stages: int | None,
                 operators: tuple[str, ...], family: str = "hrnet") -> None:
        self.network, self.dataset, self.stages, self.operators = network, dataset, stages, operators
        self.family = family
        self.ours = {p.name: q for q, p in enumerate(network.parts)}
        self.pnfs_parts = dict(PNFS_PART_ORDER[parts_num])
        self.order = [p for p, _ in PNFS_PART_ORDER[parts_num]]
        self.own = set(network.state_dict())
        self.out: dict[str, torch.Tensor] = {}
        self.skipped: list[str] = []
        self.folds: dict[str, torch.Tensor] = {}  # our BN running_mean key -> bias to fold

    def put(self, key: str, value: torch.Tensor, source: str) -> None:
        if key in self.out and not torch.equal(self.out[key], value):
            raise ValueError(f"{source}: PoseNFS keeps separate weights for two slots of a cell "
                             f"that posenas computes once ({key}); this fabric cannot be read")
        self.out[key] = value

    def map(self, key: str, value: torch.Tensor) -> None:
        if key.startswith("backbone."):
            new = _backbone_key(key[len("backbone."):], self.stages, self.family)
            if new is not None and new not in self.own and (
                    self.family != "hrnet" or new.startswith("backbone.next_transition.")):
                new = None  # the fabrics read fewer levels than PoseNFS's backbone opens
            if new is None:
                self.skipped.append(key)
            else:
                self.out[new] = value
            return
        m = _REDUCE.match(key)
        if m:
            p = int(m["p"])
            if p >= len(self.order):
                raise ValueError(f"{key}: part {p} of {len(self.order)}")
            q = self.ours[self.pnfs_parts[self.order[p]]]
            fabric: Fabric = self.network.heads[q].fabric
            if f"s{m['level']}" in fabric.adapters:
                self.out[f"heads.{q}.fabric.adapters.s{m['level']}.{m['param']}"] = value
            else:
                self.skipped.append(key)  # a level this fabric does not read
            return
        m = _CELL.match(key)
        if m:
            q = self.ours[self.pnfs_parts[m["part"]]]
            _cell_tensor(self.network, q, int(m["j"]), int(m["i"]), m["rest"], value, key,
                         self.operators, self.put, self.folds)
            return
        part, _, rest = key.partition(".")
        if part not in self.pnfs_parts:
            self.skipped.append(key)
        elif rest.startswith("final_layer.1."):
            q = self.ours[self.pnfs_parts[part]]
            self.out[f"heads.{q}.head.conv.{rest[len('final_layer.1.'):]}"] = _head_rows(
                value, part, self.dataset, self.network.parts[q].joints)
        elif rest not in ("alphas", "betas"):  # those: _mixture
            self.skipped.append(key)  # the unused per-part stem

    def finish(self) -> dict[str, torch.Tensor]:
        """The mapped state, route biases folded into their BatchNorm's running mean."""
        for bn_mean, bias in self.folds.items():
            if bn_mean not in self.out:
                raise ValueError(f"a route bias without its BatchNorm ({bn_mean})")
            self.out[bn_mean] = self.out[bn_mean] - bias
        return self.out


def _backbone_key(key: str, stages: int | None, family: str = "hrnet") -> str | None:
    if family == "resnet":
        return resnet_backbone_key(key)
    if family == "mobilenet_v2":
        return tonylins_mobilenet_key(key)
    new = hrnet_backbone_key(key)
    if new is None:
        return None
    m = re.match(r"^backbone\.stages\.(\d+)\.(.*)$", new)
    if m and stages and int(m[1]) >= stages:
        if int(m[1]) == stages and m[2].startswith("transition."):
            return "backbone.next_transition." + m[2][len("transition."):]
        return None  # a deeper stage than the cut
    return new


def _cell_tensor(network, q: int, j: int, i: int, rest: str, value: torch.Tensor, source: str,
                 operators: tuple[str, ...], put, folds: dict[str, torch.Tensor]) -> None:
    fabric: Fabric = network.heads[q].fabric
    name = f"l{j}s{i}"
    if name not in fabric.cells:
        raise ValueError(f"{source}: no cell at layer {j}, scale {i} in the model's fabric "
                         f"(its cells: {', '.join(fabric.cells)})")
    cell = fabric.cells[name]
    prefix = f"heads.{q}.fabric.cells.{name}."
    m = re.match(r"^propress_list\.(\d)\.(.*)$", rest)
    if m:
        kind = cell.slots[int(m[1])][0]
        mapped = _route_keys(kind, m[2])
        if mapped is None:
            raise ValueError(f"{source}: slot {SLOT_NAMES[int(m[1])]} of cell {name} is a "
                             f"'{kind}' route in posenas; the checkpoint has another layer there")
        key, role = mapped
        if role == "bias":
            bn = prefix + "routes." + key.split(".")[0] + ".1.running_mean"
            if bn in folds and not torch.equal(folds[bn], value):
                raise ValueError(f"{source}: two slots of cell {name} with separate route "
                                 "convolutions; posenas computes one")
            folds[bn] = value
        else:
            put(prefix + "routes." + key, value, source)
        return
    m = re.match(r"^cell_arch\.(\d+)\.ops\.(\d+)\.(.*)$", rest)
    if m:
        o = int(m[2])
        if o >= len(operators):
            raise ValueError(f"{source}: operation {o}, the model has {len(operators)} "
                             f"({', '.join(operators)})")
        op = operators[o]
        inner = _op_key(op, m[3])
        if inner is None or op == ZERO:
            raise ValueError(f"{source}: candidate {o} is {op} in the model (space.cell_config."
                             "operators, in PoseNFS's order); the checkpoint's tensor does not fit")
        put(f"{prefix}edges.e{m[1]}.{op}.{inner}", value, source)
        return
    m = re.match(r"^channel_keep\.(weight|bias)$", rest)
    if m:
        put(f"{prefix}merge.{m[1]}", value, source)
        return
    raise ValueError(f"{source}: unknown tensor of a PoseNFS cell")


def _head_rows(value: torch.Tensor, part: str, dataset: str, joints: tuple[int, ...]) -> torch.Tensor:
    """The head conv's output rows in our joint order (PoseNFS's whole-body MPII head follows
    its own joint numbering; every other part lists its joints in our order)."""
    if part != "whole_body" or dataset != "mpii":
        return value
    names = keypoint_spec("mpii").names
    pnfs_index = {n: k for k, n in enumerate(_PNFS_MPII_ORDER)}
    rows = value.shape[0]
    if rows % len(names):
        raise ValueError(f"whole_body.final_layer.1: {rows} rows for {len(names)} joints")
    d = rows // len(names)
    index = [pnfs_index[names[t]] * d + k for t in joints for k in range(d)]
    return value[index]


def _mixture(state: State, network, order: list[str], pnfs_parts: dict[str, str],
             ours: dict[str, int], operators: tuple[str, ...], out: dict[str, torch.Tensor]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write each edge's ``n · softmax(α)`` and each cell's ``softmax(β)`` into ``out``; return
    the argmax choices and the softmax tables under the searchable space's labels."""
    choices: dict[str, Any] = {}
    weights: dict[str, Any] = {"alpha": {}, "beta": {}}
    n = len(operators)
    for part in sorted(order, key=lambda name: ours[pnfs_parts[name]]):  # in our part order
        q = ours[pnfs_parts[part]]
        fabric: Fabric = network.heads[q].fabric
        alphas, betas = state.get(f"{part}.alphas"), state.get(f"{part}.betas")
        cells = fabric.geometry.cells()
        if alphas is None or betas is None:
            raise ValueError(f"{part}.alphas / {part}.betas: missing")
        edges = len(fabric.cells[f"l{cells[0][0]}s{cells[0][1]}"].edge_pairs)
        if tuple(alphas.shape) != (edges, n):
            raise ValueError(f"{part}.alphas: shape {tuple(alphas.shape)}, the model's fabric "
                             f"has {edges} edges × {n} operations")
        if tuple(betas.shape) != (len(cells), len(SLOT_NAMES)):
            raise ValueError(f"{part}.betas: shape {tuple(betas.shape)}, the model's fabric has "
                             f"{len(cells)} cells × {len(SLOT_NAMES)} inputs")
        alpha = F.softmax(alphas.double(), dim=-1)
        beta = F.softmax(betas.double(), dim=-1)
        shared = network.space_config.cell_config.one_shot_search
        for c, (j, i) in enumerate(cells):
            name = f"l{j}s{i}"
            out[f"heads.{q}.fabric.cells.{name}.input_weights"] = beta[c].float()
            label = f"part{q}/fabric/{name}/input"
            choices[label] = [int(beta[c].argmax())]
            weights["beta"][label] = [round(float(p), 6) for p in beta[c]]
            for e in range(edges):
                out[f"heads.{q}.fabric.cells.{name}.edges.e{e}.weights"] = (n * alpha[e]).float()
                if not shared or c == 0:
                    elabel = (f"part{q}/fabric/cell/edge{e}_op" if shared
                              else f"part{q}/fabric/{name}/cell/edge{e}_op")
                    choices[elabel] = operators[int(alpha[e].argmax())]
                    weights["alpha"][elabel] = {op: round(float(p), 6)
                                                for op, p in zip(operators, alpha[e])}
    return choices, weights
