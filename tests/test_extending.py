"""README "Extending": each example registration, as written there, works end to end."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from nni.nas.strategy import GridSearch, GumbelDARTS
from torch import nn

from search_space import backbones, operations
from search_space.backbone_plan import BackboneFamily, BackbonePlan
from search_space.backbones import Backbone
from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig
from search_space.counting import param_flop_report
from search_space.errors import UserInputError
from search_space.families import FAMILIES
from search_space.inherit import inherit_weights
from search_space.joints import KEYPOINT_SPECS, KeypointSpec
from search_space.layers import batch_norm, conv2d
from search_space.layouts import hrnet_layout
from search_space.models import build_model
from search_space.operations import OPERATIONS, _bn  # noqa: F401  (the README example uses them)
from search_space.pose_space import freeze
from search_space.supernet import build
from strategies import registry
from strategies.multitrial import make_nni_strategy, run_multitrial
from strategies.nnictl.space_json import choices_from_parameters, nni_search_space
from strategies.oneshot import make_oneshot_strategy
from strategies.oneshot_modules import SyncModule
from strategies.registry import StrategyEntry
from tests.conftest import REPO, random_sample, supernet_under, tiny_config, tiny_space
from trainers.data.coco import CocoKeypoints, coco_paths
from trainers.data.registry import BUILT_IN, DATASETS, DatasetEntry
from trainers.deploy import export as export_command
from trainers.deploy.drawing import draw_people
from trainers.deploy.meta import write_meta
from trainers.deploy.targets import EXPORT_TARGETS, ExportTarget, deploy_meta
from trainers.engine.fit import evaluate_model, fit
from trainers.evaluate import evaluate_files
from trainers.network.arch_file import check_choices
from trainers.evaluation.prediction import predict_image

README = (REPO / "README.md").read_text()


def _example(name: str) -> str:
    """The README's code block that registers ``name`` (``REGISTRY["name"] = ...``)."""
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        if re.search(r'^\s*[A-Z_]+\["%s"\] =' % re.escape(name), block, re.M):
            lines = block.splitlines()
            indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
            return "\n".join(l[indent:] for l in lines)
    raise AssertionError(f"README has no example registering {name}")


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


# --------------------------------------------------------------------------------------------
# a backbone family: the file a user writes (module + plan), registered as the README shows

