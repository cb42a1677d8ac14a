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


def _path_without(folder: Path) -> str:
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if p and Path(p).resolve() != folder.resolve())


def _experiment(tmp_path: Path, root: Path, **changes) -> dict:
    """experiments/pnfs_synthetic.yml made runnable from ``tmp_path`` (data at ``root``)."""
    exp = yaml.safe_load((REPO / "experiments" / "pnfs_synthetic.yml").read_text())
    exp["trialCodeDirectory"] = str(REPO)
    exp["searchSpaceFile"] = str(REPO / "experiments" / exp["searchSpaceFile"])
    exp["trialCommand"] = exp["trialCommand"].replace("data/synthetic_coco", str(root))
    exp["experimentWorkingDirectory"] = str(tmp_path / "work")
    exp.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "exp.yml").write_text(yaml.safe_dump(exp))
    return exp


def _create(config: Path, port: int, env: dict) -> str:
    """``nnictl create``; the experiment's ID."""
    r = _nnictl("create", "--config", str(config), "--port", str(port), env=env)
    match = re.search(r"Experiment ID: (?:\x1b\[\d+m)?(\w+)", r.stdout)
    assert r.returncode == 0 and match, r.stdout + r.stderr
    return match.group(1)


def _wait(port: int, done, timeout: float = 900, what: str = "") -> dict:
    deadline = time.time() + timeout
    status: dict = {}
    while time.time() < deadline:
        status = _get(port, "check-status")
        if done(status):
            return status
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}: {status}")


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
    # no dataset yet: the trials write it (400 training, 100 validation images, the demo's),
    # the first one to finish renaming it into place
    root = tmp_path / "synthetic_coco"
    port = _free_port()
    exp = _experiment(tmp_path, root)
    assert exp["maxTrialNumber"] == 4 and exp["trialConcurrency"] == 2
    # two of the file's four trials, the two that run at the same time (the other two repeat
    # them: 284 s alone here for four), at 96x72 (the file's 128x96 costs 1.8x the pixels)
    exp["maxTrialNumber"] = 2
    exp["trialCommand"] = exp["trialCommand"].replace(
        "search.trial_epochs 8", "search.trial_epochs 8 model.input_size 96x72 model.sigma 1.5")
    assert "96x72" in exp["trialCommand"]
    (tmp_path / "exp.yml").write_text(yaml.safe_dump(exp))
    # PATH without the venv: the trials still run the venv's Python (the launcher asks NNI)
    env = dict(os.environ, PATH=_path_without(Path(sys.executable).parent), PYTHONWARNINGS="ignore")
    exp_id = _create(tmp_path / "exp.yml", port, env)
    try:
        status = _wait(port, lambda s: s["status"] in ("DONE", "ERROR", "STOPPED"), 900,
                       "the experiment")
        assert status["status"] == "DONE", status
        trials = _get(port, "trial-jobs")
        assert len(trials) == exp["maxTrialNumber"]
        assert len(list((root / "images" / "train2017").glob("*.jpg"))) == 400
        assert not list(tmp_path.glob(".synthetic_coco.*"))  # no temporary dataset left
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


def _trial_pids(trial_id: str) -> list[int]:
    """The processes of one NNI trial (its environment carries NNI_TRIAL_JOB_ID)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"NNI_TRIAL_JOB_ID={trial_id}".encode() in env and proc.name.isdigit():
            pids.append(int(proc.name))
    return pids


@pytest.mark.e2e
def test_a_killed_trial_fails_alone_and_a_stopped_experiment_resumes(tmp_path):
    """A trial killed with SIGKILL is recorded FAILED and the experiment goes on; ``nnictl
    stop`` then ``nnictl resume`` continues it to its trial budget."""
    import signal

    from trainers.data.synthetic import write_coco

    root = tmp_path / "synthetic_coco"
    write_coco(root, num_train=24, num_val=8, seed=0)
    port = _free_port()
    exp = _experiment(tmp_path, root, trialConcurrency=1, maxTrialNumber=4)
    exp["trialCommand"] = exp["trialCommand"].replace("search.trial_epochs 8", "search.trial_epochs 1")
    exp.pop("assessor")  # one epoch: nothing for the median-stop rule to judge
    (tmp_path / "exp.yml").write_text(yaml.safe_dump(exp))
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    exp_id = _create(tmp_path / "exp.yml", port, env)
    try:
        # the first trial, once its Python runs: SIGKILL it
        deadline = time.time() + 300
        victim, pids = None, []
        while time.time() < deadline and not pids:
            running = [t for t in _get(port, "trial-jobs") if t["status"] == "RUNNING"]
            if running:
                victim = running[0]["trialJobId"]
                pids = [p for p in _trial_pids(victim)  # its Python (as the OOM killer would)
                        if b"trial.py" in Path(f"/proc/{p}/cmdline").read_bytes()
                        and "python" in os.readlink(f"/proc/{p}/exe")]
            time.sleep(1)
        assert pids, "no running trial found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # recorded failed; the next trial starts and succeeds
        _wait(port, lambda s: any(t["trialJobId"] == victim and t["status"] == "FAILED"
                                  for t in _get(port, "trial-jobs")), 300, "the killed trial FAILED")
        _wait(port, lambda s: any(t["status"] == "SUCCEEDED" for t in _get(port, "trial-jobs")),
              600, "a trial after the killed one to succeed")
        stopped = _nnictl("stop", exp_id, env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        resumed_at = time.time() * 1000
        r = _nnictl("resume", exp_id, "--port", str(port), "--experiment_dir",
                    str(tmp_path / "work"), env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        status = _wait(port, lambda s: s["status"] in ("DONE", "ERROR"), 900, "the resumed experiment")
        assert status["status"] == "DONE", status
        trials = _get(port, "trial-jobs")
        states = {t["trialJobId"]: t["status"] for t in trials}
        assert states[victim] == "FAILED"
        assert len(trials) >= exp["maxTrialNumber"]
        assert set(states.values()) <= {"SUCCEEDED", "FAILED", "USER_CANCELED"}, states
        assert list(states.values()).count("FAILED") == 1, states  # only the killed one
        after = [t for t in trials if t.get("startTime", 0) > resumed_at]
        assert after and all(t["status"] == "SUCCEEDED" for t in after), trials
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


def _start_sshd(folder: Path, port: int) -> tuple[subprocess.Popen, Path]:
    """Debian's OpenSSH server on 127.0.0.1:``port``, keys and config in ``folder``; returns the
    process and the client key."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd).is_file(), "Debian's openssh-server is needed (make setup installs it)"
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                       check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    (folder / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no", "UsePAM no",
        "StrictModes no", "Subsystem sftp internal-sftp", ""]))
    # sshd's privilege-separation folder, which the package's service creates at boot
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen([sshd, "-D", "-f", str(folder / "sshd_config"), "-E",
                             str(folder / "sshd.log")])
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, folder / "user_key"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"sshd did not start: {(folder / 'sshd.log').read_text()}")


