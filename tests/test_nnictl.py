"""End to end through NNI's manager: `nnictl create --config experiments/pnfs_synthetic.yml`,
trials of trainers/trial.py, strategies.nnictl.collect, and the web UI in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from trainers.network.arch_file import load_arch
from trainers.data.synthetic import write_coco
from tests.conftest import REPO, run_module

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{path}", timeout=10) as r:
        return json.loads(r.read())


def _nnictl(*args: str, env: dict) -> subprocess.CompletedProcess:
    nnictl = Path(sys.executable).parent / "nnictl"
    return subprocess.run([str(nnictl), *args], capture_output=True, text=True, env=env,
                          timeout=180)


def test_every_experiment_passes_nnictls_schema(tmp_path, monkeypatch):
    """nnictl create loads experiments through NNI's ExperimentConfig: local, remote (SSH),
    Kubeflow and FrameworkController files must all validate. The remote one names an SSH key
    file, which the schema requires to exist: a stand-in key under a temporary HOME."""
    from nni.experiment.config import ExperimentConfig

    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa").write_text("stand-in key\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    platforms = {}
    for yml in sorted((REPO / "experiments").glob("*.yml")):
        config = ExperimentConfig.load(str(yml))
        config.validate()
        platforms[yml.name] = config.training_service.platform
    assert {"local", "remote", "kubeflow", "frameworkcontroller"} <= set(platforms.values()), platforms


@pytest.mark.e2e
def test_space_files_are_in_sync_with_the_configs():
    pairs = [("configs/search/synthetic_tiny.yaml", "experiments/pnfs_synthetic_space.json", []),
             ("configs/search/pnfs_hrnet_w32_coco_384x288.yaml", "experiments/pnfs_space.json", []),
             ("configs/search/pnfs_hrnet_w32_mpii_256x256.yaml", "experiments/pnfs_mpii_space.json", []),
             ("configs/search/prune_rate_hrnet_w32_coco.yaml", "experiments/prune_rate_space.json",
              ["--prune-rates"])]
    for cfg, space, extra in pairs:
        r = run_module("-m", "search_space.export", "--cfg", cfg, "--out", space, "--check", *extra)
        assert r.returncode == 0, f"{space}: {r.stderr}"
    for yml in (REPO / "experiments").glob("*.yml"):
        exp = yaml.safe_load(yml.read_text())
        assert (yml.parent / exp["searchSpaceFile"]).is_file(), yml
        assert "trainers/trial.py" in exp["trialCommand"]


def test_stale_search_space_is_a_clear_error(tmp_path, coco_root):
    params = json.loads((REPO / "experiments" / "pnfs_synthetic_space.json").read_text())
    choice = {k: v["_value"][0] for k, v in params.items()}
    choice["part7/fabric/l3s0/input"] = 0
    (tmp_path / "p.json").write_text(json.dumps(choice))
    r = run_module("trainers/trial.py", "--cfg", "configs/search/synthetic_tiny.yaml",
                   "--params", str(tmp_path / "p.json"), "--out", str(tmp_path / "t"),
                   "dataset.root", str(coco_root))
    assert r.returncode == 2
    assert "part7/fabric/l3s0/input" in r.stderr and "search_space.export" in r.stderr


@pytest.mark.e2e
def test_nnictl_experiment_runs_trials_collects_and_shows_them(tmp_path):
    # the dataset the experiment's header tells users to write (400 training, 100 validation
    # images: write_coco's defaults for the demo), so the trials see what a user's would
    root = tmp_path / "synthetic_coco"
    write_coco(root, num_train=400, num_val=100, seed=0)
    port = _free_port()
    exp = yaml.safe_load((REPO / "experiments" / "pnfs_synthetic.yml").read_text())
    assert exp["maxTrialNumber"] <= 4
    exp["trialCodeDirectory"] = str(REPO)
    exp["searchSpaceFile"] = str(REPO / "experiments" / exp["searchSpaceFile"])
    exp["trialCommand"] = exp["trialCommand"].replace("dataset.root data/synthetic_coco",
                                                      f"dataset.root {root}")
    exp["experimentWorkingDirectory"] = str(tmp_path / "work")
    (tmp_path / "exp.yml").write_text(yaml.safe_dump(exp))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONWARNINGS="ignore")
    r = _nnictl("create", "--config", str(tmp_path / "exp.yml"), "--port", str(port), env=env)
    match = re.search(r"Experiment ID: (?:\x1b\[\d+m)?(\w+)", r.stdout)
    assert r.returncode == 0 and match, r.stdout + r.stderr
    exp_id = match.group(1)
    try:
        deadline = time.time() + 900
        status = {}
        while time.time() < deadline:
            status = _get(port, "check-status")
            if status["status"] in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(3)
        assert status.get("status") == "DONE", status
        trials = _get(port, "trial-jobs")
        assert len(trials) == exp["maxTrialNumber"]
        # trialConcurrency 2 on the local service: two trials ran at the same time
        assert exp["trialConcurrency"] == 2 and "OMP_NUM_THREADS=1" in exp["trialCommand"]
        spans = sorted((t["startTime"], t["endTime"]) for t in trials)
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
        aps = []
        for t in trials:
            assert t["status"] == "SUCCEEDED", t
            final = [m for m in t["finalMetricData"] if m["type"] == "FINAL"]
            result = json.loads(json.loads(final[0]["data"]))
            assert {"default", "AP", "params", "gflops"} <= set(result)
            aps.append(result["AP"])
        # the search shows something: the trials' AP tells the architectures apart
        assert len(set(aps)) == len(aps) and max(aps) >= 0.05, aps
        r = run_module("-m", "strategies.collect", str(tmp_path / "work" / exp_id),
                       "--out", str(tmp_path / "best.json"))
        assert r.returncode == 0, r.stderr
        assert f"{len(trials)} trials with results" in r.stdout
        best = load_arch(tmp_path / "best.json")
        assert best.metrics["strategy"] == "nnictl"
        # the web UI of the experiment lists the trials (headless Chromium)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        assert chromium, "Debian's chromium is needed for the web UI test (make setup installs it)"
        shot = tmp_path / "nni_webui_trials.png"
        flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1400,900",
                 "--virtual-time-budget=15000"]
        url = f"http://127.0.0.1:{port}/detail"
        dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                             timeout=120).stdout
        for t in trials:
            assert t["trialJobId"] in dom
        subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
        assert shot.is_file() and shot.stat().st_size > 10_000
    finally:
        _nnictl("stop", exp_id, env=env)


@pytest.mark.e2e
def test_per_stage_prune_rate_trial(coco_root, tmp_path):
    """A trial of experiments/prune_rate.yml: stage{s}/rate parameters prune the trained
    full-width network, fine-tune it and record the kept channels."""
    import torch

    from search_space.pose_space import freeze
    from search_space.supernet import build
    from trainers.config.experiment import load_config

    # the whole 4-stage HRNet under the plain head (a plain head honours backbone.stages)
    over = ["dataset.root", str(coco_root), "space.head", "plain", "space.backbone.stages", "0",
            "model.input_size", "64x48"]
    cfg = load_config(REPO / "configs" / "search" / "synthetic_tiny.yaml", over)
    labels = build(cfg.space, "coco").simplify()
    full = freeze(cfg.space, "coco", {k: max(m.values) for k, m in labels.items()})
    torch.save(full.state_dict(), tmp_path / "full.pth")
    r = run_module("-m", "search_space.export", "--cfg", "configs/search/synthetic_tiny.yaml",
                   "--out", str(tmp_path / "space.json"), "--prune-rates", *over)
    assert r.returncode == 0, r.stderr
    space = json.loads((tmp_path / "space.json").read_text())
    assert set(space) == {"stage1/rate", "stage2/rate", "stage3/rate", "stage4/rate"}
    (tmp_path / "p.json").write_text(json.dumps({k: 0.5 for k in space}))
    r = run_module("trainers/trial.py", "--cfg", "configs/search/synthetic_tiny.yaml",
                   "--params", str(tmp_path / "p.json"), "--out", str(tmp_path / "t"), *over,
                   "search.prune_rate.weights", str(tmp_path / "full.pth"), "search.trial_epochs", "1",
                   "train.num_workers", "0", "train.batch_size", "8", "test.flip_test", "false",
                   "train.limit_train_batches", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    arch = load_arch(tmp_path / "t" / "arch.json")
    assert arch.channels and all(len(v) == arch.choices[k] for k, v in arch.channels.items())
    assert arch.metrics["params"] < sum(p.numel() for p in full.parameters())
