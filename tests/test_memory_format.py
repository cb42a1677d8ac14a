"""Channels-last training (train.channels_last): the layout changes, the numbers do not."""
import copy

import pytest
import torch
from torch import nn

from trainers.data.heatmap_targets import BatchTargets
from tests.conftest import tiny_config
from trainers.engine.memory_format import channels_last_input, to_channels_last


def test_to_channels_last_relays_4d_tensors_only_and_keeps_the_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv3d(1, 2, 3))
    conv2d, conv3d = net[0].weight, net[2].weight
    before = conv2d.detach().clone()
    assert to_channels_last(net) is net
    assert net[0].weight is conv2d  # the same Parameter object (optimisers keep it)
    assert conv2d.is_contiguous(memory_format=torch.channels_last)
    assert not conv2d.is_contiguous()  # really NHWC now: 3 input channels, 3×3 kernel
    assert torch.equal(conv2d, before)
    assert conv3d.is_contiguous()  # 5-D: no channels-last layout, left alone
    assert net[1].running_mean.is_contiguous()
    x = torch.randn(2, 3, 5, 5)
    y = channels_last_input(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, y)
    assert channels_last_input(x, enabled=False) is x


@pytest.mark.parametrize("model", ["hrnet_tiny", "pnfs_hrnet_tiny_cnf3"])
def test_a_channels_last_training_step_computes_what_the_nchw_step_does(coco_root, model):
    """The layout changes no number: one training step in float64 with channels-last weights and
    inputs gives the loss and every weight gradient of the standard (NCHW) layout to 1e-10.
    (In float32 the two differ by rounding, and at 64×48 a single ReLU whose input rounds across
    zero on HRNet's 2×2 lowest branch moves that branch's gradients by ~1e-3, so float64 is
    where "same computation" can be checked.) PoseModule (float32) then trains with NHWC weights
    after setup and the same loss."""
    from search_space.models import build_model
    from trainers.data.registry import build_dataset
    from trainers.data.loader import build_loader
    from trainers.data.topdown import normalize_images
    from trainers.engine.module import PoseModule

    torch.manual_seed(0)
    net = build_model(model, "coco").train()
    cfg = tiny_config("coco", coco_root)  # the default: channels_last true
    assert cfg.train.channels_last
    ds = build_dataset(cfg, "train")
    batch = next(iter(build_loader(ds, 4, False, 0)))
    images = normalize_images(batch["image"], cfg.dataset.color_rgb).double()
    target, weight = (t.double() for t in BatchTargets(ds.codec)(batch))

    def step(network, x):
        out = network(x)
        loss = 0.5 * ((out - target) ** 2 * weight[..., None] ** 2).mean()
        loss.backward()
        return loss.detach(), [p.grad for p in network.parameters()]

    loss_nchw, grads_nchw = step(copy.deepcopy(net).double(), images)
    loss_nhwc, grads_nhwc = step(to_channels_last(copy.deepcopy(net).double()),
                                 channels_last_input(images))
    assert float(loss_nhwc) == pytest.approx(float(loss_nchw), rel=1e-12)
    assert len(grads_nchw) == len(grads_nhwc) > 10
    for got, want in zip(grads_nhwc, grads_nchw):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-14)

    module = PoseModule(copy.deepcopy(net), cfg)
    module.setup("fit")
    convs = [m.weight for m in module.model.modules()
             if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1 and m.weight.shape[2] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not any(w.is_contiguous() for w in convs)
    assert float(module.compute_loss(batch)) == pytest.approx(float(loss_nchw), rel=1e-5)


def test_validation_reports_hrnets_validation_loss(coco_root, tmp_path):
    """``loss`` among the validation metrics is JointsMSELoss of the heatmaps the metric decodes
    (HRNet's validate()), averaged over persons: checked against the loss worked out in float64
    from the network's outputs, batch by batch (flip test off)."""
    from search_space.models import build_model
    from trainers.data.registry import build_dataset
    from trainers.data.loader import build_loader
    from trainers.data.topdown import normalize_images
    from trainers.engine.fit import evaluate_model

    torch.manual_seed(0)
    net = build_model("hrnet_tiny", "coco").eval()
    cfg = tiny_config("coco", coco_root, "test.flip_test", "false", "test.batch_size", "3",
                      "train.num_workers", "0")
    result = evaluate_model(cfg, net, tmp_path / "eval", progress=False)
    total, persons = 0.0, 0
    with torch.no_grad():
        val = build_dataset(cfg, "val")
        for batch in build_loader(val, 3, False, 0):
            out = net.double()(normalize_images(batch["image"], cfg.dataset.color_rgb).double())
            target, w = BatchTargets(val.codec)(batch)
            w = w.double()[..., None]
            total += float(0.5 * ((out * w - target.double() * w) ** 2).mean()) * len(out)
            persons += len(out)
    assert persons == result["persons"] > 10 and result["metrics"]["loss"] == pytest.approx(total / persons, rel=1e-5)
