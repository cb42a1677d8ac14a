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
  warning);
- with ``search.goal.fill``, a network below the target grows back toward it: TF-NAS's
  elasticity scaling (§3.4 scales the derived widths until the latency meets its target from
  either side). A **growth move** changes one label to a costlier candidate (an operation to
  another non-``Zero`` one, a width to a larger value, an input to another slot, a part's head
  type to the other); moves keeping the network within the target are applied greedily by
  ``log p(current) − log p(new)`` per GFLOP gained, cheapest first, until none fits. A growth
  move never takes the parameter-free operations past the cap. Why: a cost penalty that
  gives a costlier candidate 0.41 of the probability in every part makes the argmax drop them
  all (the head type per part, ``space.search_head_type``: every part plain at 0.72× the
  target), where the budget would have paid for some.

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
    filled: bool = False  # growth moves were looked for (search.goal.fill)

    @property
    def met(self) -> bool:
        return self.gflops <= self.target_gflops

    def record(self) -> dict[str, Any]:
        """The ``budget`` entry of ``derived.json``'s metrics."""
        return {"target_gflops": self.target_gflops, "gflops_before": round(self.gflops_before, 6),
                "gflops": round(self.gflops, 6), "met": self.met, "changed": self.changed,
                "cap_relaxed": self.cap_relaxed, "fill": self.filled}


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
    return goal.target if hard else None


def _candidates(label: str, current: Any, alpha: Mapping[str, Mapping[str, float]],
                beta: Mapping[str, list[float]], prune_operations: bool, grow: bool = False
                ) -> list[tuple[Any, float, float]]:
    """(new value, p(current), p(new)) of every other candidate of ``label`` (widths: the
    smaller ones, or with ``grow`` the larger ones)."""
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
            if (int(value) > current if grow else int(value) < current)]


def fit_to_budget(arch: ArchFile, choices: dict[str, Any], prune_operations: bool = True,
                  gflops: Callable[[Mapping[str, Any]], float] | None = None) -> BudgetFit | None:
    """Bring ``choices`` (derived from ``arch``'s α/β, changed in place) within the goal's
    ``target_gflops``, and with ``search.goal.fill`` grow them back toward it (see the module
    docstring); ``None`` when no hard GFLOPs budget applies (another objective or cost,
    ``hard`` off, or an ``arch.json`` without α/β).

    Args:
        gflops: the cost of a choice dict (default :func:`frozen_gflops` of ``arch``).
    """
    alpha = arch.weights.get("alpha", {})
    beta = arch.weights.get("beta", {})
    target = hard_gflops_target(arch.config)
    if target is None or not (alpha or beta):
        return None
    measure = gflops or (lambda c: frozen_gflops(arch.config, c))
    before = measure(choices)
    fit = BudgetFit(target, before, before, filled=arch.config.search.goal.fill)
    limit = arch.config.search.collapse.max_param_free
    original = dict(choices)
    labels = [lb for lb in choices if lb in alpha or lb in beta]

    def over_cap(label: str, value: Any) -> bool:
        return (limit >= 0 and label.endswith("_op") and value in PARAMETER_FREE
                and choices[label] not in PARAMETER_FREE and _param_free(choices) >= limit)

    def moves(grow: bool, current: float) -> list[tuple[float, str, Any]]:
        """(log-probability loss per GFLOP saved or gained, label, value), cheapest first."""
        found = []
        for label in labels:
            for value, p_old, p_new in _candidates(label, choices[label], alpha, beta,
                                                   prune_operations, grow):
                after = measure({**choices, label: value})
                change = after - current if grow else current - after
                if change > 0 and (not grow or after <= target):
                    loss = math.log(max(p_old, _FLOOR)) - math.log(max(p_new, _FLOOR))
                    found.append((loss / change, label, value))
        return sorted(found, key=lambda m: m[0])

    def try_move(label: str, value: Any, keeps: Callable[[float], bool]) -> float | None:
        """Apply one move and measure it; undo it (``None``) unless ``keeps(GFLOPs after)``."""
        old = choices[label]
        choices[label] = value
        after = measure(choices)
        if not keeps(after):
            choices[label] = old
            return None
        return after

    current = before
    while current > target:  # shrink: one round measures every move, then applies the cheapest
        applied = False
        changed_now: set[str] = set()
        ranked = moves(False, current)
        for within_cap in (True, False):
            for _, label, value in ranked:
                if current <= target:
                    break
                if label in changed_now or (within_cap and over_cap(label, value)):
                    continue
                relaxed = over_cap(label, value)
                # an interaction can undo the saving: then the old value stays
                after = try_move(label, value, lambda gf: gf < current)
                if after is None:
                    continue
                current, applied = after, True
                changed_now.add(label)
                fit.cap_relaxed |= relaxed
        if not applied:
            break
    while fit.filled and current <= target:  # grow: the same rounds, within the target
        applied = False
        changed_now = set()
        for _, label, value in moves(True, current):
            if label in changed_now or over_cap(label, value):
                continue
            # interactions can take the gain away or make it too big
            after = try_move(label, value, lambda gf: current < gf <= target)
            if after is None:
                continue
            current, applied = after, True
            changed_now.add(label)
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
