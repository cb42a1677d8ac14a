"""Zero-cost proxies: score an untrained architecture, to rank a space's candidates without
training them.

Each proxy maps a frozen network (random initial weights) and a batch of training images
(N, 3, H, W) to one number, higher = predicted better:

- ``params``: the number of parameters;
- ``flops``: GFLOPs for one input (``torch.utils.flop_counter``, as ``--param_flop``);
- ``naswot``: Mellor et al., "Neural Architecture Search without Training", ICML 2021
  (https://arxiv.org/abs/2006.04647): log |det K_H| of the batch's kernel of ReLU activation
  codes, K_H[i, j] = number of units on which images i and j agree (both active or both not);
- ``synflow``: Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020 (https://arxiv.org/abs/2006.05467), as a zero-cost
  proxy by Abdelfattah et al., ICLR 2021 (https://arxiv.org/abs/2101.08134): Σ |θ ⊙ ∂R/∂θ|
  over the convolution and linear weights, R the sum of the outputs for an all-ones input with
  every weight replaced by its absolute value, in float64, BatchNorm left out.

Published on NAS-Bench-201 (Krishnakumar et al., 2022; ZiCo, ICLR 2023): Kendall τ of #params
0.57, synflow 0.54 against trained accuracy. Adding a proxy is one function plus one entry of
:data:`PROXIES`.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from search_space.counting import param_flop_report

__all__ = ["PROXIES", "naswot", "synflow", "param_count", "gflops", "score_all"]


def param_count(network: nn.Module, images: torch.Tensor) -> float:
    """The number of parameters."""
    return float(sum(p.numel() for p in network.parameters()))


def gflops(network: nn.Module, images: torch.Tensor) -> float:
    """GFLOPs for one input of the batch's size."""
    return float(param_flop_report(network, tuple(images.shape[-2:]))["gflops"])


def _outputs(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _outputs(v)]
    return []


@torch.no_grad()
def naswot(network: nn.Module, images: torch.Tensor) -> float:
    """log |det K_H| of the ReLU codes of ``images`` (N, 3, H, W), N ≥ 2.

    The codes are read at the input of every convolution whose input is a ReLU output (all
    values ≥ 0; functional and module ReLUs alike): 1 where a unit is active. K_H accumulates
    c·cᵀ + (1 − c)·(1 − c)ᵀ over them, in float64. The network runs in train mode (batch
    statistics, as the paper's untrained networks) and is left as it was.
    """
    n = images.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(module: nn.Module, args: tuple) -> None:
        x = args[0]
        if not isinstance(x, torch.Tensor) or x.shape[0] != n or x.min() < 0:
            return
        codes = (x.reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_pre_hook(hook) for m in network.modules()
               if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    was_training = network.training
    try:
        network.train()
        network(images)
    finally:
        for h in handles:
            h.remove()
        network.train(was_training)
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def synflow(network: nn.Module, images: torch.Tensor) -> float:
    """log Σ |θ ⊙ ∂R/∂θ| over the conv/linear weights (the log: a monotone transform, the same
    ranking, readable magnitudes), on a float64 copy of ``network`` with |θ| and no BatchNorm,
    R = Σ outputs for one all-ones input of the batch's size; ``network`` is untouched.
    −inf when the flow is 0, +inf when it overflows float64."""
    net = copy.deepcopy(network).double()
    for module in list(net.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.eval()
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64)
    sum(t.sum() for t in _outputs(net(ones))).backward()
    value = float(sum((m.weight * m.weight.grad).abs().sum().item() for m in net.modules()
                      if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear))
                      and m.weight.grad is not None))
    return math.log(value) if value > 0 else float("-inf")


#: the proxies by name: (network, images) → score, higher = predicted better
PROXIES: dict[str, Callable[[nn.Module, torch.Tensor], float]] = {
    "params": param_count,
    "flops": gflops,
    "naswot": naswot,
    "synflow": synflow,
}


def score_all(network: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Every proxy of :data:`PROXIES` for ``network`` on ``images``."""
    return {name: proxy(network, images) for name, proxy in PROXIES.items()}
