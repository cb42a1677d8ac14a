"""The expected cost of a DARTS relaxation, differentiable in α/β — the one-shot side of the
hardware-aware objective (``search.objective``).

Measured once, with ``torch.utils.flop_counter`` on the mutated supernet (every candidate runs
in a DARTS forward):

- an operation candidate costs its own multiply-adds, weighted by its softmax(α);
- a cell's routes (the 3×3 stride-2 and 1×1 resampling convs) cost theirs, weighted by the
  probability that β picks a slot using them;
- a width-searched convolution costs its multiply-adds at full width, scaled by
  E[in]/max(in) · E[out]/max(out) under softmax of the width labels;
- everything else is a constant.

It is the cost of the relaxation: cells the argmax architecture would drop still count. Units:
GMACs / 2^30 like the ``--param_flop`` GFLOPs.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from nni.mutable import MutableExpression
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ExpectedCost", "objective_loss"]

_GIGA = 2.0 ** 30


def _label_of(expr: Any) -> str | None:
    """The label of a width argument that is a plain choice (no arithmetic on it)."""
    if isinstance(expr, MutableExpression):
        leaves = expr.leaf_mutables(lambda m: True)
        labels = {m.label for m in leaves}
        if len(labels) == 1 and getattr(expr, "label", None) in labels:
            return expr.label
    return None


class ExpectedCost:
    """Expected GFLOPs of a DARTS-mutated ``PoseSpace`` as a function of its α/β.

    Args:
        supernet: the mutated supernet (``strategy.mutate_model(space)``).
        input_size: (H, W) of the input.
        alphas: NNI's architecture parameters, label → logits.
    """

    def __init__(self, supernet: nn.Module, input_size: tuple[int, int],
                 alphas: Mapping[str, torch.Tensor]) -> None:
        from nni.nas.oneshot.pytorch.supermodule.differentiable import (
            DifferentiableMixedInput, DifferentiableMixedLayer)
        from nni.nas.oneshot.pytorch.supermodule.operation import MixedConv2d

        self.alphas = dict(alphas)
        param = next(supernet.parameters())
        was_training = supernet.training
        supernet.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            supernet(torch.zeros(1, 3, *input_size, device=param.device))
        supernet.train(was_training)
        root = type(supernet).__name__
        flops = {k: sum(v.values()) / 2.0 for k, v in counter.get_flop_counts().items()}

        def cost(name: str) -> float:
            return flops.get(f"{root}.{name}" if name else "Global", 0.0)

        self.total = cost("")
        variable = 0.0
        self.op_terms: list[tuple[str, int, float]] = []  # label, candidate, macs
        self.route_terms: list[tuple[str, list[int], float]] = []  # label, slots, macs
        self.width_terms: list[tuple[str | None, list[int], str | None, list[int], float]] = []
        for name, module in supernet.named_modules():
            if isinstance(module, DifferentiableMixedLayer):
                for i, cand in enumerate(module.names):
                    c = cost(f"{name}.{cand}")
                    self.op_terms.append((module.label, i, c))
                    variable += c
            elif hasattr(module, "routes") and hasattr(module, "slots"):  # a fabric cell
                choice = getattr(module, "input_choice", None)
                if isinstance(choice, DifferentiableMixedInput):
                    for kind in module.routes:
                        c = cost(f"{name}.routes.{kind}")
                        slots = [i for i, (k, _) in enumerate(module.slots) if k == kind]
                        self.route_terms.append((choice.label, slots, c))
                        variable += c
            elif isinstance(module, MixedConv2d):
                args = module.mutable_arguments
                in_label = _label_of(args.get("in_channels"))
                out_label = _label_of(args.get("out_channels"))
                if in_label is None and out_label is None:
                    continue
                values_in = list(args["in_channels"].grid()) if in_label else []
                values_out = list(args["out_channels"].grid()) if out_label else []
                c = cost(name)
                self.width_terms.append((in_label, values_in, out_label, values_out, c))
                variable += c
        self.fixed = self.total - variable

    def _probs(self, label: str) -> torch.Tensor:
        return torch.softmax(self.alphas[label], dim=-1)

    def _expected_ratio(self, label: str | None, values: list[int]) -> torch.Tensor | float:
        if label is None or label not in self.alphas:
            return 1.0
        v = torch.tensor(values, dtype=torch.float32, device=self.alphas[label].device)
        return (self._probs(label) * v).sum() / max(values)

    def __call__(self) -> torch.Tensor:
        """Expected GFLOPs (a scalar tensor with gradients to the α/β it depends on)."""
        device = next(iter(self.alphas.values())).device if self.alphas else "cpu"
        total = torch.tensor(self.fixed, device=device)
        for label, i, c in self.op_terms:
            total = total + self._probs(label)[i] * c
        for label, slots, c in self.route_terms:
            total = total + self._probs(label)[slots].sum() * c
        for in_label, vin, out_label, vout, c in self.width_terms:
            total = total + self._expected_ratio(in_label, vin) * \
                self._expected_ratio(out_label, vout) * c
        return total / _GIGA


def objective_loss(loss: torch.Tensor, gflops: torch.Tensor, objective: str, target: float,
                   weight: float) -> torch.Tensor:
    """The architecture loss under ``search.objective``: ``loss × (max(E, T) / T)^w`` for
    ``flops_penalty`` (MnasNet's soft reward turned into a loss), ``loss × (1 + 10·relu(E/T − 1))``
    for ``flops_constraint``; the loss itself for ``metric``."""
    if objective == "metric":
        return loss
    ratio = gflops / target
    if objective == "flops_penalty":
        return loss * torch.clamp(ratio, min=1.0) ** weight
    return loss * (1.0 + 10.0 * torch.relu(ratio - 1.0))
