"""Shared fixtures: small synthetic datasets in both official layouts, tiny configs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.config import Config, load_config
from trainers.data.synthetic import write_coco, write_mpii

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


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


def tiny_config(dataset: str, root: Path, *overrides: str) -> Config:
    """A small-input config on the synthetic data."""
    base = CONFIGS / "datasets" / f"synthetic_{dataset}.yaml"
    size = "64x48" if dataset == "coco" else "64x64"
    return load_config(base, ["dataset.root", str(root), "model.input_size", size,
                              "model.sigma", "1.5", *overrides])


def run_module(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m ...`` (or a script) as a user would; capture output."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)
