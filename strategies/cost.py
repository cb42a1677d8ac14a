"""The expected cost of a DARTS relaxation, differentiable in α/β — the one-shot side of the
hardware-aware objective (``search.goal.objective``), in GFLOPs or, with ``search.goal.cost latency``, in
onnxruntime milliseconds from the latency table (:mod:`strategies.latency`).

Measured once on the mutated supernet (every candidate runs in a DARTS forward):

- an operation candidate costs its own multiply-adds (its table latency), weighted by its
  softmax(α);
- a cell's routes (the 3×3 stride-2 and 1×1 resampling convs) cost theirs, weighted by the
  probability that β picks a slot using them;
- a width-searched convolution costs, for each pair of input and output widths, the
  multiply-adds at full width scaled by in/max(in) · out/max(out) (the latency of that
  convolution), weighted by the product of the two widths' probabilities;
- everything else is a constant: for GFLOPs the supernet's remaining multiply-adds; for latency,
  the table's prediction of its calibration architectures minus their variable terms (mean).

Choices nested in a candidate (the fabric of a part whose head type is searched,
``space.search_head_type``) are gated by it: their terms are weighted by the probability of the
candidate that holds them too, and the candidate's own term is what it costs beyond them, so
E = p(plain)·C(plain head) + p(fabric)·(C(fabric's fixed part) + the fabric's expected terms).

It is the cost of the relaxation: cells the argmax architecture would drop still count. Units:
GMACs / 2^30 like the ``--param_flop`` GFLOPs, or ms per crop.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from nni.mutable import MutableExpression
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from strategies.latency import LatencyTable

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


def _conv_at(conv: nn.Conv2d, cin: int, cout: int) -> nn.Conv2d:
    """``conv``'s geometry at ``cin`` → ``cout`` channels (a depthwise conv stays depthwise)."""
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels
    groups = math.gcd(cin, cout) if depthwise else conv.groups
    return nn.Conv2d(cin, cout, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                     groups, conv.bias is not None)


