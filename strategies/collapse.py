"""The collapse signal of a gradient search: how far the architecture that α/β stand for has
drifted to parameter-free operations and how many of the fabric's cells it still uses.

DARTS is known to collapse toward parameter-free operations (skip connections, pooling) as the
search goes on (Zela et al. 2020, "Understanding and Robustifying DARTS"; Chu et al. 2021,
"DARTS-"), and a fabric can also lose cells to ``Zero``. Each epoch of a one-shot search records,
for the plain argmax of that epoch's α/β (``Zero`` included, no cap: what α/β say, before
Prune's rules):

- ``param_free_share``: the share of the operations on the kept cells' edges that have no
  weights (:data:`~search_space.operations.PARAMETER_FREE`);
- ``cells_kept``: the share of the fabric's cells that still compute something (not all
  ``Zero``) on a path to an output.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from torch import nn

from search_space.fabric import Fabric
from search_space.operations import PARAMETER_FREE
from strategies.prune import derive_choices
from trainers.network.arch_file import ArchFile
from trainers.network.build import build_network, spec_from_choices
from trainers.config.schema import Config
from search_space.errors import UserInputError

__all__ = ["network_collapse", "arch_collapse"]


def network_collapse(network: nn.Module) -> dict[str, float]:
    """The collapse signal of a frozen network (see the module docstring); {} without fabrics."""
    fabrics = [m for m in network.modules() if isinstance(m, Fabric)]
    if not fabrics:
        return {}
    total = sum(len(f.geometry.cells()) for f in fabrics)
    live = [cell for f in fabrics for cell in f.cells.values() if not cell.constant]
    ops = [name for cell in live for edge in cell.edges.values() for name in edge.keys()]
    share = sum(name in PARAMETER_FREE for name in ops) / len(ops) if ops else 0.0
    return {"param_free_share": round(share, 4), "cells_kept": round(len(live) / total, 4)}


def arch_collapse(cfg: Config, choices: Mapping[str, Any],
                  weights: Mapping[str, Any]) -> dict[str, float]:
    """The collapse signal of the argmax of the α/β ``weights`` (arch.json's ``weights``;
    ``choices`` gives the labels they do not cover); {} if it cannot be frozen."""
    raw = replace(cfg, search=replace(cfg.search, collapse=replace(cfg.search.collapse,
                                                                          max_param_free=-1)))
    arch = ArchFile(raw, dict(choices), "search", dict(weights), {})
    try:
        derived = derive_choices(arch, prune_operations=False)
        network = build_network(spec_from_choices(cfg, derived))
    except (UserInputError, ValueError):
        return {}
    return network_collapse(network)
