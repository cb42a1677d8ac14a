"""The PNFS cell-based neural fabric: a grid of searchable cells over layers × scales.

After Yang et al., "Pose Neural Fabrics Search" (arXiv 1909.07068). Layer ``j`` of a fabric of
``depth`` layers has ``min(j + 2, S, depth - j)`` cells, one per scale (S = len(size_types):
1/4 … 1/32); a cell at scale ``i`` has ``factor × size_types[i]`` channels. The first
``cut_layers_num`` layers are replaced by the backbone's pyramid (adapted by 1×1 convs when the
widths differ): it stands at layer ``cut - 1``; the last layer's single 1/4-scale cell is the
fabric's output.

A cell reads three *slots* from the previous layer — same scale (as is), higher resolution
(3×3 stride-2 conv + BN) and lower resolution (1×1 conv + BN + bilinear upsampling) — mixed as
``ReLU(3 · Σ softmax(β) · slot)``. Where a neighbour does not exist (the borders) the same-scale
input stands in, and for the newest (lowest-resolution) cell of a growing layer the
higher-resolution input stands in for the same-scale one. Stand-ins are *routes* already
computed: a cell resamples each distinct source once.

Inside a cell: one input node and ``hidden_states_num`` hidden nodes, each the sum of a mixed
operation over every earlier node; the hidden nodes are concatenated and a 1×1 conv brings them
back to the cell's width. With ``partial_channels`` K > 1 (PC-DARTS) a supernet edge's mixed
operation sees only the first C/K channels of its input (its candidates are built C/K wide),
the other channels bypass it, and the result is channel-shuffled (:func:`partial_channel_edge`).

One class serves the supernet (NNI ``InputChoice``/``LayerChoice``) and the frozen network (only
the chosen route and operations; cells with no path to the output are not built; a cell whose
operations are all ``Zero`` is the constant its 1×1 conv's bias makes). Frozen state-dict keys
are a subset of the supernet's, so weights can be inherited.

Shape legend: N batch, C_i channels of scale i, H_i×W_i its size (H_0×W_0 = input/4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import sys

import torch
import torch.nn.functional as F
from torch import nn

from search_space.choices import Chooser
from search_space.layers import BN_MOMENTUM, Width, conv2d, same_width
from search_space.operations import ZERO, make_operation
from search_space.config import CellConfig

__all__ = ["FabricGeometry", "Fabric", "Cell", "UniformOperations", "ChosenOperation",
           "slot_routes", "SLOT_NAMES", "pyramid_levels_read", "channel_shuffle",
           "partial_channel_edge"]

#: the three slots of a cell, in the order of its β
SLOT_NAMES = ("same", "from_higher", "from_lower")
_INPUT_SCALE = 3.0  # PNFS: ReLU(3 · Σ softmax(β) · slot)


@dataclass(frozen=True)
class FabricGeometry:
    """Which cells exist: layers ``cut .. depth-1``, the pyramid at layer ``cut - 1``."""

    depth: int
    cut: int
    num_scales: int
    pyramid_levels: int

    def cells_in_layer(self, j: int) -> int:
        if j == self.cut - 1:
            return self.pyramid_levels
        return min(j + 2, self.num_scales, self.depth - j)

    @property
    def layers(self) -> range:
        return range(self.cut, self.depth)

    def cells(self) -> list[tuple[int, int]]:
        """(layer, scale) of every searchable cell, in forward order."""
        return [(j, i) for j in self.layers for i in range(self.cells_in_layer(j))]


def pyramid_levels_read(cfg: CellConfig) -> int:
    """How many pyramid levels the first fabric layer can read (its cells' scales, plus one
    lower resolution for the last of them)."""
    num_scales = len(cfg.size_types)
    first = min(cfg.cut_layers_num + 2, num_scales, cfg.depth - cfg.cut_layers_num)
    return min(num_scales, first + 1)


def slot_routes(scale: int, prev_cells: int) -> tuple[tuple[str, int], ...]:
    """The route behind each slot of a cell at ``scale`` reading a layer of ``prev_cells`` cells.

    A route is ``(kind, source_scale)`` with kind ``"same"`` (identity), ``"down"`` (from the
    higher resolution) or ``"up"`` (from the lower resolution). Missing neighbours are stood in
    for, as the module docstring says.
    """
    same = ("same", scale) if scale < prev_cells else None
    down = ("down", scale - 1) if 1 <= scale <= prev_cells else None
    up = ("up", scale + 1) if scale + 1 < prev_cells else None
    first = same or down
    assert first is not None, (scale, prev_cells)
    return (first, down or first, up or first)


class UniformOperations(nn.ModuleDict):
    """Every operation, summed with fixed weights (PNFS with ``search_alpha: false``).

    PNFS mixes an edge as ``n · Σ softmax(α)_o · op_o(x)``; with α fixed at 0 (the "None"
    baseline) every weight is ``n · 1/n = 1``, the default here. The ``weights`` buffer (one per
    candidate, ``Zero`` included) is part of the state dict, so a network converted from a PNFS
    checkpoint carries its learned ``n · softmax(α)``. ``Zero`` is never run.
    """

    def __init__(self, names: Sequence[str], channels: int) -> None:
        super().__init__({name: make_operation(name, channels) for name in names if name != ZERO})
        self.names = tuple(names)
        self.register_buffer("weights", torch.ones(len(names)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for o, name in enumerate(self.names):
            if name == ZERO:
                continue
            y = self[name](x) * self.weights[o].to(x.dtype)
            out = y if out is None else out + y
        return out if out is not None else torch.zeros_like(x)


class ChosenOperation(nn.ModuleDict):
    """The one operation an architecture chose for an edge (kept under its name, like the
    supernet's ``LayerChoice`` candidate it came from)."""

    def __init__(self, name: str, channels: int) -> None:
        super().__init__({name: make_operation(name, channels)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return next(iter(self.values()))(x)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (N, C, H, W) → (N, C, H, W) with channel ``g·(C/groups)+i``
    moved to ``i·groups+g`` (Zhang et al. 2018, arXiv:1707.01083)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def partial_channel_edge(edge: nn.Module, x: torch.Tensor, k: int) -> torch.Tensor:
    """PC-DARTS's partial channel connection (Xu et al. 2020, arXiv:1907.05737, eq. 2): the
    mixed operation ``edge`` on the first C/K channels of ``x`` (N, C, H, W), the others passed
    through, then :func:`channel_shuffle` with K groups. (N, C, H, W) → (N, C, H, W)."""
    c = x.shape[1] // k
    return channel_shuffle(torch.cat([edge(x[:, :c]), x[:, c:]], dim=1), k)


class ConstantMap(nn.Module):
    """A cell whose operations are all ``Zero``: its 1×1 conv's bias at every pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, like: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        zeros = like.new_zeros(like.shape[0], 1, *size)
        return zeros + self.bias.view(1, -1, 1, 1).to(like.dtype)


class Merge(nn.Conv2d):
    """The 1×1 conv over the concatenated hidden nodes; ``nodes`` lists the hidden nodes kept
    (their input columns are taken from the supernet's conv when weights are inherited)."""

    def __init__(self, channels: int, nodes: Sequence[int]) -> None:
        super().__init__(channels * len(nodes), channels, 1, bias=True)
        self.nodes = tuple(nodes)
        self.channels = channels

    def inherit(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """This conv's ``name`` tensor taken from the supernet's ``tensor``."""
        if name != "weight":
            return tensor
        cols = [c for n in self.nodes for c in range(n * self.channels, (n + 1) * self.channels)]
        return tensor[:, cols]


def _is_nni(obj: Any, name: str) -> bool:
    """Whether ``obj`` is NNI's ``LayerChoice`` / ``InputChoice`` (only a supernet, built by
    :mod:`search_space.supernet`, has them: a frozen network never imports NNI)."""
    nas = sys.modules.get("nni.nas.nn.pytorch")
    return nas is not None and isinstance(obj, getattr(nas, name))


@dataclass
class CellDecisions:
    """What an architecture (or the search space) says about one cell."""

    beta: Any  # InputChoice (search), slot index (fixed) or None (uniform mix)
    edges: list[Any]  # per edge: LayerChoice (search), op name (fixed) or None (uniform mix)


def _edge_pairs(hidden: int, inputs: int = 1) -> list[tuple[int, int]]:
    """(source node, hidden node) of every edge, in label order (nodes: inputs, then hidden)."""
    return [(k, inputs + h) for h in range(hidden) for k in range(inputs + h)]


def live_hidden_nodes(edges: Sequence[Any], hidden: int) -> list[int]:
    """Hidden nodes (0-based) that carry a value: reached from the input by non-Zero edges."""
    live = {0}
    for e, (src, dst) in enumerate(_edge_pairs(hidden)):
        if src in live and edges[e] != ZERO:
            live.add(dst)
    return sorted(n - 1 for n in live if n >= 1)


class Cell(nn.Module):
    """One cell at ``scale``: routes, input mix, mixed operations, 1×1 merge.

    Args:
        scale: index into the fabric's scales.
        widths: channels of every scale (C_i).
        slots: :func:`slot_routes` of this cell.
        decisions: β and the operation of every edge (see :class:`CellDecisions`).
        operators: candidate operation names.
        hidden: hidden nodes per cell.
        partial: PC-DARTS's K for the supernet's ``LayerChoice`` edges (built C/K wide).
    """

    def __init__(self, scale: int, widths: Sequence[int], slots: Sequence[tuple[str, int]],
                 decisions: CellDecisions, operators: Sequence[str], hidden: int,
                 partial: int = 1) -> None:
        super().__init__()
        self.partial = partial
        #: keys of the supernet's mixed (``LayerChoice``) edges: kept because NNI replaces those
        #: modules once it mutates the model
        self.mixed_edges: set[str] = set()
        #: DARTS-'s auxiliary skip β on the supernet's mixed edges (strategies.aux_skip); 0: none
        self.aux_skip = 0.0
        #: PoseNFS's edge mixing on the supernet's mixed edges (strategies.edge_mixing): each
        #: multiplies its Σ softmax(α)·o(x) by its number of candidates; False: DARTS's mean
        self.scale_mixed = False
        self.mixed_counts: dict[str, int] = {}  #: candidates of each mixed edge
        c = widths[scale]
        self.scale = scale
        self.slots = tuple(slots)
        self.hidden = hidden
        self.searching = _is_nni(decisions.beta, "InputChoice") or any(
            _is_nni(e, "LayerChoice") for e in decisions.edges)
        self.input_choice = decisions.beta if _is_nni(decisions.beta, "InputChoice") else None
        self.chosen_slot = decisions.beta if isinstance(decisions.beta, int) else None
        if decisions.beta is None:  # fixed mix: softmax(β) of PNFS, 1/3 each with β fixed at 0
            self.register_buffer("input_weights", torch.full((len(SLOT_NAMES),), 1.0 / len(SLOT_NAMES)))

        if self.searching:
            live = list(range(hidden))
        else:
            live = live_hidden_nodes(decisions.edges, hidden)
        self.constant = not live
        # routes this cell computes: all distinct ones unless one slot was chosen
        if self.constant:
            kinds: list[tuple[str, int]] = []
        elif self.chosen_slot is not None:
            kinds = [self.slots[self.chosen_slot]]
        else:
            kinds = list(dict.fromkeys(self.slots))
        self.route_list = tuple(kinds)
        self.routes = nn.ModuleDict()
        for kind, src in kinds:
            if kind == "down":
                self.routes["down"] = nn.Sequential(
                    nn.Conv2d(widths[src], c, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c, momentum=BN_MOMENTUM))
            elif kind == "up":
                self.routes["up"] = nn.Sequential(nn.Conv2d(widths[src], c, 1, bias=False),
                                                  nn.BatchNorm2d(c, momentum=BN_MOMENTUM))

        self.edges = nn.ModuleDict()
        self.edge_pairs = _edge_pairs(hidden)
        live_nodes = {0} | {n + 1 for n in live}
        for e, (src, dst) in enumerate(self.edge_pairs):
            edge = decisions.edges[e]
            if _is_nni(edge, "LayerChoice"):
                self.edges[f"e{e}"] = edge
                self.mixed_edges.add(f"e{e}")
                self.mixed_counts[f"e{e}"] = len(edge)
            elif edge is None:
                self.edges[f"e{e}"] = UniformOperations(operators, c)
            elif edge != ZERO and src in live_nodes and dst in live_nodes:
                self.edges[f"e{e}"] = ChosenOperation(edge, c)
        self.merge: nn.Module = ConstantMap(c) if self.constant else Merge(c, live)
        self.live = tuple(live)

    @property
    def partial_edges(self) -> set[str]:
        """Keys of the edges that see C/K channels (PC-DARTS's K > 1): the mixed ones."""
        return self.mixed_edges if self.partial > 1 else set()

    @property
    def sources(self) -> list[int]:
        """Scales of the previous layer this cell reads."""
        return sorted({src for _, src in self.route_list})

    def _route(self, kind: str, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if kind == "same":
            return x
        if kind == "down":
            return self.routes["down"](x)
        y = self.routes["up"](x)
        return F.interpolate(y, size=tuple(size), mode="bilinear", align_corners=True)

    def forward(self, prev: Sequence[torch.Tensor | None], size: Sequence[int],
                like: torch.Tensor) -> torch.Tensor:
        if self.constant:
            return self.merge(like, size)
        routed = {route: self._route(route[0], prev[route[1]], size) for route in self.route_list}
        if self.input_choice is not None:
            x = self.input_choice([routed[s] for s in self.slots])
        elif self.chosen_slot is not None:
            x = routed[self.slots[self.chosen_slot]]
        else:  # fixed β: Σ softmax(β)_k · slot_k
            w = self.input_weights.to(like.dtype)
            x = sum(w[k] * routed[s] for k, s in enumerate(self.slots))
        nodes: list[torch.Tensor | None] = [F.relu(_INPUT_SCALE * x)]
        for _ in range(self.hidden):
            nodes.append(None)
        for e, (src, dst) in enumerate(self.edge_pairs):
            key = f"e{e}"
            if key not in self.edges or nodes[src] is None:
                continue
            if key in self.partial_edges:
                y = partial_channel_edge(self.edges[key], nodes[src], self.partial)
            else:
                y = self.edges[key](nodes[src])
            if self.scale_mixed and key in self.mixed_edges:  # PoseNFS: n · Σ softmax(α)·o(x)
                y = self.mixed_counts[key] * y
            if self.aux_skip and key in self.mixed_edges:  # DARTS- eq. 2: β·x + Σ softmax(α)·o(x)
                y = y + self.aux_skip * nodes[src]
            nodes[dst] = y if nodes[dst] is None else nodes[dst] + y
        hidden = [nodes[1 + n] for n in self.live]
        return self.merge(hidden[0] if len(hidden) == 1 else torch.cat(hidden, dim=1))


def scale_sizes(first: Sequence[int], count: int) -> list[tuple[int, int]]:
    """Sizes of ``count`` scales from the 1/4 size: each stride-2 step gives ceil(size / 2)."""
    sizes = [(int(first[0]), int(first[1]))]
    while len(sizes) < count:
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


class Fabric(nn.Module):
    """One part's fabric: adapters from the backbone pyramid, then layers ``cut .. depth-1``.

    (pyramid: list of (N, W_b, H_b, W_b)) → (N, C_0, H_0, W_0), the last layer's cell.

    Args:
        cfg: the cell config.
        pyramid_widths: backbone widths per level (ints or width choices).
        chooser: where decisions come from.
        prefix: label prefix of this fabric, e.g. ``part2/fabric``.
    """

    def __init__(self, cfg: CellConfig, pyramid_widths: Sequence[Width], chooser: Chooser,
                 prefix: str) -> None:
        super().__init__()
        num_scales = len(cfg.size_types)
        self.widths = [cfg.factor * s for s in cfg.size_types]
        self.geometry = FabricGeometry(cfg.depth, cfg.cut_layers_num, num_scales,
                                       min(len(pyramid_widths), pyramid_levels_read(cfg)))
        geo = self.geometry
        decisions: dict[tuple[int, int], CellDecisions] = {}
        edges = _edge_pairs(cfg.hidden_states_num)
        partial = cfg.partial_channels if chooser.searching and cfg.search_alpha else 1
        for j, i in geo.cells():
            beta = (chooser.input(f"{prefix}/l{j}s{i}/input", len(SLOT_NAMES))
                    if cfg.search_beta else None)
            ops = []
            for e in range(len(edges)):
                if not cfg.search_alpha:
                    ops.append(None)
                    continue
                label = (f"{prefix}/cell/edge{e}_op" if cfg.one_shot_search
                         else f"{prefix}/l{j}s{i}/cell/edge{e}_op")
                ops.append(chooser.operation(
                    label, cfg.operators,
                    lambda name, c=self.widths[i] // partial: make_operation(name, c)))
            decisions[(j, i)] = CellDecisions(beta, ops)

        needed = self._needed_cells(decisions, cfg) if not chooser.searching else None
        self.cells = nn.ModuleDict()
        for j, i in geo.cells():
            if needed is not None and (j, i) not in needed:
                continue
            slots = slot_routes(i, geo.cells_in_layer(j - 1))
            self.cells[f"l{j}s{i}"] = Cell(i, self.widths, slots, decisions[(j, i)],
                                           cfg.operators, cfg.hidden_states_num, partial)
        used_levels = (range(geo.pyramid_levels) if needed is None
                       else sorted(i for j, i in needed if j == geo.cut - 1))
        self.adapters = nn.ModuleDict()
        for i in used_levels:
            if not same_width(pyramid_widths[i], self.widths[i]):
                self.adapters[f"s{i}"] = conv2d(pyramid_widths[i], self.widths[i], 1, bias=True)
        self.used_levels = tuple(used_levels)

    def _needed_cells(self, decisions: dict[tuple[int, int], CellDecisions],
                      cfg: CellConfig) -> set[tuple[int, int]]:
        """Cells (and pyramid levels, at layer cut-1) with a path to the output cell."""
        geo = self.geometry
        needed = {(geo.depth - 1, 0)}
        for j in reversed(list(geo.layers)):
            for i in range(geo.cells_in_layer(j)):
                if (j, i) not in needed:
                    continue
                d = decisions[(j, i)]
                if not live_hidden_nodes(d.edges, cfg.hidden_states_num):
                    continue  # constant cell: reads nothing
                slots = slot_routes(i, geo.cells_in_layer(j - 1))
                routes = [slots[d.beta]] if d.beta is not None else list(slots)
                needed.update((j - 1, src) for _, src in routes)
        return needed

    def forward(self, pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
        geo = self.geometry
        sizes = scale_sizes(pyramid[0].shape[-2:], geo.num_scales)
        prev: list[torch.Tensor | None] = [None] * geo.num_scales
        for i in self.used_levels:
            key = f"s{i}"
            prev[i] = self.adapters[key](pyramid[i]) if key in self.adapters else pyramid[i]
        like = pyramid[0]
        for j in geo.layers:
            cur: list[torch.Tensor | None] = [None] * geo.num_scales
            for i in range(geo.cells_in_layer(j)):
                key = f"l{j}s{i}"
                if key in self.cells:
                    cur[i] = self.cells[key](prev, sizes[i], like)
            prev = cur
        out = prev[0]
        assert out is not None
        return out
