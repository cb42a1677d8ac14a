"""Shared fixtures: small synthetic datasets in both official layouts, tiny configs."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
from nni.nas.strategy import RandomOneShot

from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig
from search_space.supernet import build
from tests.command_runner import run_command
from tests.official_layouts import randomize
from tests.xdist_groups import pytest_collection_modifyitems  # noqa: F401 (the hook)
from trainers.config.schema import Config
from trainers.config.experiment import load_config
from trainers.data.synthetic import write_coco, write_mpii

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


def _threads_per_worker() -> int | None:
    """Under pytest-xdist (``make test`` runs ``-n auto``), each worker's share of the cores.

    Every worker, and every command a test starts, would otherwise open one OpenMP thread per
    core: two workers on 2 cores then spin against each other, and tests/test_strategies.py took
    590 s instead of 166 s serial (95 s with one thread per worker)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not workers:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


if (_THREADS := _threads_per_worker()) is not None:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # inherited by the commands tests run
        os.environ[_var] = str(_THREADS)
    torch.set_num_threads(_THREADS)


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_coco")
    write_coco(root, num_train=16, num_val=10, seed=7)
    return root


@pytest.fixture(scope="session")
def mpii_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_mpii")
    write_mpii(root, num_train=10, num_val=8, seed=7)
    return root


@pytest.fixture(scope="session")
def family_roots(tmp_path_factory) -> dict[str, Path]:
    """A small synthetic dataset in each COCO-family layout (CrowdPose, OCHuman, AI Challenger,
    COCO-WholeBody, custom)."""
    from trainers.data.synthetic.coco_family import COCO_FAMILY_FORMATS, write_coco_family

    roots = {}
    for fmt in COCO_FAMILY_FORMATS:
        roots[fmt] = tmp_path_factory.mktemp(f"synthetic_{fmt}")
        write_coco_family(fmt, roots[fmt], 6, 8, seed=3)
    return roots


def dataset_root(name: str, coco_root: Path, mpii_root: Path, family_roots: dict[str, Path]) -> Path:
    """The synthetic root of dataset ``name``."""
    return {"coco": coco_root, "mpii": mpii_root}.get(name) or family_roots[name]


def tiny_config(dataset: str, root: Path, *overrides: str) -> Config:
    """A small-input config on the synthetic data."""
    base = CONFIGS / "datasets" / f"synthetic_{dataset}.yaml"
    size = "64x48" if dataset == "coco" else "64x64"
    return load_config(base, ["dataset.root", str(root), "model.input_size", size,
                              "model.sigma", "1.5", *overrides])


def run_module(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m ...`` (or a script) as a user would, in a process of its own; capture
    output. Forked from a server that imported torch, NNI and Lightning once
    (tests/command_runner.py: 9 s of CPU saved a command); ``POSENAS_TEST_FRESH_PROCESSES=1``
    starts fresh interpreters instead."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return run_command(args, cwd, env, timeout=600)


def tiny_space(parts_num: int = 3, mode: str = "2D", vector: bool = True, hidden: int = 1,
               shared: bool = True, widths=(0.5, 1.0), depth: int = 5, cut: int = 3,
               operators=("Zero", "skip_connect", "Sep_Conv_3x3", "max_pool_3x3")) -> SpaceConfig:
    return SpaceConfig(
        backbone=BackboneSpaceConfig(name="hrnet_tiny", stages=3, width_multipliers=widths),
        parts_num=parts_num,
        cell_config=CellConfig(depth=depth, cut_layers_num=cut, factor=4, vector_dim=4,
                               convolution_mode=mode, vector_in_pixel=vector,
                               hidden_states_num=hidden, one_shot_search=shared,
                               operators=operators))


def random_sample(space_model, seed: int) -> dict:
    rs = np.random.RandomState(seed)
    return {label: m.random(random_state=rs) for label, m in space_model.simplify().items()}


def supernet_under(space: SpaceConfig, dataset: str, sample: dict, seed: int):
    """NNI's weight-sharing supernet (RandomOneShot) fixed to ``sample``, with random weights and
    BN statistics so that every parameter matters."""
    sup = randomize(RandomOneShot().mutate_model(build(space, dataset)), seed, scale=0.3)
    for module in sup.modules():
        if isinstance(module, BaseSuperNetModule):
            module.resample(memo=dict(sample))
    return sup.eval()


def cocoeval_ap(gt_file: Path, results: Path | list) -> float:
    """OKS AP of ``results`` (a results file or list) against ``gt_file``, by pycocotools alone:
    the independent check of the AP our evaluation prints."""
    import contextlib
    import io
    import json

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dets = json.loads(Path(results).read_text()) if isinstance(results, (str, Path)) else results
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def mean_pose_ap(root: Path) -> float:
    """AP of the no-learning baseline: each val ground-truth box gets the training set's mean
    pose, placed relative to the box. A network that learned nothing about the image does not beat it."""
    import json

    ann = root / "annotations"
    rel = []
    for a in json.loads((ann / "person_keypoints_train2017.json").read_text())["annotations"]:
        x, y, w, h = a["bbox"]
        k = np.asarray(a["keypoints"], float).reshape(-1, 3)
        if a.get("num_keypoints", 0):
            rel.append(np.where(k[:, 2:] > 0, np.stack([(k[:, 0] - x) / w, (k[:, 1] - y) / h], 1), np.nan))
    mean = np.nanmean(np.stack(rel), 0)
    gt_file = ann / "person_keypoints_val2017.json"
    dets = []
    for a in json.loads(gt_file.read_text())["annotations"]:
        x, y, w, h = a["bbox"]
        kp = np.concatenate([np.stack([x + mean[:, 0] * w, y + mean[:, 1] * h], 1), np.ones((len(mean), 1))], 1)
        dets.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
    return cocoeval_ap(gt_file, dets)
