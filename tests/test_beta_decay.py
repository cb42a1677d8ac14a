"""β-DARTS's Beta-Decay regularisation (strategies.beta_decay), by hand."""
from __future__ import annotations

import math

import pytest
import torch

from strategies.beta_decay import beta_decay_loss, beta_decay_weight


def test_beta_decay_loss_is_the_mean_log_sum_exp_and_its_gradient_the_softmax():
    a = torch.zeros(2, requires_grad=True)  # log(1 + 1) = log 2
    b = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = beta_decay_loss([a, b])
    assert loss.item() == pytest.approx((math.log(2) + math.log(math.e + math.e ** 2
                                                                 + math.e ** 3)) / 2)
    loss.backward()
    # d/dα_k of log Σ exp(α) is softmax(α)_k, halved by the mean over two decisions
    assert a.grad.tolist() == pytest.approx([0.25, 0.25])
    e = [math.exp(v) for v in (1.0, 2.0, 3.0)]
    assert b.grad.tolist() == pytest.approx([v / sum(e) / 2 for v in e])
    with pytest.raises(ValueError):
        beta_decay_loss([])


def test_beta_decay_weight_ramps_over_the_architecture_epochs():
    # 5 epochs, 1 of warm-up: λ 0 while α is frozen, then 1/4, 2/4, 3/4, 4/4 of the final 2.0
    assert [beta_decay_weight(2.0, e, 1, 5) for e in range(5)] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert [beta_decay_weight(0.0, e, 0, 3) for e in range(3)] == [0.0, 0.0, 0.0]
    assert beta_decay_weight(1.0, 0, 0, 1) == 1.0
