"""README "Extending": each example registration, as written there, works end to end."""
from __future__ import annotations

import re

import torch
from nni.nas.strategy import GumbelDARTS
from torch import nn

from search_space import backbones, operations
from search_space.backbones import Backbone
from search_space.config import BackboneSpaceConfig, SpaceConfig
from search_space.inherit import inherit_weights
from search_space.layouts import hrnet_layout
from search_space.joints import KEYPOINT_SPECS
from search_space.operations import OPERATIONS, _bn  # noqa: F401  (the README example uses them)
from search_space.pose_space import freeze
from search_space.supernet import build
from strategies import registry
from strategies.oneshot import make_oneshot_strategy
from strategies.oneshot_modules import SyncModule
from strategies.registry import StrategyEntry
from tests.conftest import REPO, random_sample, supernet_under, tiny_config, tiny_space
from trainers.data.datasets import DATASETS

README = (REPO / "README.md").read_text()


def _example(name: str) -> str:
    """The README's code line that registers ``name``."""
    block = re.search(r'```python\n(\s*[A-Z_]+\["%s"\][^`]*)```' % name, README)
    assert block, f"README has no example registering {name}"
    return "\n".join(line.strip() for line in block.group(1).splitlines())


def test_a_new_operation_is_one_entry(monkeypatch):
    monkeypatch.setattr(operations, "OPERATIONS", dict(OPERATIONS))
    exec(_example("conv_1x1"), {"OPERATIONS": operations.OPERATIONS, "nn": nn, "_bn": _bn})
    monkeypatch.setattr("search_space.config.OPERATIONS", operations.OPERATIONS)
    space = tiny_space(operators=("Zero", "skip_connect", "conv_1x1"))  # validated by name
    sup_space = build(space, "coco")
    sample = random_sample(sup_space, 3)
    sample = {k: ("conv_1x1" if k.endswith("_op") else v) for k, v in sample.items()}
    net = freeze(space, "coco", sample).eval()
    assert any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
               and m.in_channels == m.out_channels for m in net.modules())
    sup = supernet_under(space, "coco", sample, seed=1)
    inherit_weights(net, sup.state_dict())
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(net(x), sup(x), rtol=1e-4, atol=1e-5)


def test_a_new_backbone_is_one_entry(monkeypatch):
    monkeypatch.setattr(backbones, "BACKBONES", dict(backbones.BACKBONES))
    exec(_example("hrnet_w18"), {"BACKBONES": backbones.BACKBONES, "Backbone": Backbone,
                                 "hrnet_layout": hrnet_layout})
    monkeypatch.setattr("search_space.config.BACKBONES", backbones.BACKBONES)
    monkeypatch.setattr("search_space.pose_space.get_backbone", backbones.get_backbone)
    space = SpaceConfig(backbone=BackboneSpaceConfig(name="hrnet_w18"), head="plain")
    net = freeze(space, "coco", {})
    # widths 18·[1, 2, 4, 8] in the last stage, heatmaps from the 18-channel branch
    assert net.head.in_channels == 18
    assert net(torch.randn(1, 3, 64, 48)).shape == (1, 17, 16, 12)


def test_a_new_strategy_is_one_entry(monkeypatch, coco_root):
    monkeypatch.setattr(registry, "STRATEGIES", dict(registry.STRATEGIES))
    exec(_example("gumbel_sync"), {"STRATEGIES": registry.STRATEGIES,
                                   "StrategyEntry": StrategyEntry, "GumbelDARTS": GumbelDARTS,
                                   "SyncModule": SyncModule})
    monkeypatch.setattr("strategies.oneshot.STRATEGIES", registry.STRATEGIES)
    assert "gumbel_sync" in registry.strategy_names() and "gumbel_sync" in registry.describe()
    strategy = make_oneshot_strategy("gumbel_sync", tiny_config("coco", coco_root))
    assert isinstance(strategy, GumbelDARTS)
    assert isinstance(strategy.configure_oneshot_module(torch.nn.Linear(1, 1)), SyncModule)


def test_datasets_and_keypoints_have_the_same_names():
    assert list(DATASETS) == list(KEYPOINT_SPECS)
