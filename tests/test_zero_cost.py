"""Zero-cost proxies (strategies.zero_cost) on hand-worked networks."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from strategies.zero_cost import PROXIES, naswot, param_count, score_all, synflow


class _Codes(nn.Module):
    """A 1×1 conv reading the (non-negative) input, and one reading a negated copy."""

    def __init__(self) -> None:
        super().__init__()
        self.read = nn.Conv2d(1, 1, 1)
        self.negative = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.read(x) + self.negative(-x - 1)


def test_naswot_is_log_det_of_the_agreement_kernel():
    # two images, 3 units: codes (1, 0, 1) and (1, 1, 0) agree on 1 unit, so
    # K_H = [[3, 1], [1, 3]], det 8; the conv with a negative input is not a ReLU code
    images = torch.tensor([[1.0, 0.0, 2.0], [0.5, 3.0, 0.0]]).view(2, 1, 1, 3)
    net = _Codes().eval()
    assert naswot(net, images) == pytest.approx(math.log(8.0))
    assert not net.training  # left as it was
    # identical codes: a singular kernel, log |det| = -inf
    assert naswot(net, images[:1].repeat(2, 1, 1, 1)) == float("-inf")


def test_synflow_of_two_convs_by_hand():
    # |w1| = 2, |w2| = 3, BN left out, all-ones 2×2 input: R = 4 · 3 · 2 = 24;
    # ∂R/∂w1 = 4 · 3 = 12 → 24, ∂R/∂w2 = 4 · 2 = 8 → 24: synflow 48
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1),
                        nn.Conv2d(1, 1, 1, bias=False))
    with torch.no_grad():
        net[0].weight.fill_(-2.0)
        net[2].weight.fill_(3.0)
        net[1].weight.fill_(5.0)  # would scale R if BN were kept
    assert synflow(net, torch.randn(4, 1, 2, 2)) == pytest.approx(math.log(48.0))
    assert net[0].weight.item() == -2.0 and isinstance(net[1], nn.BatchNorm2d)  # untouched
    assert net[0].weight.dtype == torch.float32


def test_params_and_every_proxy_on_a_pose_network():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))
    assert param_count(net, torch.zeros(2, 3, 8, 6)) == 3 * 4 * 9 + 4 + 4 * 2 + 2
    scores = score_all(net, torch.randn(4, 3, 8, 6))
    assert set(scores) == set(PROXIES) == {"params", "flops", "naswot", "synflow"}
    assert all(isinstance(v, float) for v in scores.values()) and scores["flops"] > 0
