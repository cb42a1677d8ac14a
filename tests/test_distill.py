"""Distillation from a teacher's heatmaps (train_derived.py --distill_config)."""
import json
import math

import pytest
import torch

from tests.conftest import REPO, run_module, tiny_config
from tests.official_layouts import OfficialHRNet, randomize
from search_space.errors import UserInputError
from trainers.engine.losses import DistillLoss, HeatmapKLLoss, JointsMSELoss

CFG = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")
TINY = dict(stem=32, stage1=(1, 16), stages=((1, 1, (16, 32)), (1, 1, (16, 32, 64)),
                                             (1, 1, (16, 32, 64, 128))))


def test_heatmap_kl_by_hand():
    """One sample, two joints of 1×2 pixels; τ = 0.5. Joint 0: teacher (0, 1), student (0, 0):
    p = softmax(0, 2) = (1/(1+e²), e²/(1+e²)), q = (½, ½), KL = Σ p log(p/q); joint 1 has
    target weight 0. Loss = mean over the 2 joints × τ²."""
    teacher = torch.tensor([[[[0.0, 1.0]], [[5.0, 0.0]]]])
    student = torch.tensor([[[[0.0, 0.0]], [[0.0, 3.0]]]])
    weight = torch.tensor([[[1.0], [0.0]]])
    e2 = math.exp(2.0)
    p = (1 / (1 + e2), e2 / (1 + e2))
    kl = sum(pi * math.log(pi / 0.5) for pi in p)
    expected = kl / 2 * 0.25
    assert float(HeatmapKLLoss(0.5)(student, teacher, weight)) == pytest.approx(expected, rel=1e-6)
    assert float(HeatmapKLLoss(0.5)(teacher, teacher, torch.ones(1, 2, 1))) == pytest.approx(0, abs=1e-7)


def test_distill_loss_mixes_the_two_terms():
    gen = torch.Generator().manual_seed(0)
    s, t, g = (torch.rand(2, 3, 4, 4, generator=gen) for _ in range(3))
    w = torch.tensor([[[1.0], [0.0], [1.0]], [[1.0], [1.0], [0.0]]])
    mse = JointsMSELoss(True)
    total, gt, kd = DistillLoss(0.3)(s, g, t, w)
    assert float(gt) == pytest.approx(float(mse(s, g, w))) and float(kd) == pytest.approx(float(mse(s, t, w)))
    assert float(total) == pytest.approx(0.7 * float(gt) + 0.3 * float(kd))


def test_the_teacher_as_its_own_student_with_alpha_1_has_zero_loss(coco_root):
    """α = 1, the same network (eval mode) as student and teacher: the loss is exactly 0; α = 0
    gives the plain GT loss; the teacher is no submodule (not trained, not checkpointed)."""
    from search_space.models import build_model
    from trainers.data.registry import build_dataset
    from trainers.data.loader import build_loader
    from trainers.engine.module import PoseModule

    net = build_model("hrnet_tiny", "coco").eval()
    cfg = tiny_config("coco", coco_root, "distill.alpha", "1.0", "distill.config", CFG)
    batch = next(iter(build_loader(build_dataset(cfg, "train"), 4, False, 0)))
    module = PoseModule(net, cfg, teacher=net)
    with torch.no_grad():
        assert float(module.compute_loss(batch)) == 0.0
    assert all(not k.startswith("teacher") for k in module.state_dict())
    with torch.no_grad():
        plain = PoseModule(net, tiny_config("coco", coco_root)).compute_loss(batch)
        zero = PoseModule(net, tiny_config("coco", coco_root, "distill.alpha", "0.0"), teacher=net)
        assert float(zero.compute_loss(batch)) == pytest.approx(float(plain), rel=1e-6)
    assert float(plain) > 0


