"""A dataset of your own keypoints, end to end through the real commands: the synthetic 12-joint
custom layout (names and skeleton only in the annotation file, sigmas in the config) is
searched for one epoch, pruned, trained, tested (its AP checked against pycocotools with the
config's sigmas), evaluated from the results file and drawn."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from tests.conftest import CONFIGS, run_module
from trainers.data.synthetic.coco_family import CUSTOM_POINTS

SIGMAS = [0.035, 0.05, 0.107, 0.072, 0.072, 0.062, 0.062, 0.087, 0.087, 0.089, 0.089, 0.079]


def _pycocotools_ap(gt_file, results_file) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(json.loads(results_file.read_text())), "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(SIGMAS)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return float(ev.stats[0])


@pytest.mark.e2e
def test_custom_keypoints_search_prune_train_test_draw(tmp_path):
    root = tmp_path / "data"
    r = run_module("-m", "trainers.data.synthetic", "--format", "custom", "--out", str(root),
                   "--train", "24", "--val", "6", "--seed", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = tmp_path / "custom.yaml"
    cfg.write_text(
        f"_base_: {CONFIGS / 'search' / 'synthetic_tiny.yaml'}\n"
        f"name: custom_e2e\noutput_dir: {tmp_path / 'runs'}\n"
        f"dataset: {{name: custom, root: {root}, sigmas: {SIGMAS}, upper_body: [0, 1, 3, 4, 5, 6, 11],"
        " num_joints_half_body: 4}\n"
        "model: {input_size: [64, 48], sigma: 1.5}\n"
        "train: {epochs: 1, batch_size: 8, num_workers: 0}\n"
        "test: {batch_size: 8, metric: PCK}\n"
        "search: {epochs: 1, warmup_epochs: 0, batch_size: 8}\n")
    r = run_module("-m", "strategies.search", "--cfg", str(cfg), "--strategy", "darts", "--out",
                   str(tmp_path / "search"), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    arch = json.loads((tmp_path / "search" / "arch.json").read_text())
    # the layout, completed from the categories, travels in the arch file
    assert arch["config"]["dataset"]["keypoints"] == list(CUSTOM_POINTS)
    assert sorted(arch["config"]["dataset"]["parts"]) == ["3", "5", "8"]
    r = run_module("-m", "strategies.prune", "--arch", str(tmp_path / "search" / "arch.json"),
                   "--out", str(tmp_path / "derived.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_module("trainers/train_derived.py", "--cfg", str(cfg), "--arch", str(tmp_path / "derived.json"),
                   "--out", str(tmp_path / "train"), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    # test.metric PCK picked the best checkpoint; AP, AUC and EPE are reported beside it
    assert metrics["metric"] == "PCK" and metrics["best"] == metrics["epochs"][-1]["PCK"]
    assert {"AP", "PCK", "AUC", "EPE"} <= set(metrics["epochs"][-1])
    r = run_module("trainers/test.py", "--cfg", str(cfg), "--weights", str(tmp_path / "train" / "best.ckpt"),
                   "--out", str(tmp_path / "eval"), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    reported = json.loads(r.stdout.strip().splitlines()[-1])
    results = next((tmp_path / "eval").rglob("keypoints_val2017_results.json"))
    assert all(len(p["keypoints"]) == 36 for p in json.loads(results.read_text()))
    gt_file = root / "annotations" / "person_keypoints_val2017.json"
    assert reported["AP"] == pytest.approx(_pycocotools_ap(gt_file, results), abs=1e-12)
    r = run_module("-m", "trainers.evaluate", "--cfg", str(cfg), "--gt", str(gt_file),
                   "--results", str(results), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["AP"] == pytest.approx(reported["AP"])
    image = sorted((root / "images" / "val2017").glob("*.jpg"))[0]
    r = run_module("-m", "visualize.demo", "--weights", str(tmp_path / "train" / "best.ckpt"),
                   "--image", str(image), "--out", str(tmp_path / "demo.png"), "--kpt-thr", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "demo.png").is_file() and "drew 1 person(s)" in r.stdout
