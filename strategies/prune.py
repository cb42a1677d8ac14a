"""The Prune step: from a search result (``arch.json``) to a frozen architecture (``derived.json``).

    python -m strategies.prune --arch DIR/arch.json --out DIR/derived.json
                               [--no-prune_operations] [--weights CKPT]

PNFS's ``Prune(Arch, prune_cells=True, prune_operations=True)`` plus channel pruning:

- operations (``--prune_operations``, default on): each edge takes its strongest non-``Zero``
  operation by α, and each hidden node keeps its ``top_k`` (2, as DARTS) strongest incoming
  edges — the others become ``Zero`` (removed). Off: the plain argmax, ``Zero`` included;
- parameter-free operations (``search.collapse.max_param_free`` M ≥ 0 in the search's config): at most
  M operation choices stay parameter-free (the strongest by α, P-DARTS's cap on skip
  connections); the others take their strongest operation with weights;
- inputs: each cell takes its strongest slot by β; widths and head types
  (``space.search_head_type``) their most probable value;
- cells: every cell, route, adapter or backbone branch without a path to a part's output is
  dropped — :func:`~search_space.pose_space.freeze` does this for every architecture (they
  cannot change the output); the report counts them;
- cost: under ``search.goal.objective: flops_constraint`` (GFLOPs, ``search.goal.hard`` on) the
  derived network is brought within ``target_gflops`` by the changes that cost α/β least
  (:mod:`strategies.budget`), and with ``search.goal.fill`` grown back toward it when below;
  ``derived.json``'s ``metrics.budget`` says what changed;
- an ``arch.json`` without α/β (multi-trial, SPOS, prune_rate) keeps its choices.

With ``--weights`` (a search checkpoint, ``last.ckpt``) it also writes ``derived.pth``: the state
dict of the frozen network with the supernet's weights (sliced channels), loadable by
``train_derived.py --arch derived.json model.pretrained derived.pth``. Prints params/GFLOPs
before (the supernet at its largest) and after. Bad or mismatched inputs write nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping


import torch

from search_space.counting import param_flop_report
from search_space.errors import UserInputError
from search_space.fabric import Fabric
from search_space.operations import PARAMETER_FREE, ZERO
from search_space.supernet import build
from strategies.budget import fit_to_budget
from trainers.network.arch_file import ArchFile, check_choices, load_arch, save_arch
from trainers.network.build import build_network, spec_from_arch
from trainers.weights.checkpoint import save_state_dict
from trainers.cli import ArgumentParser, cli_errors, output_file
from trainers.report import format_table

__all__ = ["derive_choices", "prune_arch", "inherited_network", "write_inherited_state"]

TOP_K = 2


def _edge_index(label: str) -> int:
    return int(label.rsplit("/", 1)[-1][len("edge"):-len("_op")])


def _edge_nodes(edge: int) -> tuple[int, int]:
    """(source, hidden node) of edge ``edge`` (one input node; see ``fabric._edge_pairs``)."""
    h, start = 0, 0
    while edge >= start + 1 + h:
        start += 1 + h
        h += 1
    return edge - start, 1 + h


def derive_choices(arch: ArchFile, prune_operations: bool = True,
                   top_k: int = TOP_K) -> dict[str, Any]:
    """Discrete choices from α/β (see the module docstring); ``arch.choices`` when there are
    no weights."""
    alpha = arch.weights.get("alpha", {})
    beta = arch.weights.get("beta", {})
    if not alpha and not beta:
        return dict(arch.choices)
    choices: dict[str, Any] = {}
    strength: dict[str, float] = {}
    for label, value in arch.choices.items():
        if label in beta:
            probs = beta[label]
            choices[label] = [max(range(len(probs)), key=lambda i: probs[i])]
        elif label in alpha:
            dist = alpha[label]
            candidates = {k: v for k, v in dist.items()
                          if not (prune_operations and label.endswith("_op") and k == ZERO)}
            best = max(candidates, key=lambda k: candidates[k])
            # widths are numbers (α's keys are their strings); operations and head types names
            choices[label] = int(best) if best.isdigit() else best
            strength[label] = candidates[best]
        else:
            choices[label] = value
    _cap_param_free(choices, alpha, strength, arch.config.search.collapse.max_param_free)
    if prune_operations:  # top-k incoming edges per hidden node (per cell or shared group)
        groups: dict[tuple[str, int], list[str]] = {}
        for label in strength:
            if label.endswith("_op"):
                prefix = label.rsplit("/", 1)[0]
                groups.setdefault((prefix, _edge_nodes(_edge_index(label))[1]), []).append(label)
        for labels in groups.values():
            ranked = sorted(labels, key=lambda lb: strength[lb], reverse=True)
            for label in ranked[top_k:]:
                choices[label] = ZERO
    return choices


def _cap_param_free(choices: dict[str, Any], alpha: Mapping[str, Mapping[str, float]],
                    strength: dict[str, float], limit: int) -> None:
    """P-DARTS's cap: keep the ``limit`` strongest parameter-free operation choices, give the
    others their strongest operation with weights (in place; ``limit`` < 0: no cap)."""
    if limit < 0:
        return
    free = sorted((label for label in strength
                   if label.endswith("_op") and choices[label] in PARAMETER_FREE),
                  key=lambda lb: strength[lb], reverse=True)
    for label in free[limit:]:
        weighted = {k: v for k, v in alpha[label].items()
                    if k != ZERO and k not in PARAMETER_FREE}
        if weighted:
            best = max(weighted, key=lambda k: weighted[k])
            choices[label], strength[label] = best, weighted[best]


def inherited_network(derived: ArchFile, weights: str) -> torch.nn.Module:
    """The frozen network of ``derived`` with the weights of the search checkpoint ``weights``
    (the kept channels of a channel-pruned architecture, else the leading ones).

    Raises:
        UserInputError: a partial-channel supernet (PC-DARTS), whose operations are 1/K wide.
    """
    k = derived.config.space.cell_config.partial_channels
    if k > 1:
        raise UserInputError(weights, f"a partial-channel supernet (space.cell_config."
                             f"partial_channels {k}) ran its operations on 1/{k} of the "
                             "channels: the derived network trains from scratch, as in PC-DARTS",
                             field="--weights")
    return build_network(spec_from_arch(derived), weights, inherit=True, field="--weights")


def write_inherited_state(derived: ArchFile, weights: str, path: str | Path) -> torch.nn.Module:
    """Write the inherited state dict of ``derived`` (``derived.pth``); return the network."""
    network = inherited_network(derived, weights)
    save_state_dict(network, path)
    return network


def _report_rows(model: torch.nn.Module, size) -> tuple[float, float]:
    report = param_flop_report(model, size)
    return report["params"] / 1e6, report["gflops"]


def prune_arch(arch: ArchFile, prune_operations: bool = True) -> ArchFile:
    """The derived architecture of ``arch`` (validated against its space)."""
    choices = derive_choices(arch, prune_operations)
    check_choices(arch.config, choices, arch.path)
    fit = fit_to_budget(arch, choices, prune_operations)
    metrics: dict[str, Any] = {"source": arch.path}
    metrics.update({f"search_{k}": v for k, v in arch.metrics.items()
                    if isinstance(v, (int, float, str))})
    if fit is not None:
        metrics["budget"] = fit.record()
    channels = {k: v for k, v in arch.channels.items() if choices.get(k) == len(v)}
    return ArchFile(arch.config, choices, "derived", {}, metrics, arch.path, channels)


def _count_cells(model: torch.nn.Module) -> int:
    return sum(len(m.cells) for m in model.modules() if isinstance(m, Fabric))


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m strategies.prune", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, help="arch.json of a search")
    p.add_argument("--out", required=True, help="derived.json to write")
    p.add_argument("--prune_operations", action=argparse.BooleanOptionalAction, default=True,
                   help="drop Zero and keep the top-2 edges per node (default on)")
    p.add_argument("--weights", help="search checkpoint (last.ckpt): also write the inherited "
                   "weights of the frozen network next to --out (.pth)")
    args = p.parse_args(argv)
    output_file(args.out, "--out")
    arch = load_arch(args.arch)
    derived = prune_arch(arch, args.prune_operations)
    cfg = derived.config
    size = cfg.model.input_size
    if args.weights:
        network = inherited_network(derived, args.weights)
        state_out = Path(args.out).with_suffix(".pth")
    else:
        network, state_out = build_network(spec_from_arch(derived)), None
    supernet = build(cfg.space, cfg.dataset.name)
    before = _report_rows(supernet, size)
    after = _report_rows(network, size)
    derived.metrics.update({"params": int(sum(q.numel() for q in network.parameters())),
                            "gflops": round(after[1], 4)})
    total_cells = _count_cells(supernet)
    kept = _count_cells(network)
    zero_edges = sum(1 for k, v in derived.choices.items() if k.endswith("_op") and v == ZERO)
    save_arch(args.out, derived)
    if state_out is not None:
        save_state_dict(network, state_out)
    rows = [["supernet (largest)", f"{before[0]:.3f}", f"{before[1]:.3f}", total_cells],
            ["derived", f"{after[0]:.3f}", f"{after[1]:.3f}", kept]]
    print(format_table(["network", "params (M)", "GFLOPs", "cells"], rows))
    print(f"cells removed (no path to an output): {total_cells - kept} of {total_cells}; "
          f"edges set to Zero: {zero_edges}")
    budget = derived.metrics.get("budget")
    if budget:
        print(f"hard budget {budget['target_gflops']:.4g} GFLOPs: "
              + ("met" if budget["met"] else "NOT met")
              + f" ({budget['gflops_before']:.4g} -> {budget['gflops']:.4g} GFLOPs; "
              f"{len(budget['changed'])} choices changed"
              + ("; the parameter-free cap relaxed" if budget["cap_relaxed"] else "")
              + ("; filled toward the target" if budget.get("fill") else "") + ")")
    print(f"wrote {args.out}" + (f" and {state_out}" if state_out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