def _measure(supernet: nn.Module, input_size: tuple[int, int],
             timed: list[str]) -> tuple[dict[str, float], dict[str, tuple[int, ...]]]:
    """GFLOPs per module (``torch.utils.flop_counter`` keys) of one (1, 3, H, W) forward, and
    the input shape of each module in ``timed``."""
    modules = dict(supernet.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if isinstance(args[0], torch.Tensor):  # a part head reads the pyramid (a list)
                shapes.setdefault(name, tuple(args[0].shape))
        return hook

    hooks = [modules[name].register_forward_hook(record(name)) for name in timed]
    was_training = supernet.training
    supernet.eval()
    param = next(supernet.parameters())
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            supernet(torch.zeros(1, 3, *input_size, device=param.device))
    finally:
        for h in hooks:
            h.remove()
        supernet.train(was_training)
    flops = {k: sum(v.values()) / 2.0 / _GIGA for k, v in counter.get_flop_counts().items()}
    return flops, shapes


class ExpectedCost:
    """Expected cost of a DARTS-mutated ``PoseSpace`` as a function of its α/β.

    Args:
        supernet: the mutated supernet (``strategy.mutate_model(space)``).
        input_size: (H, W) of the input.
        alphas: NNI's architecture parameters, label → logits.
        latency: a calibrated latency table: the cost is its latency (ms), not GFLOPs.
    """

    def __init__(self, supernet: nn.Module, input_size: tuple[int, int],
                 alphas: Mapping[str, torch.Tensor], latency: LatencyTable | None = None) -> None:
        from nni.nas.oneshot.pytorch.supermodule.differentiable import (
            DifferentiableMixedInput, DifferentiableMixedLayer)
        from nni.nas.oneshot.pytorch.supermodule.operation import MixedConv2d

        self.alphas = dict(alphas)
        self.unit = "ms" if latency is not None else "GFLOPs"
        timed: list[str] = []  # the modules whose input shape the latency needs
        for name, module in supernet.named_modules():
            if isinstance(module, DifferentiableMixedLayer):
                timed += [f"{name}.{cand}" for cand in module.names]
            elif isinstance(getattr(module, "input_choice", None), DifferentiableMixedInput) \
                    and hasattr(module, "routes"):
                timed += [f"{name}.routes.{kind}" for kind in module.routes]
            elif isinstance(module, MixedConv2d):
                timed.append(name)
        flops, shapes = _measure(supernet, input_size, timed)
        modules = dict(supernet.named_modules())
        root = type(supernet).__name__

        def cost(name: str) -> float:
            """GFLOPs of the module ``name``, or its table latency at its input shape."""
            if latency is None:
                return flops.get(f"{root}.{name}" if name else "Global", 0.0)
            if name not in shapes:  # never ran
                return 0.0
            return latency.scale * latency.module_ms(modules[name], shapes[name])

        self.total = flops.get("Global", 0.0)
        self.values: dict[str, list[Any]] = {}  # label → its choices, in α's order
        self.op_terms: list[tuple[str, int, float]] = []  # label, candidate, cost
        self.route_terms: list[tuple[str, list[int], float]] = []  # label, slots, cost
        #: in label, in widths, out label, out widths, cost per (in, out) pair
        self.width_terms: list[tuple[str | None, list[int], str | None, list[int],
                                     torch.Tensor]] = []
        #: per term (op, route, width terms by list and index): the (label, candidate) pairs
        #: of the choices that hold it
        self.gates: dict[tuple[str, int], tuple[tuple[str, int], ...]] = {}
        self._collect_terms(supernet, cost, latency, shapes)
        variable = float(self._variable({}))  # every candidate and route, the largest widths
        if latency is None:
            self.fixed = self.total - variable
        else:  # the calibration architectures: table prediction − their variable terms
            rows = [r for r in latency.calibration.get("networks", []) if "choices" in r]
            if not rows:
                raise ValueError("the latency table holds no calibration architectures")
            gaps = [latency.scale * r["summed_ms"] - float(self._variable(self.one_hot(r["choices"])))
                    for r in rows]
            self.fixed = sum(gaps) / len(gaps)
            self.total = self.fixed + variable

    def _collect_terms(self, supernet: nn.Module, cost: Any, latency: LatencyTable | None,
                       shapes: Mapping[str, tuple[int, ...]]) -> None:
        """One term per candidate operation, per cell route and per width-chosen conv."""
        from nni.nas.oneshot.pytorch.supermodule.differentiable import (
            DifferentiableMixedInput, DifferentiableMixedLayer)
        from nni.nas.oneshot.pytorch.supermodule.operation import MixedConv2d

        mixed = (DifferentiableMixedLayer, DifferentiableMixedInput, MixedConv2d)
        holders: list[tuple[str, str, int]] = []  # prefix of a candidate holding choices, label, i
        for name, module in supernet.named_modules():
            if isinstance(module, DifferentiableMixedLayer):
                for i, cand in enumerate(module.names):
                    if any(isinstance(m, mixed) for m in module[cand].modules()):
                        holders.append((f"{name}.{cand}.", module.label, i))
        if holders and latency is not None:
            raise ValueError("a latency cost cannot gate the choices nested in a candidate "
                             "(space.search_head_type): use GFLOPs")

        def gate(kind: str, index: int, name: str) -> None:
            held = tuple((label, i) for prefix, label, i in holders if name.startswith(prefix))
            if held:
                self.gates[(kind, index)] = held

        own: list[int] = []  # the op terms of candidates holding choices
        for name, module in supernet.named_modules():
            if isinstance(module, DifferentiableMixedLayer):
                self.values[module.label] = list(module.names)
                for i, cand in enumerate(module.names):
                    gate("op", len(self.op_terms), name)
                    if any(p == f"{name}.{cand}." for p, _, _ in holders):
                        own.append(len(self.op_terms))
                    self.op_terms.append((module.label, i, cost(f"{name}.{cand}")))
            elif hasattr(module, "routes") and hasattr(module, "slots"):  # a fabric cell
                choice = getattr(module, "input_choice", None)
                if isinstance(choice, DifferentiableMixedInput):
                    self.values[choice.label] = list(range(len(module.slots)))
                    for kind in module.routes:
                        slots = [i for i, (k, _) in enumerate(module.slots) if k == kind]
                        gate("route", len(self.route_terms), name)
                        self.route_terms.append((choice.label, slots,
                                                 cost(f"{name}.routes.{kind}")))
            elif isinstance(module, MixedConv2d):
                term = self._width_term(name, module, cost, latency, shapes)
                if term is not None:
                    gate("width", len(self.width_terms), name)
                    self.width_terms.append(term)
        for index in own:  # a holder's own term: its cost beyond the terms it holds
            label, i, c = self.op_terms[index]
            held = self._variable({}, within=(label, i))
            self.op_terms[index] = (label, i, c - float(held))

    def _width_term(self, name: str, module: Any, cost: Any, latency: LatencyTable | None,
                    shapes: Mapping[str, tuple[int, ...]]) -> tuple | None:
        args = module.mutable_arguments
        in_label = _label_of(args.get("in_channels"))
        out_label = _label_of(args.get("out_channels"))
        if in_label is None and out_label is None:
            return None
        vin = list(args["in_channels"].grid()) if in_label else [module.in_channels]
        vout = list(args["out_channels"].grid()) if out_label else [module.out_channels]
        for label, values in ((in_label, vin), (out_label, vout)):
            if label is not None:
                self.values[label] = values
        if latency is None:
            full = cost(name)
            grid = torch.tensor([[full * i / max(vin) * o / max(vout) for o in vout] for i in vin])
        else:
            h, w = shapes[name][2:] if name in shapes else (1, 1)
            grid = torch.tensor([[latency.scale * latency.module_ms(_conv_at(module, i, o),
                                                                     (1, i, h, w))
                                  for o in vout] for i in vin])
        return in_label, vin, out_label, vout, grid

    def one_hot(self, choices: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Probabilities that put all mass on ``choices`` (labels this relaxation searches)."""
        probs = {}
        for label, values in self.values.items():
            if label not in choices:
                continue
            value = choices[label]
            if isinstance(value, (list, tuple)):  # an input choice: [slot]
                value = value[0]
            p = torch.zeros(len(values))
            p[values.index(value)] = 1.0
            probs[label] = p
        return probs

    def _probs(self, label: str, given: Mapping[str, torch.Tensor] | None) -> torch.Tensor | None:
        if given is not None:
            return given.get(label)
        if label not in self.alphas:
            return None
        return torch.softmax(self.alphas[label], dim=-1)

    def _variable(self, given: Mapping[str, torch.Tensor] | None,
                  within: tuple[str, int] | None = None) -> torch.Tensor:
        """The variable terms under softmax(α) (``given`` None) or under ``given``
        probabilities; a label ``given`` leaves out counts in full (every candidate and route;
        the largest width). Each term is weighted by the candidates that hold it (:attr:`gates`);
        ``within``: only the terms the candidate (label, index) holds."""
        device = next(iter(self.alphas.values())).device if self.alphas and given is None else "cpu"
        total = torch.zeros((), device=device)

        def gated(kind: str, index: int, value: torch.Tensor | float) -> torch.Tensor | float:
            holders = self.gates.get((kind, index), ())
            if within is not None and within not in holders:
                return 0.0
            for label, i in holders:
                p = self._probs(label, given)
                if p is not None:
                    value = value * p[i].to(device)
            return value

        for index, (label, i, c) in enumerate(self.op_terms):
            p = self._probs(label, given)
            total = total + gated("op", index, p[i].to(device) * c if p is not None else c)
        for index, (label, slots, c) in enumerate(self.route_terms):
            p = self._probs(label, given)
            total = total + gated("route", index,
                                  p[slots].sum().to(device) * c if p is not None else c)
        for index, (in_label, vin, out_label, vout, grid) in enumerate(self.width_terms):
            pin = self._probs(in_label, given) if in_label else None
            pout = self._probs(out_label, given) if out_label else None
            pin = pin.to(device) if pin is not None else _largest(len(vin), vin, device)
            pout = pout.to(device) if pout is not None else _largest(len(vout), vout, device)
            total = total + gated("width", index, pin @ grid.to(device) @ pout)
        return total

    def __call__(self) -> torch.Tensor:
        """The expected cost (a scalar tensor with gradients to the α/β it depends on)."""
        return self.fixed + self._variable(None)

    def at(self, probs: Mapping[str, torch.Tensor]) -> float:
        """The cost under the probabilities ``probs`` (label → one per candidate, e.g.
        :meth:`one_hot`); a label left out counts in full (every candidate and route, the
        largest width)."""
        return float(self.fixed + self._variable(probs))


def _largest(n: int, values: list[int], device: Any) -> torch.Tensor:
    p = torch.zeros(n, device=device)
    p[values.index(max(values))] = 1.0
    return p


def objective_loss(loss: torch.Tensor, cost: torch.Tensor, objective: str, target: float,
                   weight: float) -> torch.Tensor:
    """The architecture loss under ``search.goal.objective``: ``loss × (max(E, T) / T)^w`` for
    ``flops_penalty`` (MnasNet's soft reward turned into a loss), ``loss × (1 + 10·relu(E/T − 1))``
    for ``flops_constraint``; the loss itself for ``metric``."""
    if objective == "metric":
        return loss
    ratio = cost / target
    if objective == "flops_penalty":
        return loss * torch.clamp(ratio, min=1.0) ** weight
    return loss * (1.0 + 10.0 * torch.relu(ratio - 1.0))
