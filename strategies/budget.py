"""The hard cost budget of the Prune step: a derived architecture within ``target_gflops``.

A gradient search under ``search.goal.objective: flops_constraint`` only penalises the
*expected* cost of the relaxation (:mod:`strategies.cost`), so the argmax it derives can end a
few per cent above the target (on the demo space at the plain head's 0.0417 GFLOPs: 0.0443).
With ``search.goal.hard`` (the default) the Prune step then makes the target a constraint, as
hardware-aware NAS with hard budgets does (TF-NAS, Hu et al. 2020, arXiv:2008.05314, §3.4;
ProxylessNAS's derived networks are checked against their latency target the same way):

- a **move** changes one label of the derived choices to a cheaper candidate: an operation to
  another non-``Zero`` operation, a width to a smaller value, an input to another slot, a
  part's head type to the other;
- each move costs ``log p(current) − log p(new)`` of the search's softmax α/β and saves the
  frozen network's GFLOPs it measures (``torch.utils.flop_counter`` on the meta device);
- moves are applied greedily by cost per GFLOP saved, cheapest first, each measured again after
  it is applied, until the network is within the target. Moves that would take more operations
  parameter-free than ``search.collapse.max_param_free`` allows come only after every other
  move (the budget is a constraint, the cap a heuristic against collapse);
- a target no move reaches keeps the cheapest network found and says so (``met`` false, a
  warning).

Every trial (:func:`strategies.trials.run_trial`: the multi-trial strategies and ``nnictl``
trials) applies the same budget before training: an architecture above the target scores 0
without being trained (:func:`hard_gflops_target`, :func:`frozen_gflops`).

GFLOPs only: a ``cost: latency`` goal stays the soft penalty of the search.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from search_space.counting import param_flop_report
from search_space.operations import PARAMETER_FREE, ZERO
from trainers.config.schema import Config
from trainers.network.arch_file import ArchFile
from trainers.network.build import build_network, spec_from_choices

__all__ = ["BudgetFit", "fit_to_budget", "frozen_gflops", "hard_gflops_target"]

logger = logging.getLogger(__name__)

#: a probability floor for the log of a candidate the search drove to 0
_FLOOR = 1e-12


@dataclass
class BudgetFit:
    """What :func:`fit_to_budget` did: the GFLOPs before and after, and the labels it changed."""

    target_gflops: float
    gflops_before: float
    gflops: float
    changed: dict[str, list[Any]] = field(default_factory=dict)  # label → [old, new]
    cap_relaxed: bool = False  # a move took the parameter-free operations past the cap

    @property
    def met(self) -> bool:
        return self.gflops <= self.target_gflops

    def record(self) -> dict[str, Any]:
        """The ``budget`` entry of ``derived.json``'s metrics."""
        return {"target_gflops": self.target_gflops, "gflops_before": round(self.gflops_before, 6),
                "gflops": round(self.gflops, 6), "met": self.met, "changed": self.changed,
                "cap_relaxed": self.cap_relaxed}


def frozen_gflops(cfg: Config, choices: Mapping[str, Any],
                  channels: Mapping[str, list[int]] | None = None) -> float:
    """GFLOPs of the frozen network of ``choices`` (and kept ``channels``) in ``cfg``'s space at
    ``model.input_size`` (built on the meta device: no memory, no weights)."""
    with torch.device("meta"):
        network = build_network(spec_from_choices(cfg, choices, channels))
    return float(param_flop_report(network, cfg.model.input_size)["gflops"])


def hard_gflops_target(cfg: Config) -> float | None:
    """The hard GFLOPs budget of ``cfg``'s search goal (``flops_constraint`` on GFLOPs with
    ``search.goal.hard``), or ``None``."""
    goal = cfg.search.goal
    hard = goal.objective == "flops_constraint" and goal.cost == "gflops" and goal.hard
    return goal.target_gflops if hard else None


