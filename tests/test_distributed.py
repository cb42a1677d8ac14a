"""DDP over 2 CPU processes (gloo), as `--devices 2` runs it on a machine without CUDA.

BatchNorm is not synchronised (no SyncBatchNorm, as in the official HRNet code): each process
normalises its own half-batch, so 2 processes × b and 1 process × 2b see the same images per step
(the sampler deals them out alternately) and average the same gradients, but BN batch statistics
differ — hence a tolerance on the loss curve, not equality.
"""
import json

import pytest

from tests.conftest import REPO, run_module

CFG = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")


@pytest.fixture(scope="module")
def odd_root(tmp_path_factory):
    """A val set whose person count does not divide by 2."""
    from trainers.data.synthetic import write_coco

    root = tmp_path_factory.mktemp("ddp")
    write_coco(root, num_train=32, num_val=7, seed=5)
    val = json.loads((root / "annotations" / "person_keypoints_val2017.json").read_text())
    people = [a for a in val["annotations"] if a["num_keypoints"] > 0 and not a.get("iscrowd")]
    assert len(people) % 2 == 1, len(people)
    return root


def _train(root, out, devices, batch, *extra):
    return run_module("trainers/train_derived.py", "--cfg", CFG, "--out", str(out), "--no-progress",
                      "--devices", str(devices), "dataset.root", str(root), "model.input_size", "64x48",
                      "train.num_workers", "0", "train.batch_size", str(batch), "train.epochs", "2",
                      "train.lr_steps", "[100]", "test.flip_test", "false", "test.batch_size", "4",
                      *extra)


@pytest.mark.e2e
def test_two_processes_match_one_with_the_double_batch(odd_root, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _train(odd_root, one, 1, 8)
    r2 = _train(odd_root, two, 2, 4)
    assert r1.returncode == 0, r1.stderr[-3000:]
    assert r2.returncode == 0, r2.stderr[-3000:]
    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    assert m1["world_size"] == 1 and m2["world_size"] == 2
    l1 = [e["train_loss"] for e in m1["epochs"]]
    l2 = [e["train_loss"] for e in m2["epochs"]]
    print("1 x 8:", l1, " 2 x 4:", l2)
    for a, b in zip(l1, l2, strict=True):
        assert b == pytest.approx(a, rel=0.05)  # BN statistics per half-batch (see the module doc)
    # rank 0 alone reports: one summary table, one final line
    assert r2.stdout.count("best AP=") == 1 and r2.stdout.strip().splitlines()[-1].startswith("AP=")


@pytest.mark.e2e
def test_two_process_validation_counts_every_person_once(odd_root, tmp_path):
    """The AP a 2-process run records equals a 1-process evaluation of the same checkpoint,
    though the odd val set makes the sampler pad one shard with a repeated person."""
    out = tmp_path / "two"
    r = _train(odd_root, out, 2, 4, "train.epochs", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    recorded = json.loads((out / "metrics.json").read_text())["epochs"][-1]["AP"]
    results = json.loads((out / "eval" / "keypoints_val2017_results.json").read_text())
    val = json.loads((odd_root / "annotations" / "person_keypoints_val2017.json").read_text())
    people = [a for a in val["annotations"] if a["num_keypoints"] > 0 and not a.get("iscrowd")]
    assert len(results) == len(people)  # none twice, none dropped
    evaluations = {}
    for devices in (1, 2):  # test.py in one process, and over 2 processes itself
        r = run_module("trainers/test.py", "--cfg", CFG, "--weights", str(out / "last.ckpt"),
                       "--json", "--no-flip_test", "--devices", str(devices),
                       "--out", str(tmp_path / f"eval{devices}"), "dataset.root", str(odd_root),
                       "model.input_size", "64x48", "train.num_workers", "0", "test.batch_size", "4")
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.count("results in") == 1  # rank 0 alone reports
        evaluations[devices] = json.loads(r.stdout.strip().splitlines()[-1])["AP"]
        written = json.loads((tmp_path / f"eval{devices}" / "keypoints_val2017_results.json").read_text())
        assert len(written) == len(people)
    assert evaluations[1] == pytest.approx(recorded, abs=1e-12)
    assert evaluations[2] == pytest.approx(recorded, abs=1e-12)


@pytest.mark.e2e
def test_bf16_mixed_runs_a_training_epoch_on_cpu(odd_root, tmp_path):
    """The autocast path that 16-mixed takes on CUDA, with bf16 on CPU."""
    out = tmp_path / "bf16"
    r = _train(odd_root, out, 1, 8, "train.epochs", "1", "train.precision", "bf16-mixed")
    assert r.returncode == 0, r.stderr[-3000:]
    loss = json.loads((out / "metrics.json").read_text())["epochs"][0]["train_loss"]
    assert loss is not None and 0 < loss < 1


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ["darts", "darts2"])
def test_one_shot_search_on_two_processes_keeps_the_ranks_equal(odd_root, tmp_path, strategy):
    """The recorder compares α/β/width logits across ranks after each epoch and fails the run if
    they differ (darts2's unrolled gradient bypasses DDP's all-reduce and drifted before it was
    averaged explicitly: max |Δα| 3.5e-3 after one epoch); rank 0 alone writes and reports."""
    out = tmp_path / "search"
    r = run_module("-m", "strategies.search", "--cfg", str(REPO / "configs" / "search" / "synthetic_tiny.yaml"),
                   "--strategy", strategy, "--out", str(out), "--no-progress", "--devices", "2",
                   "dataset.root", str(odd_root),
                   "model.input_size", "64x48", "search.epochs", "2", "search.warmup_epochs", "0",
                   "search.batch_size", "4", "train.num_workers", "0", "test.flip_test", "false")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("next: python -m strategies.prune") == 1
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
    assert (out / "arch.json").is_file() and len((out / "history.jsonl").read_text().splitlines()) == 2


@pytest.mark.e2e
def test_a_killed_two_process_run_resumes_exactly(odd_root, tmp_path):
    """kill -9 of the whole 2-process job after its first epoch, then --resume: the final
    weights equal those of the same 2-process run left alone, bit for bit."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    r = _train(odd_root, straight, 2, 4, "train.epochs", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    cmd = [sys.executable, "trainers/train_derived.py", "--cfg", CFG, "--out", str(killed),
           "--no-progress", "--devices", "2", "dataset.root", str(odd_root), "model.input_size",
           "64x48", "train.num_workers", "0", "train.batch_size", "4", "train.epochs", "4",
           "train.lr_steps", "[100]", "test.flip_test", "false", "test.batch_size", "4"]
    job = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    metrics = killed / "metrics.json"
    deadline = time.time() + 300
    while time.time() < deadline and job.poll() is None:
        if metrics.is_file() and len(json.loads(metrics.read_text())["epochs"]) >= 1:
            break
        time.sleep(0.05)
    assert job.poll() is None, "the job ended before it could be killed"
    os.killpg(job.pid, signal.SIGKILL)  # the launcher and its rank-1 child
    job.wait()
    done = len(json.loads(metrics.read_text())["epochs"])
    assert 1 <= done < 4
    r = _train(odd_root, killed, 2, 4, "train.epochs", "4", "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout
    a = torch.load(straight / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(killed / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ea = [e["train_loss"] for e in json.loads((straight / "metrics.json").read_text())["epochs"]]
    eb = [e["train_loss"] for e in json.loads(metrics.read_text())["epochs"]]
    assert ea == eb


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(nodes: int, per_node: int, *args: str):
    """``torchrun`` as a cluster runs it: one launcher per node (here all on 127.0.0.1, one
    thread per process), each with its ``--node_rank``; returns the launchers' results."""
    import os
    import subprocess
    import sys

    port = _free_port()
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    launchers = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nodes), "--node_rank",
         str(rank), "--nproc_per_node", str(per_node), "--master_addr", "127.0.0.1",
         "--master_port", str(port), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for rank in range(nodes)]
    results = []
    for job in launchers:
        out, err = job.communicate(timeout=600)
        results.append((job.returncode, out, err))
    return results


