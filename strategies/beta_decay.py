"""β-DARTS's Beta-Decay regularisation of the architecture step, a remedy for DARTS's collapse.

Ye et al., "β-DARTS: Beta-Decay Regularization for Differentiable Architecture Search", CVPR
2022 (https://arxiv.org/abs/2203.01665): the architecture loss gets λ · L_β, with

    L_β = mean over decisions d of log Σ_k exp(α_{d,k})

(the smooth maximum of each decision's α). Its gradient on α_{d,k} is softmax(α_d)_k / D: the
stronger a candidate, the more it decays, which keeps the relaxation's weights β = softmax(α)
from running away to one (parameter-free) candidate early. λ ramps linearly over the
architecture epochs, as in the paper's linear schedule. Set by ``search.collapse.beta_decay``
(the final λ; 0: off).
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["beta_decay_loss", "beta_decay_weight"]


def beta_decay_loss(alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_β: the mean over the decisions' α tensors (each flattened to its candidates) of their
    log-sum-exp."""
    if not alphas:
        raise ValueError("no architecture parameters to regularise")
    return torch.stack([torch.logsumexp(a.reshape(-1), dim=0) for a in alphas]).mean()


def beta_decay_weight(final: float, epoch: int, warmup_epochs: int, epochs: int) -> float:
    """λ at ``epoch`` (0-based): 0 during the warm-up, then ``final`` · (e + 1) / E over the E
    architecture epochs e = 0..E-1 (``final`` in the last)."""
    searched = epochs - warmup_epochs
    if final == 0 or epoch < warmup_epochs or searched <= 0:
        return 0.0
    return final * min(epoch - warmup_epochs + 1, searched) / searched
