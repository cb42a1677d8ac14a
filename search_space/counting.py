"""Parameters and GFLOPs of a network, per component and in total.

FLOPs are the multiply-adds of convolutions and linear layers, counted by
``torch.utils.flop_counter`` (which counts 2 per multiply-add; we halve it) for one image.
``gflops`` = MACs / 2^30, the convention of the official HRNet code and the seeds, so the
figures compare with published tables (HRNet-W32 at 256×192: 7.1). BatchNorm, activations,
pooling and upsampling are not counted.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["param_flop_report", "count_parameters"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def _components(model: nn.Module) -> dict[str, nn.Module]:
    if hasattr(model, "components"):
        return model.components()
    return dict(model.named_children()) or {"model": model}


def param_flop_report(model: nn.Module, input_size: tuple[int, int]) -> dict[str, Any]:
    """Params and MACs per component and in total for one (3, H, W) input.

    Returns:
        ``{"input_size": [H, W], "components": [{name, params, macs, gflops}], "params",
        "macs", "gflops"}``.
    """
    was_training = model.training
    model.eval()
    names = {id(m): n for n, m in model.named_modules()}
    root = type(model).__name__
    device = next(model.parameters()).device
    with FlopCounterMode(display=False, depth=None) as counter, torch.no_grad():
        model(torch.zeros(1, 3, *input_size, device=device))
    model.train(was_training)
    flops = counter.get_flop_counts()
    def macs_of(module: nn.Module) -> int:
        """A registered module's count; a container made for the report (a slice of a
        Sequential, a list of the stem's layers) sums its registered children."""
        path = names.get(id(module))
        if path is None:
            return sum(macs_of(child) for child in module.children())
        return sum(flops.get(f"{root}.{path}" if path else root, {}).values()) // 2

    rows = []
    for name, module in _components(model).items():
        macs = macs_of(module)
        rows.append({"name": name, "params": sum(p.numel() for p in module.parameters()),
                     "macs": int(macs), "gflops": macs / 2 ** 30})
    total_macs = counter.get_total_flops() // 2
    return {"input_size": list(input_size), "components": rows,
            "params": sum(p.numel() for p in model.parameters()),
            "macs": int(total_macs), "gflops": total_macs / 2 ** 30}
