"""Quantization-aware training with PACT (Choi et al., "PACT: Parameterized Clipping Activation
for Quantized Neural Networks", 2018).

:func:`prepare_qat` turns a float network into its QAT form, in place:

- every ``nn.ReLU`` module becomes :class:`PACT`: ``y = clip(x, 0, α)`` with a learned clip
  level α per module, quantized to ``2^b − 1`` levels: ``y_q = round(y / s) · s``, ``s = α / (2^b − 1)``.
  Its gradient is the paper's: ``∂y_q/∂x = 1`` for ``0 ≤ x < α`` (straight-through the
  rounding) and 0 elsewhere, ``∂y_q/∂α = 1`` where ``x ≥ α`` and 0 elsewhere. A module applied
  twice (a residual block's one ReLU after its first conv and after the sum) has one α;
  activations computed with ``F.relu`` (inside PNFS cells and heads) stay float;
- every convolution's weight is fake-quantized symmetrically to ``±(2^(b−1) − 1)`` levels, per
  output channel or per tensor (``torch.fake_quantize_per_channel_affine`` /
  ``_per_tensor_affine``, straight-through gradient), through ``torch.nn.utils.parametrize``:
  the float weight stays the trained parameter (state-dict key
  ``...parametrizations.weight.original``).

BatchNorm stays separate during QAT (as in PACT); it is folded only for deployment.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.utils.parametrize as parametrize
from torch import nn

from trainers.config.schema import QuantConfig

__all__ = ["PACT", "pact_quantize", "WeightFakeQuant", "prepare_qat", "is_qat_state",
           "calibrate_pact", "pact_modules"]


class _PACTFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, levels: int) -> torch.Tensor:
        ctx.save_for_backward(x, alpha)
        scale = alpha / levels
        y = torch.minimum(torch.clamp(x, min=0.0), alpha)
        return torch.round(y / scale) * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, alpha = ctx.saved_tensors
        inside = (x >= 0) & (x < alpha)
        grad_x = grad * inside.to(grad.dtype)
        grad_alpha = (grad * (x >= alpha).to(grad.dtype)).sum().reshape(alpha.shape)
        return grad_x, grad_alpha, None


def pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """PACT: ``x`` clipped to [0, α] and quantized to ``2^bits − 1`` levels, with PACT's
    gradient for ``x`` and ``α`` (see the module docstring)."""
    return _PACTFunction.apply(x, alpha, 2 ** bits - 1)


class PACT(nn.Module):
    """A ReLU with a learned clip level ``alpha``, quantized to ``bits`` (unsigned)."""

    def __init__(self, bits: int = 8, init: float = 10.0) -> None:
        super().__init__()
        self.bits = bits
        self.alpha = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():  # QuantizeLinear/DequantizeLinear, uint8 in [0, α]
            levels = 2 ** self.bits - 1
            scale = float((self.alpha.detach() / levels).item())  # the float32 scale used below
            return torch.fake_quantize_per_tensor_affine(x, scale, 0, 0, levels)
        return pact_quantize(x, self.alpha.to(x.dtype), self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, alpha={float(self.alpha):.4g}"


class WeightFakeQuant(nn.Module):
    """A parametrization: the weight fake-quantized symmetrically to ``±(2^(bits−1) − 1)``,
    scaled by its largest magnitude per output channel (or per tensor). The integer range is
    declared as int8's [−128, 127] (ONNX's), which −127 … 127 never leaves."""

    def __init__(self, bits: int = 8, per_channel: bool = True) -> None:
        super().__init__()
        self.qmax = 2 ** (bits - 1) - 1
        self.per_channel = per_channel

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            scale = w.detach().abs().amax(dim=tuple(range(1, w.dim()))).clamp_min(1e-8) / self.qmax
            zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
            return torch.fake_quantize_per_channel_affine(w, scale.float(), zero, 0,
                                                          -self.qmax - 1, self.qmax)
        scale = float(w.detach().abs().max().clamp_min(1e-8)) / self.qmax
        return torch.fake_quantize_per_tensor_affine(w, scale, 0, -self.qmax - 1, self.qmax)


def _replace_relus(module: nn.Module, cfg: QuantConfig) -> int:
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.ReLU):
            setattr(module, name, PACT(cfg.bits, cfg.act_init))
            count += 1
        else:
            count += _replace_relus(child, cfg)
    return count


def prepare_qat(network: nn.Module, cfg: QuantConfig) -> nn.Module:
    """``network`` in its QAT form (in place; see the module docstring); returns it.

    Raises:
        ValueError: ``cfg.method`` is not a QAT method, or the network is already prepared.
    """
    if cfg.method != "pact":
        raise ValueError(f"quant.method {cfg.method!r} is not a quantization-aware method")
    if pact_modules(network):
        raise ValueError("the network is already prepared for QAT")
    _replace_relus(network, cfg)
    for module in network.modules():
        if isinstance(module, nn.Conv2d) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(
                module, "weight", WeightFakeQuant(cfg.bits, cfg.weight == "per_channel"))
    return network


def pact_modules(network: nn.Module) -> list[PACT]:
    """The PACT activations of ``network`` (empty for a float network)."""
    return [m for m in network.modules() if isinstance(m, PACT)]


def is_qat_state(state: Iterable[str]) -> bool:
    """Whether state-dict keys are those of a QAT network (fake-quantized weights)."""
    return any(".parametrizations.weight.original" in k for k in state)


@torch.no_grad()
def calibrate_pact(network: nn.Module, images: Iterable[torch.Tensor]) -> int:
    """Set every PACT clip level to the largest value its input takes over ``images``
    (normalised batches), the network in eval mode; returns the number of batches seen.
    A PACT module whose input is never positive keeps its α."""
    acts = pact_modules(network)
    highest = {id(m): 0.0 for m in acts}

    def hook(module, inputs):
        highest[id(module)] = max(highest[id(module)], float(inputs[0].detach().max()))

    handles = [m.register_forward_pre_hook(hook) for m in acts]
    was_training = network.training
    network.eval()
    seen = 0
    try:
        for batch in images:
            network(batch)
            seen += 1
    finally:
        for h in handles:
            h.remove()
        network.train(was_training)
    for m in acts:
        if highest[id(m)] > 0:
            m.alpha.fill_(highest[id(m)])
    return seen