def _candidates(label: str, current: Any, alpha: Mapping[str, Mapping[str, float]],
                beta: Mapping[str, list[float]], prune_operations: bool
                ) -> list[tuple[Any, float, float]]:
    """(new value, p(current), p(new)) of every other candidate of ``label``."""
    if label in beta:
        probs = beta[label]
        (slot,) = current
        return [([i], probs[slot], p) for i, p in enumerate(probs) if i != slot]
    dist = alpha[label]
    if isinstance(current, str) and not label.endswith("_op"):  # a head type: any other
        return [(name, dist[current], p) for name, p in dist.items() if name != current]
    if label.endswith("_op"):
        if current == ZERO and prune_operations:
            return []  # an edge the top-k rule removed stays removed
        return [(name, dist[current], p) for name, p in dist.items()
                if name != current and not (prune_operations and name == ZERO)]
    return [(int(value), dist[str(current)], p) for value, p in dist.items()
            if int(value) < current]  # widths: only smaller values can be cheaper


def fit_to_budget(arch: ArchFile, choices: dict[str, Any], prune_operations: bool = True,
                  gflops: Callable[[Mapping[str, Any]], float] | None = None) -> BudgetFit | None:
    """Bring ``choices`` (derived from ``arch``'s α/β, changed in place) within the goal's
    ``target_gflops`` (see the module docstring); ``None`` when no hard GFLOPs budget applies
    (another objective or cost, ``hard`` off, or an ``arch.json`` without α/β).

    Args:
        gflops: the cost of a choice dict (default :func:`frozen_gflops` of ``arch``).
    """
    alpha = arch.weights.get("alpha", {})
    beta = arch.weights.get("beta", {})
    target = hard_gflops_target(arch.config)
    if target is None or not (alpha or beta):
        return None
    measure = gflops or (lambda c: frozen_gflops(arch.config, c))
    before = current = measure(choices)
    fit = BudgetFit(target, before, before)
    limit = arch.config.search.collapse.max_param_free
    original = dict(choices)
    while current > target:
        moves = []
        for label in [lb for lb in choices if lb in alpha or lb in beta]:
            for value, p_old, p_new in _candidates(label, choices[label], alpha, beta,
                                                   prune_operations):
                trial = {**choices, label: value}
                saved = current - measure(trial)
                if saved > 0:
                    loss = math.log(max(p_old, _FLOOR)) - math.log(max(p_new, _FLOOR))
                    moves.append((loss / saved, label, value))
        moves.sort(key=lambda m: m[0])
        applied = False
        changed_now: set[str] = set()
        for within_cap in (True, False):
            for _, label, value in moves:
                if current <= target:
                    break
                if label in changed_now:
                    continue
                over_cap = (limit >= 0 and label.endswith("_op") and value in PARAMETER_FREE
                            and choices[label] not in PARAMETER_FREE
                            and _param_free(choices) >= limit)
                if within_cap and over_cap:
                    continue
                old = choices[label]
                choices[label] = value
                after = measure(choices)
                if after >= current:  # an interaction undid the saving: keep the old value
                    choices[label] = old
                    continue
                current, applied = after, True
                changed_now.add(label)
                fit.cap_relaxed |= over_cap
        if not applied:
            break
    fit.gflops = current
    fit.changed = {lb: [original[lb], v] for lb, v in choices.items() if v != original[lb]}
    if fit.changed:
        logger.info("hard budget %.4g GFLOPs: %.4g -> %.4g GFLOPs by changing %s", target,
                    before, current, ", ".join(f"{lb} {o} -> {n}" for lb, (o, n)
                                              in fit.changed.items()))
    if not fit.met:
        logger.warning("hard budget %.4g GFLOPs not reachable in this space from the search's "
                       "choices: the cheapest derived network found has %.4g GFLOPs", target,
                       current)
    return fit


def _param_free(choices: Mapping[str, Any]) -> int:
    return sum(1 for lb, v in choices.items() if lb.endswith("_op") and v in PARAMETER_FREE)
