"""Every YAML under configs/ loads, validates, and builds its dataset on synthetic data."""
from pathlib import Path

import pytest

from search_space.supernet import space_labels
from trainers.data.codec import batch_targets
from trainers.config.experiment import load_config
from trainers.data.registry import build_dataset
from trainers.data.loader import build_loader

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").rglob("*.yaml"))


def test_every_config_the_readme_names_exists_and_is_smoke_tested():
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    named = {Path(__file__).resolve().parent.parent / m
             for m in re.findall(r"configs/[\w/.-]+\.yaml", readme)}
    assert named and named <= set(CONFIGS), sorted(str(p) for p in named - set(CONFIGS))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_loads_and_feeds_a_batch(path, coco_root, mpii_root):
    if path.parent.name == "train":  # recipes are fragments, used with a dataset file
        cfg = load_config(path, ["dataset.name", "coco", "dataset.root", str(coco_root)])
        assert cfg.train.epochs > 0 and cfg.train.batch_size > 0
        return
    if path.parent.name == "spaces":  # search-space fragments: the space builds, with choices
        cfg = load_config(path, ["dataset.name", "coco", "dataset.root", str(coco_root)])
        assert len(space_labels(cfg.space, "coco")) > 0
        return
    cfg = load_config(path)
    root = coco_root if cfg.dataset.name == "coco" else mpii_root
    cfg = load_config(path, ["dataset.root", str(root)])
    ds = build_dataset(cfg, "train")
    batch = next(iter(build_loader(ds, 2, shuffle=False, num_workers=0)))
    h, w = cfg.model.input_size
    assert batch["image"].shape == (2, h, w, 3)
    assert batch_targets(batch).shape == (2, ds.num_joints, h // 4, w // 4)
    if path.parent.name == "search":  # a search config describes a space with decisions
        assert len(space_labels(cfg.space, cfg.dataset.name)) > 0
