"""Every YAML under configs/ loads, validates, and builds its dataset on synthetic data."""
from pathlib import Path

import pytest

from search_space.supernet import space_labels
from trainers.data.heatmap_targets import BatchTargets
from trainers.config.experiment import load_config
from trainers.data.registry import build_dataset
from trainers.data.loader import build_loader
from tests.conftest import dataset_root

def yaml_dataset_name(path: Path) -> str:
    """``dataset.name`` of a config file, through its bases (without loading it: a custom
    dataset's config needs its annotation file to load)."""
    import yaml

    data = yaml.safe_load(path.read_text())
    name = (data.get("dataset") or {}).get("name")
    if name:
        return name
    bases = data.get("_base_", [])
    for base in [bases] if isinstance(bases, str) else bases:
        name = yaml_dataset_name(path.parent / base)
        if name:
            return name
    return ""


CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").rglob("*.yaml"))


def test_every_config_the_readme_names_exists_and_is_smoke_tested():
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    named = {Path(__file__).resolve().parent.parent / m
             for m in re.findall(r"configs/[\w/.-]+\.yaml", readme)}
    assert named and named <= set(CONFIGS), sorted(str(p) for p in named - set(CONFIGS))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_loads_and_feeds_a_batch(path, coco_root, mpii_root, family_roots):
    if path.parent.name == "train":  # recipes are fragments, used with a dataset file
        cfg = load_config(path, ["dataset.name", "coco", "dataset.root", str(coco_root)])
        assert cfg.train.epochs > 0 and cfg.train.batch_size > 0
        return
    if path.parent.name == "spaces":  # search-space fragments: the space builds, with choices
        cfg = load_config(path, ["dataset.name", "coco", "dataset.root", str(coco_root)])
        assert len(space_labels(cfg.space, "coco")) > 0
        return
    name = yaml_dataset_name(path)
    cfg = load_config(path, ["dataset.root", str(dataset_root(name, coco_root, mpii_root, family_roots))])
    ds = build_dataset(cfg, "train")
    batch = next(iter(build_loader(ds, 2, shuffle=False, num_workers=0)))
    h, w = cfg.model.input_size
    assert batch["image"].shape == (2, h, w, 3)
    assert BatchTargets(ds.codec)(batch)[0].shape == (2, ds.num_joints, h // 4, w // 4)
    if path.parent.name == "search":  # a search config describes a space with decisions
        assert len(space_labels(cfg.space, cfg.dataset.name)) > 0


NETWORK_CONFIGS = [p for p in CONFIGS if p.parent.name in ("models", "search")]


@pytest.mark.e2e  # full-size networks (HRNet-W48 included): ~1.5 min in all, not for the edit loop
@pytest.mark.parametrize("path", NETWORK_CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_builds_its_network_and_takes_a_loss_step(path, coco_root, mpii_root):
    """Each model config's network (a search config's: a random architecture of its space,
    frozen) takes one training step on a batch of its dataset: finite loss, a gradient on every
    trainable tensor, weights that move. At 96×64 (the structure does not depend on the input
    size; the full sizes are the batch test's)."""
    import numpy as np
    import torch

    from search_space.pose_space import freeze
    from search_space.supernet import build
    from trainers.data.topdown import normalize_images
    from trainers.engine.losses import JointsMSELoss
    from trainers.network.build import build_network, network_spec

    name = load_config(path).dataset.name
    size = "96x64" if name == "coco" else "64x64"
    cfg = load_config(path, ["dataset.root", str(coco_root if name == "coco" else mpii_root),
                             "model.input_size", size, "model.pretrained", ""])
    torch.manual_seed(0)
    if path.parent.name == "search":
        labels = build(cfg.space, cfg.dataset.name).simplify()
        rs = np.random.RandomState(0)
        net = freeze(cfg.space, cfg.dataset.name, {k: m.random(random_state=rs) for k, m in labels.items()})
    else:
        net = build_network(network_spec(cfg), quant=cfg.quant)
    ds = build_dataset(cfg, "train")
    batch = next(iter(build_loader(ds, 2, shuffle=False, num_workers=0)))
    net.train()
    out = net(normalize_images(batch["image"], cfg.dataset.color_rgb))
    target, target_weight = BatchTargets(ds.codec)(batch)
    assert out.shape == target.shape
    loss = JointsMSELoss(use_target_weight=True)(out, target, target_weight)
    assert torch.isfinite(loss) and loss > 0
    before = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}
    torch.optim.SGD(net.parameters(), lr=0.1).zero_grad()
    loss.backward()
    no_grad = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{len(no_grad)} trainable tensors get no gradient, e.g. {no_grad[:3]}"
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    assert any(not torch.equal(before[n], p) for n, p in net.named_parameters() if n in before)
