"""Second-order (unrolled) DARTS: the architecture gradient of Liu et al., "DARTS: Differentiable
Architecture Search" (ICLR 2019, https://arxiv.org/abs/1806.09055), eq. 7-8 — NNI 3.0 has only
the first-order approximation. The maths of DARTS's ``architect.py``
(``_backward_step_unrolled`` / ``_hessian_vector_product``), as one function over parameter
lists, so it can be checked against autograd's exact second order.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["unrolled_arch_gradient"]


def _loss_grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


@torch.no_grad()
def _add_(params: Sequence[torch.Tensor], deltas: Sequence[torch.Tensor], scale: float) -> None:
    for p, d in zip(params, deltas):
        p.add_(d, alpha=scale)


def unrolled_arch_gradient(weights: Sequence[nn.Parameter], arch: Sequence[nn.Parameter],
                           train_loss: Callable[[], torch.Tensor],
                           val_loss: Callable[[], torch.Tensor], xi: float,
                           buffers: Sequence[torch.Tensor] = (),
                           epsilon: float = 0.01) -> list[torch.Tensor]:
    """The architecture gradient of second-order DARTS (Liu et al., 2019, eq. 7-8):

    ∇α L_val(w', α) − ξ ∇²α,w L_train(w, α) · ∇w' L_val(w', α),  with w' = w − ξ ∇w L_train(w, α),

    the Hessian-vector product by central finite differences at w ± ε ∇w' L_val,
    ε = epsilon / ‖∇w' L_val‖. ``train_loss``/``val_loss`` run the model on fixed batches.

    Weights and ``buffers`` (BN running statistics, which the extra forward passes update) are
    restored bit for bit: after this call the network is exactly as before it.
    """
    saved_w = [w.detach().clone() for w in weights]
    saved_b = [b.detach().clone() for b in buffers]
    try:
        # virtual step w' = w − ξ ∇w L_train(w, α)
        g_train = _loss_grads(train_loss(), list(weights))
        _add_(weights, g_train, -xi)
        # ∇α L_val(w', α) and ∇w' L_val(w', α)
        grads = _loss_grads(val_loss(), list(arch) + list(weights))
        d_arch, d_w = grads[:len(arch)], grads[len(arch):]
        with torch.no_grad():
            for w, s in zip(weights, saved_w):
                w.copy_(s)
        norm = torch.sqrt(sum((d * d).sum() for d in d_w))
        eps = epsilon / max(float(norm), 1e-12)
        _add_(weights, d_w, eps)  # w+ = w + ε dw'
        g_pos = _loss_grads(train_loss(), list(arch))
        _add_(weights, d_w, -2 * eps)  # w- = w − ε dw'
        g_neg = _loss_grads(train_loss(), list(arch))
        return [da - xi * (gp - gn) / (2 * eps) for da, gp, gn in zip(d_arch, g_pos, g_neg)]
    finally:
        with torch.no_grad():
            for w, s in zip(weights, saved_w):
                w.copy_(s)
            for b, s in zip(buffers, saved_b):
                b.copy_(s)