@pytest.mark.e2e
def test_torchrun_across_two_nodes_trains_as_devices_two(odd_root, tmp_path):
    """Two torchrun launchers (--nnodes 2, one process each, node ranks 0 and 1, rendezvous on
    127.0.0.1) form one 2-process job: the same weights, bit for bit, as `--devices 2` on one
    node, written once; node 0 alone reports. Before torchrun's layout was read, each node
    trained alone (world size 1) and both wrote the same folder."""
    import torch

    single, nodes = tmp_path / "devices2", tmp_path / "nodes2"
    r = _train(odd_root, single, 2, 4)
    assert r.returncode == 0, r.stderr[-3000:]
    results = _torchrun(2, 1, "trainers/train_derived.py", "--cfg", CFG, "--out", str(nodes),
                        "--no-progress", "dataset.root", str(odd_root), "model.input_size",
                        "64x48", "train.num_workers", "0", "train.batch_size", "4",
                        "train.epochs", "2", "train.lr_steps", "[100]", "test.flip_test",
                        "false", "test.batch_size", "4")
    for rc, out, err in results:
        assert rc == 0, err[-3000:]
    assert [out.count("best AP=") for _, out, _ in results] == [1, 0]
    assert json.loads((nodes / "metrics.json").read_text())["world_size"] == 2
    a = torch.load(single / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(nodes / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.e2e
def test_torchrun_evaluation_gathers_every_person_once(odd_root, tmp_path):
    """`torchrun --nproc_per_node 2 trainers/test.py` (no --devices): 2 processes share the
    odd val set; the AP equals a 1-process evaluation and every person is scored once."""
    trained = tmp_path / "trained"
    r = _train(odd_root, trained, 1, 8, "train.epochs", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    common = ["--cfg", CFG, "--weights", str(trained / "last.ckpt"), "--json", "--no-flip_test",
              "dataset.root", str(odd_root), "model.input_size", "64x48", "train.num_workers",
              "0", "test.batch_size", "4"]
    one = run_module("trainers/test.py", *common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    [(rc, out, err)] = _torchrun(1, 2, "trainers/test.py", *common, "--out", str(tmp_path / "two"))
    assert rc == 0, err[-3000:]
    assert out.count("results in") == 1
    ap = {k: json.loads(o.strip().splitlines()[-1])["AP"] for k, o in (("one", one.stdout), ("two", out))}
    assert ap["two"] == pytest.approx(ap["one"], abs=1e-12)
    val = json.loads((odd_root / "annotations" / "person_keypoints_val2017.json").read_text())
    people = [a for a in val["annotations"] if a["num_keypoints"] > 0 and not a.get("iscrowd")]
    written = json.loads((tmp_path / "two" / "keypoints_val2017_results.json").read_text())
    assert sorted((p["image_id"], round(p["score"], 6)) for p in written) == sorted(
        (p["image_id"], round(p["score"], 6)) for p in json.loads(
            (tmp_path / "one" / "keypoints_val2017_results.json").read_text()))
    assert len(written) == len(people)