def test_a_teacher_of_other_joints_is_one_clear_error(coco_root, tmp_path):
    from trainers.engine.distill import build_teacher

    torch.save(randomize(OfficialHRNet(**TINY, joints=16)).state_dict(), tmp_path / "mpii.pth")
    teacher_cfg = tmp_path / "teacher.yaml"
    teacher_cfg.write_text(f"_base_: {REPO / 'configs' / 'datasets' / 'synthetic_mpii.yaml'}\n"
                           "model: {name: hrnet_tiny}\n")
    cfg = tiny_config("coco", coco_root, "distill.config", str(teacher_cfg),
                      "distill.weights", str(tmp_path / "mpii.pth"))
    with pytest.raises(UserInputError, match="16 joints of mpii, the student the 17 of coco"):
        build_teacher(cfg)
    cfg = tiny_config("coco", coco_root, "distill.config", CFG)
    with pytest.raises(UserInputError, match="no trained weights.*distill.weights"):
        build_teacher(cfg)
    with pytest.raises(UserInputError, match="alpha"):
        tiny_config("coco", coco_root, "distill.alpha", "1.5")


@pytest.mark.e2e
def test_distilled_training_resumes_and_runs_on_two_processes(coco_root, tmp_path):
    """A 1-epoch teacher, then a student with --distill_config: the logged loss is
    ½·GT + ½·teacher term, the checkpoint holds the student only, --resume continues with the
    teacher rebuilt, and the same run works with 2 DDP processes."""
    def train(out, *options, epochs=1, batch=8):
        return run_module("trainers/train_derived.py", "--cfg", CFG, "--no-progress", "--out",
                          str(out), *options, "dataset.root", str(coco_root), "model.input_size",
                          "64x48", "train.num_workers", "0", "test.flip_test", "false",
                          "train.batch_size", str(batch), "train.epochs", str(epochs), *distill)

    distill: list[str] = []
    r = train(tmp_path / "teacher")
    assert r.returncode == 0, r.stderr[-3000:]
    distill = ["distill.weights", str(tmp_path / "teacher" / "best.ckpt")]
    student = tmp_path / "student"
    r = train(student, "--distill_config", CFG)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distillation: teacher hrnet_tiny" in r.stdout
    epoch = json.loads((student / "metrics.json").read_text())["epochs"][0]
    assert epoch["train_loss"] == pytest.approx(0.5 * epoch["train_loss_gt"] + 0.5 * epoch["train_loss_teacher"], rel=1e-5)
    assert 0 < epoch["train_loss_teacher"] < epoch["train_loss_gt"]
    plain = torch.load(tmp_path / "teacher" / "last.ckpt", weights_only=True)["state_dict"]
    ours = torch.load(student / "last.ckpt", weights_only=True)["state_dict"]
    assert set(ours) == set(plain)  # no teacher tensors
    r = train(student, "--distill_config", CFG, "--resume", epochs=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout
    assert len(json.loads((student / "metrics.json").read_text())["epochs"]) == 2
    r = train(tmp_path / "ddp", "--distill_config", CFG, "--devices", "2", batch=4)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["epochs"][0]["train_loss_teacher"] > 0


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ["darts", "random"])
def test_a_teacher_guided_search(coco_root, tmp_path, strategy):
    """search.distill (strategies.search --distill_config): DARTS's supernet and a multi-trial
    strategy's candidates train on ½·GT + ½·teacher term (the teacher: a released HRNet file
    read as hrnet_tiny); without a teacher, search.distill is one error naming the field."""
    from tests.test_strategies import search

    torch.save(randomize(OfficialHRNet(**TINY)).state_dict(), tmp_path / "teacher.pth")
    out = tmp_path / strategy
    r = search(coco_root, strategy, out, "--distill_config", CFG,
               "distill.weights", str(tmp_path / "teacher.pth"), "search.num_trials", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distillation: teacher hrnet_tiny" in r.stdout
    if strategy == "darts":
        epoch = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    else:
        epoch = json.loads((out / "trials" / "000" / "metrics.json").read_text())["epochs"][0]
    assert epoch["train_loss"] == pytest.approx(0.5 * epoch["train_loss_gt"] + 0.5 * epoch["train_loss_teacher"], rel=1e-5)
    assert epoch["train_loss_teacher"] > 0 and epoch["train_loss_gt"] > 0
    if strategy == "darts":
        r = search(coco_root, strategy, tmp_path / "none", "search.distill", "true")
        assert r.returncode != 0 and "search.distill" in r.stderr and "Traceback" not in r.stderr
