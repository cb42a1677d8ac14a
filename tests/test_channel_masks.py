"""Width choices under DARTS: the vector channel masks compute NNI's relaxation."""
from __future__ import annotations

import pytest
import torch
from nni.mutable import Categorical
from nni.nas.nn.pytorch import ModelSpace, MutableBatchNorm2d, MutableConv2d
from nni.nas.oneshot.pytorch.supermodule.operation import MixedBatchNorm2d, MixedConv2d
from nni.nas.strategy import DARTS, GumbelDARTS

from search_space.supernet import build
from strategies.channel_masks import (WIDTH_HOOKS, ChannelMaskedConv2d, MaxWidthBatchNorm2d,
                                      channel_mask, mask_channels)
from strategies.oneshot import make_oneshot_strategy
from tests.conftest import tiny_config, tiny_space


def test_channel_mask_by_hand():
    # widths 4, 2, 1 with probabilities 0.5, 0.3, 0.2: channel 0 is in every candidate (1.0),
    # channel 1 in the widths 4 and 2 (0.8), channels 2-3 in width 4 alone (0.5)
    p = {4: torch.tensor(0.5), 2: torch.tensor(0.3), 1: torch.tensor(0.2)}
    assert channel_mask(p, 4).tolist() == pytest.approx([1.0, 0.8, 0.5, 0.5])
    w = torch.ones(4, 3, 1, 1)
    assert mask_channels(w, 0, p)[:, 0, 0, 0].tolist() == pytest.approx([1.0, 0.8, 0.5, 0.5])
    assert mask_channels(w, 1, 2).shape == (4, 2, 1, 1)  # a sampled width: a prefix slice
    assert mask_channels(w, 1, 3) is w


class _ConvBN(ModelSpace):
    """A 3×3 convolution with bias whose output width is a choice, and its input width too
    (another choice, or the same one: a residual block's branch width), then batch norm."""

    def __init__(self, same_label: bool) -> None:
        super().__init__()
        c_out = Categorical([8, 6, 3], label="out")
        c_in = c_out if same_label else Categorical([8, 4, 2], label="in")
        self.conv = MutableConv2d(c_in, c_out, 3, padding=1, bias=True)
        self.bn = MutableBatchNorm2d(c_out, momentum=0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


@pytest.mark.parametrize("strategy_cls", [DARTS, GumbelDARTS])
@pytest.mark.parametrize("same_label", [False, True])
def test_masked_conv_computes_nnis_mixed_conv(same_label, strategy_cls):
    """NNI's own MixedConv2d (weight-sized masks) and MixedBatchNorm2d are the reference: the
    same output, running statistics and gradients for α and the weights under the same α
    (DARTS: our direct forward; GumbelDARTS: NNI's forward with our masks, the same noise)."""
    results = []
    for hooks in ([], list(WIDTH_HOOKS)):
        torch.manual_seed(0)
        strategy = strategy_cls(mutation_hooks=hooks)
        net = strategy.mutate_model(_ConvBN(same_label)).double()
        alphas = list(strategy._arch_parameters.values())
        with torch.no_grad():
            for a in alphas:
                a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(1)))
        op = net.conv
        x = torch.randn(2, 8, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        y = net(x)
        loss = (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum()
        grads = torch.autograd.grad(loss, [*alphas, op.weight, op.bias, net.bn.weight])
        results.append(((type(op), type(net.bn)), y, net.bn.running_mean, net.bn.running_var,
                        *grads))
        if hooks:  # DARTS takes the direct forwards; Gumbel's noisy softmax keeps NNI's
            direct = strategy_cls is DARTS
            assert (op._direct is not None) is direct and net.bn._direct is direct
    (ref_types, *reference), (our_types, *ours) = results
    assert ref_types == (MixedConv2d, MixedBatchNorm2d)
    assert our_types == (ChannelMaskedConv2d, MaxWidthBatchNorm2d)
    assert len(ours) == 3 + (1 if same_label else 2) + 3
    for ref, got in zip(reference, ours):
        assert torch.allclose(got, ref, rtol=1e-12, atol=1e-12)
    # the relaxation reaches every candidate: each α entry has a gradient
    assert all((g.abs() > 1e-9).all() for g in ours[3:-3])


@pytest.mark.parametrize("strategy", ["darts", "spos"])
def test_one_shot_strategies_build_masked_convolutions(strategy, tmp_path):
    cfg = tiny_config("coco", tmp_path)
    supernet = make_oneshot_strategy(strategy, cfg).mutate_model(
        build(tiny_space(widths=(0.5, 1.0)), "coco"))
    for nni_cls, ours in ((MixedConv2d, ChannelMaskedConv2d),
                          (MixedBatchNorm2d, MaxWidthBatchNorm2d)):
        mixed = [m for m in supernet.modules() if isinstance(m, nni_cls)]
        assert mixed and all(type(m) is ours for m in mixed)