class PyramidNet(nn.Module):
    """A stride-4 stem and three stride-2 stages: levels at 1/4, 1/8, 1/16, 1/32 (N, C_l, ...)."""

    def __init__(self, widths) -> None:
        super().__init__()
        c0 = widths[0]
        self.stem = nn.Sequential(conv2d(3, c0, 3, 2, 1), batch_norm(c0), nn.ReLU(),
                                  conv2d(c0, c0, 3, 2, 1), batch_norm(c0), nn.ReLU())
        self.downs = nn.ModuleList(
            nn.Sequential(conv2d(a, b, 3, 2, 1), batch_norm(b), nn.ReLU())
            for a, b in zip(widths, widths[1:]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [self.stem(x)]
        for down in self.downs:
            levels.append(down(levels[-1]))
        return levels


def pyramid_plan(layout, options, chooser, plain, levels) -> BackbonePlan:
    """Widths of each level chosen from the multipliers (largest first), as HRNet's are."""
    mult = options.width_multipliers
    widths = tuple(
        chooser.width(f"pyramid/level{i}/width",
                      sorted({max(1, round(w * m)) for m in mult}, reverse=True)) if mult else w
        for i, w in enumerate(layout))
    return BackbonePlan(widths, lambda used: PyramidNet(widths))


def test_a_new_backbone_family_is_one_file_and_one_entry(monkeypatch):
    monkeypatch.setitem(FAMILIES, "pyramid", None)  # restored after the test
    monkeypatch.setitem(backbones.BACKBONES, "pyramid_tiny", None)
    exec(_example("pyramid"), {"FAMILIES": FAMILIES, "BackboneFamily": BackboneFamily,
                               "pyramid_plan": pyramid_plan, "BACKBONES": backbones.BACKBONES,
                               "Backbone": Backbone})
    space = SpaceConfig(backbone=BackboneSpaceConfig(name="pyramid_tiny",
                                                     width_multipliers=(0.5, 1.0)),
                        parts_num=3, cell_config=CellConfig(depth=4, cut_layers_num=2, factor=4,
                                                            vector_dim=4))
    supernet = build(space, "coco")
    labels = set(supernet.simplify())
    assert {f"pyramid/level{i}/width" for i in range(4)} <= labels
    assert any(label.startswith("part2/fabric") for label in labels)
    sample = random_sample(supernet, 5)
    sample = {**sample, "pyramid/level1/width": 8, "pyramid/level3/width": 32}  # the half widths
    net = freeze(space, "coco", sample).eval()
    assert isinstance(net.backbone, PyramidNet)
    assert [m.out_channels for m in net.backbone.downs.modules() if isinstance(m, nn.Conv2d)] \
        == [8, sample["pyramid/level2/width"], 32]
    x = torch.randn(2, 3, 64, 48)
    assert net(x).shape == (2, 17, 16, 12)
    sup = supernet_under(space, "coco", sample, seed=2)
    inherit_weights(net, sup.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(net(x), sup(x), rtol=1e-4, atol=1e-5)
    report = param_flop_report(net, (64, 48))
    assert report["params"] == sum(p.numel() for p in net.parameters()) and report["macs"] > 0
    with pytest.raises(ValueError, match="pyramid family"):  # capabilities come from the entry
        BackboneSpaceConfig(name="pyramid_tiny", stages=2)


# --------------------------------------------------------------------------------------------
# strategies

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


def _trial_config(root: Path, *extra: str):
    return tiny_config("coco", root, "search.trial_epochs", "1", "search.batch_size", "8",
                       "train.num_workers", "0", "test.flip_test", "false", "seed", "3",
                       "space.backbone.name", "hrnet_tiny", "space.backbone.stages", "3",
                       "space.parts_num", "1", "space.cell_config.depth", "3",
                       "space.cell_config.cut_layers_num", "1", "space.cell_config.factor", "4",
                       "space.cell_config.vector_dim", "4", *extra)


def test_nni_multitrial_strategies_are_entries_tpe_and_a_new_one_run(monkeypatch, coco_root,
                                                                      tmp_path):
    """TPE (registered) and a README-registered GridSearch run in process, two trials each,
    through the same trial path as random search: distinct architectures, finite AP."""
    monkeypatch.setitem(registry.STRATEGIES, "grid_ordered", None)
    exec(_example("grid_ordered"), {"STRATEGIES": registry.STRATEGIES,
                                    "StrategyEntry": StrategyEntry, "GridSearch": GridSearch})
    cfg = _trial_config(coco_root, "search.num_trials", "2")
    grid = make_nni_strategy("grid_ordered", cfg)
    assert isinstance(grid, GridSearch) and grid.shuffle is False
    for name in ("tpe", "grid_ordered"):
        summary = run_multitrial(cfg, name, tmp_path / name)
        records = summary["history"]
        assert [r["status"] for r in records] == ["succeeded", "succeeded"], records
        assert records[0]["choices"] != records[1]["choices"]
        assert all(np.isfinite(r["AP"]) for r in records)
        arch = json.loads((tmp_path / name / "arch.json").read_text())
        assert arch["metrics"]["strategy"] == name


def test_tpe_experiment_file_drives_trials_nnictl_would_run():
    """experiments/pnfs_synthetic_tpe.yml: NNI's TPE tuner, built as nnictl's dispatcher builds
    it from the file, proposes parameters of the exported space that trial.py accepts."""
    from nni.experiment.config import ExperimentConfig
    from nni.tools.package_utils.tuner_factory import create_builtin_class_instance

    path = REPO / "experiments" / "pnfs_synthetic_tpe.yml"
    exp = yaml.safe_load(path.read_text())
    ExperimentConfig(**{k: v for k, v in exp.items()})  # NNI's own schema check
    base = yaml.safe_load((REPO / "experiments" / "pnfs_synthetic.yml").read_text())
    assert exp["trialCommand"] == base["trialCommand"] and exp["tuner"]["name"] == "TPE"
    assert "trainers/trial.py" in exp["trialCommand"]
    tuner = create_builtin_class_instance(exp["tuner"]["name"], exp["tuner"]["classArgs"],
                                          "tuners")
    space_file = path.parent / exp["searchSpaceFile"]
    space = json.loads(space_file.read_text())
    from trainers.config.experiment import load_config
    cfg = load_config(REPO / "configs/search/synthetic_tiny.yaml")
    assert space == nni_search_space(cfg.space, cfg.dataset.name)  # the file is current
    tuner.update_search_space(space)
    proposals = [choices_from_parameters(tuner.generate_parameters(i)) for i in range(3)]
    for choices in proposals:
        check_choices(cfg, choices, "tuner")  # raises if a label or value does not fit
    assert len({json.dumps(c, sort_keys=True) for c in proposals}) == 3


# --------------------------------------------------------------------------------------------
# a dataset with another keypoint count

_FROM_COCO = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0)  # crowd14 joints 0-12 from COCO's


def _to_crowd14(kpts: list[float]) -> list[float]:
    k = np.asarray(kpts, float).reshape(17, 3)
    out = k[list(_FROM_COCO)].tolist()
    both = k[5, 2] > 0 and k[6, 2] > 0
    neck = [*(k[5, :2] + k[6, :2]) / 2, min(k[5, 2], k[6, 2])] if both else [0.0, 0.0, 0.0]
    return [float(v) for v in np.concatenate([np.asarray(out).ravel(), neck])]


def _write_crowd14(coco_root: Path, out: Path) -> Path:
    """The synthetic COCO data re-annotated in a CrowdPose-like 14-joint layout (COCO format)."""
    (out / "annotations").mkdir(parents=True)
    for entry in coco_root.iterdir():
        if entry.name != "annotations":
            os.symlink(entry, out / entry.name)
    for split in ("train2017", "val2017"):
        data = json.loads((coco_root / "annotations" / f"person_keypoints_{split}.json").read_text())
        for ann in data["annotations"]:
            ann["keypoints"] = _to_crowd14(ann["keypoints"])
            ann["num_keypoints"] = int(sum(v > 0 for v in ann["keypoints"][2::3]))
        data["categories"] = [{"id": 1, "name": "person",
                               "keypoints": list(KEYPOINT_SPECS["crowd14"].names),
                               "skeleton": [list(p) for p in KEYPOINT_SPECS["crowd14"].skeleton]}]
        (out / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(data))
    return out


def _pycocotools_ap(gt_file: Path, results_file: Path, sigmas) -> float:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(json.loads(results_file.read_text())), "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_a_new_dataset_with_14_joints_trains_tests_evaluates_and_draws(monkeypatch, coco_root,
                                                                       tmp_path):
    monkeypatch.setitem(KEYPOINT_SPECS, "crowd14", None)
    monkeypatch.setitem(DATASETS, "crowd14", None)
    exec(_example("crowd14"), {"KEYPOINT_SPECS": KEYPOINT_SPECS, "KeypointSpec": KeypointSpec,
                               "DATASETS": DATASETS, "DatasetEntry": DatasetEntry,
                               "CocoKeypoints": CocoKeypoints})
    spec = KEYPOINT_SPECS["crowd14"]
    root = _write_crowd14(coco_root, tmp_path / "crowd14")
    cfg = tiny_config("coco", root, "dataset.name", "crowd14", "train.epochs", "1",
                      "train.batch_size", "8", "train.num_workers", "0", "test.batch_size", "8")
    # the part-specific heads group its joints as its spec says
    parts = freeze(tiny_space(parts_num=3), "crowd14", random_sample(build(tiny_space(3), "crowd14"), 0))
    assert [p.joints for p in parts.parts] == [(12, 13, 0, 1), (2, 3, 4, 5), (6, 7, 8, 9, 10, 11)]
    assert parts(torch.randn(1, 3, 64, 48)).shape == (1, 14, 16, 12)
    with pytest.raises(UserInputError) as err:  # a part count its layout does not group
        freeze(tiny_space(parts_num=5), "crowd14", {})
    assert err.value.field == "space.parts_num" and "3 parts, not 5" in err.value.message
    torch.manual_seed(0)
    net = build_model("hrnet_tiny", "crowd14")
    summary = fit(cfg, net, {"name": "hrnet_tiny"}, tmp_path / "train", progress=False)
    assert (tmp_path / "train" / "best.ckpt").is_file() and len(summary["history"]) == 1
    result = evaluate_model(cfg, net.eval(), tmp_path / "test", progress=False)
    results_file = next((tmp_path / "test").rglob("keypoints_val2017_results.json"))
    people = json.loads(results_file.read_text())
    assert people and all(len(p["keypoints"]) == 3 * 14 for p in people)
    gt_file = root / "annotations" / "person_keypoints_val2017.json"
    expected = _pycocotools_ap(gt_file, results_file, spec.sigmas)
    assert result["metrics"]["AP"] == pytest.approx(expected, abs=1e-9)
    assert evaluate_files("crowd14", str(gt_file), str(results_file))["AP"] == pytest.approx(expected)
    image_info = json.loads(gt_file.read_text())["images"][0]
    image = cv2.imread(str(coco_paths(str(root), "val2017")[1] / image_info["file_name"]))
    boxes = [a["bbox"] for a in json.loads(gt_file.read_text())["annotations"]
             if a["image_id"] == image_info["id"]]
    keypoints = predict_image(net, cfg, image, boxes)
    assert keypoints.shape == (len(boxes), 14, 3)
    report = draw_people(image.copy(), boxes, keypoints, spec, 0.0, str(tmp_path / "demo.png"))
    drawn = cv2.imread(str(tmp_path / "demo.png"))
    assert "demo.png" in report and drawn.shape == image.shape and (drawn != image).any()


# --------------------------------------------------------------------------------------------
# an export target

def test_a_new_export_target_is_one_function_and_one_entry(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(EXPORT_TARGETS, "torchscript", None)
    exec(_example("torchscript"), {"EXPORT_TARGETS": EXPORT_TARGETS, "ExportTarget": ExportTarget,
                                   "torch": torch, "write_meta": write_meta,
                                   "deploy_meta": deploy_meta})
    torch.manual_seed(0)
    net = build_model("hrnet_tiny", "coco").eval()
    torch.save(net.state_dict(), tmp_path / "tiny.pth")
    out = tmp_path / "tiny.pt"
    assert export_command.main(["--weights", str(tmp_path / "tiny.pth"), "--model", "hrnet_tiny",
                                "--input-size", "64x48", "--target", "torchscript",
                                "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out))(x), net(x))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["input_size"] == [64, 48] and len(meta["joints"]) == 17


def test_datasets_and_keypoints_have_the_same_names():
    # every built-in dataset has its layout; a custom one's is registered when its config loads
    assert sorted(BUILT_IN - {"custom"}) == sorted(n for n in KEYPOINT_SPECS if n in BUILT_IN - {"custom"})