@pytest.mark.e2e
def test_remote_training_service_runs_trials_over_ssh(tmp_path):
    """experiments/pnfs_remote.yml, its test variant: NNI's remote training service copies the
    repository (less .nniignore) over SSH to a machine — here a real OpenSSH server on
    127.0.0.1 — and runs 2 synthetic trials there with the machine's pythonPath; their metrics
    come back to the manager. (The "machine" keeps its copy in /tmp/nni-experiments/ID, where
    NNI puts it on Linux; removed at the end.)"""
    from trainers.data.synthetic import write_coco

    root = tmp_path / "synthetic_coco"
    write_coco(root, num_train=24, num_val=8, seed=0)
    sshd, key = _start_sshd(tmp_path, _free_port())
    ssh_port = int((tmp_path / "sshd_config").read_text().split()[1])
    exp = yaml.safe_load((REPO / "experiments" / "pnfs_remote.yml").read_text())
    synthetic = _experiment(tmp_path / "synthetic", root)  # its trial command and space
    machine = exp["trainingService"]["machineList"][0]
    machine.update(host="127.0.0.1", port=ssh_port, user="root", sshKeyFile=str(key),
                   pythonPath=str(Path(sys.executable).parent))
    for key_name in ("useActiveGpu", "maxTrialNumberPerGpu"):  # no GPU here
        machine.pop(key_name)
    exp.pop("trialGpuNumber")
    exp.pop("assessor")
    exp["trainingService"]["machineList"] = [machine]
    exp.update(searchSpaceFile=synthetic["searchSpaceFile"], trialCodeDirectory=str(REPO),
               trialCommand=synthetic["trialCommand"].replace("search.trial_epochs 8",
                                                              "search.trial_epochs 1"),
               trialConcurrency=1, maxTrialNumber=2, maxExperimentDuration="20m",
               nniManagerIp="127.0.0.1", experimentWorkingDirectory=str(tmp_path / "work"),
               tuner={"name": "Random", "classArgs": {"seed": 0}})
    (tmp_path / "remote.yml").write_text(yaml.safe_dump(exp))
    port = _free_port()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    exp_id = None
    try:
        exp_id = _create(tmp_path / "remote.yml", port, env)
        status = _wait(port, lambda s: s["status"] in ("DONE", "ERROR"), 900, "the remote trials")
        assert status["status"] == "DONE", status
        trials = _get(port, "trial-jobs")
        assert len(trials) == 2 and all(t["status"] == "SUCCEEDED" for t in trials), trials
        for t in trials:
            final = [m for m in t["finalMetricData"] if m["type"] == "FINAL"]
            result = json.loads(json.loads(final[0]["data"]))
            assert {"default", "AP", "params", "gflops"} <= set(result) and result["params"] > 0
        log = (tmp_path / "sshd.log").read_text()
        assert "Accepted publickey for root" in log  # the trials went through this server
        copied = Path("/tmp/nni-experiments") / exp_id
        assert (copied / "envs").is_dir()  # NNI's remote environment lives on the "machine"
        assert not list(copied.rglob(".venv"))  # .nniignore kept the environment out of the copy
    finally:
        if exp_id:
            _nnictl("stop", exp_id, env=env)
            shutil.rmtree(Path("/tmp/nni-experiments") / exp_id, ignore_errors=True)
        sshd.terminate()
        sshd.wait(timeout=30)
