"""The architecture of an ``arch.json`` / ``derived.json`` as a graph (networkx → graphviz).

    python -m visualize.arch A.json --out FILE.svg|png|dot

- the backbone: one node per stage and branch with its (pruned or searched) width, the stem
  and the pyramid the heads read;
- per body part (a box titled with the part's joints): its fabric as a layers × scales grid.
  For a derived architecture, the kept cells with their operations and the chosen routes
  (cells without a path to the output are not drawn). For a one-shot ``arch.json`` with α/β,
  every cell and all three input slots, each edge drawn with thickness and colour by its β, and
  each cell listing its operations by α — the undecided parts stay visible. A part whose head
  type (``part{p}/head``) is plain is drawn as its 1×1 conv on the 1/4 level;
- the part's heatmap output.

The graph is built in networkx (nodes carry their box, ``cluster``, and their layer, ``rank``)
and written as DOT for graphviz's ``dot``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import networkx as nx

from search_space.fabric import SLOT_NAMES, FabricGeometry, pyramid_levels_read, slot_routes
from search_space.pose_space import part_fabric
from trainers.network.arch_file import ArchFile, load_arch
from trainers.atomic import atomic_path
from trainers.network.build import build_network, spec_from_arch
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors, output_file

__all__ = ["arch_graph", "to_dot", "render"]

_SCALE = ("1/4", "1/8", "1/16", "1/32")
_ROUTE_STYLE = {"same": "solid", "down": "dashed", "up": "dotted"}


def _beta_color(p: float) -> str:
    """Grey (undecided) to dark blue (certain)."""
    t = max(0.0, min(1.0, p))
    r = int(200 - 180 * t)
    g = int(200 - 150 * t)
    b = int(200 + 30 * t)
    return f"#{r:02x}{g:02x}{min(b, 255):02x}"


def _ops_label(arch: ArchFile, labels: list[str]) -> str:
    alpha = arch.weights.get("alpha", {})
    lines = []
    for label in labels:
        edge = label.rsplit("/", 1)[-1].replace("_op", "")
        if label in alpha:
            top = sorted(alpha[label].items(), key=lambda kv: -kv[1])[:2]
            lines.append(f"{edge}: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
        else:
            lines.append(f"{edge}: {arch.choices.get(label, 'mix')}")
    return "\\n".join(lines)


def _backbone_nodes(g: nx.DiGraph, arch: ArchFile, network: Any) -> list[str]:
    """Stage × branch nodes; returns the pyramid node names (level order)."""
    backbone = network.backbone
    hrnet = hasattr(backbone, "stages") and hasattr(backbone.stages[0], "modules_")
    g.add_node("stem", label="stem\\n(2× stride-2 conv)" if hrnet else "stem", cluster="backbone",
               shape="box")
    prev = ["stem"]
    if not hrnet:
        widths = list(getattr(backbone, "out_channels", []))
        nodes = []
        for b, w in enumerate(widths):
            name = f"backbone_out{b}"
            g.add_node(name, label=f"{type(backbone).__name__}\\n{_SCALE[b]}: {w} ch",
                       cluster="backbone", shape="box")
            g.add_edge("stem", name)
            nodes.append(name)
        return nodes
    for s, stage in enumerate(backbone.stages, start=1):
        module = stage.modules_[0]
        cur = []
        for b, branch in enumerate(module.branches):
            last = branch[-1]
            width = (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features
            label = arch.choices.get(f"stage{s}/branch{b}/width")
            searched = " (searched)" if label is not None else ""
            name = f"stage{s}_b{b}"
            g.add_node(name, label=f"stage {s}, {_SCALE[b] if s > 1 else '1/4'}\\n{width} ch{searched}"
                       f"\\n{len(stage.modules_)} module(s)", cluster="backbone", shape="box",
                       rank=f"backbone_s{s}")
            g.add_edge(prev[min(b, len(prev) - 1)], name)
            cur.append(name)
        prev = cur
    if getattr(backbone, "next_transition", None) is not None:
        widths = backbone.out_channels
        b = len(widths) - 1
        name = f"transition_b{b}"
        g.add_node(name, label=f"transition\\n{_SCALE[b]}: {widths[b]} ch", cluster="backbone",
                   shape="box")
        g.add_edge(prev[-1], name)
        prev = prev + [name]
    return prev


def arch_graph(arch: ArchFile) -> nx.DiGraph:
    """The graph of ``arch`` (see the module docstring)."""
    cfg = arch.config
    network = build_network(spec_from_arch(arch), device="meta")
    g = nx.DiGraph(name=Path(arch.path).name)
    pyramid = _backbone_nodes(g, arch, network)
    if network.plain_head_name is not None:
        g.add_node("out", label=f"heatmaps\\n{network.num_joints} joints", shape="ellipse")
        g.add_edge(pyramid[0], "out")
        return g
    cell_cfg = cfg.space.cell_config
    one_shot = bool(arch.weights.get("beta")) or bool(arch.weights.get("alpha"))
    geo = FabricGeometry(cell_cfg.depth, cell_cfg.cut_layers_num, len(cell_cfg.size_types),
                         min(len(pyramid), pyramid_levels_read(cell_cfg)))
    for p, (part, head) in enumerate(zip(network.parts, network.heads)):
        fabric = part_fabric(head)
        if fabric is None:
            _add_plain_part(g, arch, p, part, pyramid)
        else:
            _add_part(g, arch, p, part, fabric, pyramid, geo, one_shot)
    return g


def _add_plain_part(g: nx.DiGraph, arch: ArchFile, p: int, part: Any,
                    pyramid: list[str]) -> None:
    """Part ``p`` with a plain head (``part{p}/head: plain``): a 1×1 conv on the 1/4 level."""
    cluster = f"part{p}"
    title = f"part {p}: {part.name}\n" + ", ".join(part.joint_names)
    prob = arch.weights.get("alpha", {}).get(f"part{p}/head", {}).get("plain")
    head = f"p{p}_plain"
    g.add_node(head, label="plain head\n1×1 conv" + (f"  α {prob:.2f}" if prob is not None
                                                         else ""),
               cluster=cluster, cluster_label=title, shape="box", style="filled",
               fillcolor="#fff4e6")
    g.add_edge(pyramid[0], head, penwidth="1.6")
    out = f"p{p}_out"
    g.add_node(out, label=f"{part.name} heatmaps\n" + ", ".join(part.joint_names),
               cluster=cluster, cluster_label=title, shape="ellipse")
    g.add_edge(head, out, penwidth="1.6")


def _add_part(g: nx.DiGraph, arch: ArchFile, p: int, part: Any, fabric: Any,
              pyramid: list[str], geo: FabricGeometry, one_shot: bool) -> None:
    """Part ``p``'s cluster: its pyramid inputs, the fabric's cells with their operations and
    routes (β as edge width in a search result), and its heatmap output."""
    cell_cfg = arch.config.space.cell_config
    beta = arch.weights.get("beta", {})
    widths = [cell_cfg.factor * s for s in cell_cfg.size_types]
    cluster = f"part{p}"
    title = f"part {p}: {part.name}\\n" + ", ".join(part.joint_names)
    kept = set(fabric.cells)
    levels = range(geo.pyramid_levels) if one_shot else fabric.used_levels
    src_node = {}
    for i in levels:
        name = f"p{p}_in{i}"
        adapter = f"s{i}" in fabric.adapters
        g.add_node(name, label=f"{_SCALE[i]} in" + ("\\n1×1 adapter" if adapter else ""),
                   cluster=cluster, cluster_label=title, shape="box", style="rounded",
                   rank=f"{cluster}_l{geo.cut - 1}")
        g.add_edge(pyramid[min(i, len(pyramid) - 1)], name, color="#999999")
        src_node[(geo.cut - 1, i)] = name
    for j, i in geo.cells():
        key = f"l{j}s{i}"
        if not one_shot and key not in kept:
            continue
        name = f"p{p}_{key}"
        shared = cell_cfg.one_shot_search
        op_labels = [lb for lb in arch.choices if lb.startswith(f"part{p}/fabric/") and
                     lb.endswith("_op") and (shared or f"/{key}/" in lb)]
        ops = _ops_label(arch, op_labels) if cell_cfg.search_alpha else "all ops (uniform)"
        constant = key in kept and fabric.cells[key].constant
        g.add_node(name, label=f"{key}  {_SCALE[i]}  {widths[i]} ch\\n{ops}"
                   + ("\\n(constant: all Zero)" if constant else ""),
                   cluster=cluster, cluster_label=title, shape="box",
                   style="filled", fillcolor="#eef4ff" if key in kept else "#f4f4f4",
                   rank=f"{cluster}_l{j}")
        src_node[(j, i)] = name
        slots = slot_routes(i, geo.cells_in_layer(j - 1))
        label = f"part{p}/fabric/{key}/input"
        if one_shot:
            probs = beta.get(label, [1 / 3] * 3)
            for slot, ((kind, src), prob) in enumerate(zip(slots, probs)):
                source = src_node.get((j - 1, src))
                if source is None:
                    continue
                g.add_edge(source, name, penwidth=f"{0.5 + 4 * prob:.2f}",
                           color=_beta_color(prob), style=_ROUTE_STYLE[kind],
                           label=f"{SLOT_NAMES[slot]} {prob:.2f}", fontsize="9")
        elif not constant:
            for kind, src in fabric.cells[key].route_list:
                source = src_node.get((j - 1, src))
                if source is not None:
                    g.add_edge(source, name, style=_ROUTE_STYLE[kind], label=kind,
                               fontsize="9", penwidth="1.6")
    out = f"p{p}_out"
    g.add_node(out, label=f"{part.name} heatmaps\\n" + ", ".join(part.joint_names),
               cluster=cluster, cluster_label=title, shape="ellipse",
               rank=f"{cluster}_out")
    g.add_edge(src_node[(geo.depth - 1, 0)], out, penwidth="1.6")


def _quote(value: Any) -> str:
    text = str(value)
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(g: nx.DiGraph) -> str:
    """DOT text of ``g``: nodes grouped into ``cluster`` boxes, same-``rank`` nodes aligned."""
    lines = [f"digraph {_quote(g.graph.get('name', 'arch'))} {{",
             '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.5];',
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", arrowsize=0.6];']
    clusters: dict[str, list[str]] = {}
    for node, data in g.nodes(data=True):
        clusters.setdefault(data.get("cluster", ""), []).append(node)

    def node_line(node: str) -> str:
        data = g.nodes[node]
        attrs = ", ".join(f"{k}={_quote(v)}" for k, v in data.items()
                          if k not in ("cluster", "cluster_label", "rank"))
        return f"  {_quote(node)} [{attrs}];"

    for cluster, nodes in clusters.items():
        if not cluster:
            lines += [node_line(n) for n in nodes]
            continue
        title = g.nodes[nodes[0]].get("cluster_label", cluster)
        lines.append(f"  subgraph {_quote('cluster_' + cluster)} {{")
        lines.append(f"    label={_quote(title)}; style=rounded; color=\"#8899aa\";")
        lines += ["  " + node_line(n) for n in nodes]
        ranks: dict[str, list[str]] = {}
        for n in nodes:
            if "rank" in g.nodes[n]:
                ranks.setdefault(g.nodes[n]["rank"], []).append(n)
        for members in ranks.values():
            if len(members) > 1:
                lines.append("    { rank=same; " + " ".join(_quote(m) for m in members) + " }")
        lines.append("  }")
    for u, v, data in g.edges(data=True):
        attrs = ", ".join(f"{k}={_quote(val)}" for k, val in data.items())
        lines.append(f"  {_quote(u)} -> {_quote(v)}" + (f" [{attrs}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(arch: ArchFile, out: str | Path, graph: nx.DiGraph | None = None) -> Path:
    """Write the graph of ``arch`` (``graph`` if already built) to ``out`` (.svg, .png or
    .dot), atomically."""
    import graphviz

    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png", "dot"):
        raise UserInputError(str(out), "the output must end in .svg, .png or .dot")
    dot = to_dot(graph if graph is not None else arch_graph(arch))
    if fmt == "dot":
        data = dot.encode()
    else:
        try:
            data = graphviz.Source(dot).pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise UserInputError(str(out), "graphviz's `dot` is not installed (apt-get install "
                                 "graphviz); write .dot instead") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(data)
    return out


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m visualize.arch", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="arch.json or derived.json")
    p.add_argument("--out", required=True, help="FILE.svg, FILE.png or FILE.dot")
    args = p.parse_args(argv)
    output_file(args.out, "--out", (".svg", ".png", ".dot"))
    arch = load_arch(args.arch)
    g = arch_graph(arch)
    path = render(arch, args.out, g)
    cells = sum(1 for n in g.nodes if re.match(r"p\d+_l\d+s\d+$", n))
    print(f"wrote {path}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges, "
          f"{cells} cells drawn ({arch.kind} architecture)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
