"""End-to-end: train_derived.py and test.py on the synthetic data, as a user runs them."""
import json

import numpy as np
import pytest
import torch

from tests.conftest import REPO, cocoeval_ap, mean_pose_ap, run_module
from trainers.weights.checkpoint import load_checkpoint, model_state_dict

CFG = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")


def train(root, out, *extra):
    return run_module("trainers/train_derived.py", "--cfg", CFG, "--out", str(out), "--no-progress",
                      "dataset.root", str(root), "model.input_size", "64x48", "model.sigma", "1.5",
                      "train.num_workers", "0", "train.batch_size", "8", "test.batch_size", "16",
                      "test.flip_test", "false", "train.lr_steps", "[100]", *extra)


@pytest.fixture(scope="module")
def learn_root(tmp_path_factory):
    """A synthetic set big enough to learn something in a minute: 150 train, 20 val images."""
    from trainers.data.synthetic import write_coco

    root = tmp_path_factory.mktemp("learn")
    write_coco(root, num_train=150, num_val=20, seed=3)
    return root


@pytest.fixture(scope="module")
def trained(learn_root, tmp_path_factory):
    """16 epochs of hrnet_tiny at 128×96 (its demo config) — about 30 s on 2 cores."""
    out = tmp_path_factory.mktemp("run")
    r = run_module("trainers/train_derived.py", "--cfg", CFG, "--out", str(out), "--no-progress",
                   "dataset.root", str(learn_root), "train.num_workers", "0", "train.batch_size", "16",
                   "train.epochs", "16", "train.lr", "0.002", "train.lr_steps", "[100]",
                   "test.flip_test", "false")
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


@pytest.mark.e2e
def test_training_lowers_the_loss_and_writes_outputs(trained, learn_root):
    out, r = trained
    metrics = json.loads((out / "metrics.json").read_text())
    epochs = metrics["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(16))
    assert epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"]
    assert metrics["metric"] == "AP" and metrics["best"] == max(e["AP"] for e in epochs)
    # the no-learning prior (the mean training pose in each box, scored by pycocotools) measured
    # 0.0035 on this set; a network that learned from the images is an order of magnitude above it
    # (0.13 measured on 2 cores)
    assert metrics["best"] > 10 * mean_pose_ap(learn_root)
    assert (out / "last.ckpt").is_file() and (out / "best.ckpt").is_file()
    assert (out / "eval" / "keypoints_val2017_results.json").is_file()
    assert r.stdout.strip().splitlines()[-1].startswith("AP=")


@pytest.mark.e2e
def test_checkpoint_round_trip_through_test_py(trained, learn_root, tmp_path):
    out, _ = trained
    ckpt = load_checkpoint(out / "best.ckpt")  # weights_only=True inside
    assert ckpt["posenas"]["model"] == {"name": "hrnet_tiny"}
    r = run_module("trainers/test.py", "--cfg", CFG, "--weights", str(out / "best.ckpt"),
                   "--no-flip_test", "--out", str(tmp_path), "--json", "dataset.root", str(learn_root),
                   "train.num_workers", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    best = json.loads((out / "metrics.json").read_text())["best"]
    assert stats["AP"] == pytest.approx(best, abs=1e-9)  # the same weights, the same pipeline
    assert (tmp_path / "keypoints_val2017_results.json").is_file()


@pytest.mark.e2e
def test_resume_continues_exactly(coco_root, tmp_path):
    """2 epochs + resume to 3 gives the very weights of 3 uninterrupted epochs."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(coco_root, straight, "train.epochs", "3", "train.limit_train_batches", "3").returncode == 0
    assert train(coco_root, split, "train.epochs", "2", "train.limit_train_batches", "3").returncode == 0
    r = train(coco_root, split, "train.epochs", "3", "train.limit_train_batches", "3", "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout and "finished epoch 1" in r.stdout
    a = model_state_dict(load_checkpoint(straight / "last.ckpt"))
    b = model_state_dict(load_checkpoint(split / "last.ckpt"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    history = json.loads((split / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == [0, 1, 2]


@pytest.mark.e2e
def test_nan_loss_stops_and_keeps_last_good_checkpoint(coco_root, tmp_path):
    out = tmp_path / "run"
    assert train(coco_root, out, "train.epochs", "1", "train.limit_train_batches", "2").returncode == 0
    good = (out / "last.ckpt").read_bytes()
    r = train(coco_root, out, "train.epochs", "2", "train.limit_train_batches", "3", "train.lr", "1e30")
    assert r.returncode == 3
    assert "training loss is" in r.stderr and "last.ckpt keeps the last good epoch" in r.stderr
    assert (out / "last.ckpt").read_bytes() == good
    load_checkpoint(out / "last.ckpt")


@pytest.mark.e2e
def test_bad_checkpoint_and_bad_model_are_one_line_errors(tmp_path, coco_root):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x80\x02garbage")
    r = run_module("trainers/test.py", "--cfg", CFG, "--weights", str(bad), "dataset.root", str(coco_root))
    assert r.returncode == 2 and "not a loadable checkpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_module("trainers/train_derived.py", "--cfg", CFG, "--model", "hrnet_w99",
                   "--out", str(tmp_path / "x"), "dataset.root", str(coco_root))
    assert r.returncode == 2 and "unknown model 'hrnet_w99'" in r.stderr
    r = run_module("trainers/train_derived.py", "--cfg", CFG, "--out", str(tmp_path / "y"), "--resume",
                   "dataset.root", str(coco_root))
    assert r.returncode == 2 and "no checkpoint to resume from" in r.stderr


@pytest.mark.e2e
def test_param_flop_command_json(tmp_path):
    r = run_module("-m", "visualize.param_flop", "--model", "hrnet_tiny", "--input-size", "128x96", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout.strip().splitlines()[-1])
    assert isinstance(data["params"], int) and isinstance(data["macs"], int)
    assert data["gflops"] == pytest.approx(data["macs"] / 2 ** 30)
    assert "2^30" in r.stdout
    r = run_module("-m", "visualize.param_flop", "--cfg", CFG, "--json", "dataset.root", "unused")
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["model"] == "hrnet_tiny"


@pytest.mark.e2e
def test_export_command_checks_onnxruntime(trained, tmp_path):
    out, _ = trained
    r = run_module("-m", "trainers.export", "--weights", str(out / "best.ckpt"),
                   "--onnx", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "max |torch - onnxruntime|" in r.stdout and (tmp_path / "m.onnx").stat().st_size > 10_000


@pytest.mark.e2e
def test_visualize_demo_draws_people(trained, learn_root, tmp_path):
    out, _ = trained
    ann = json.loads((learn_root / "annotations" / "person_keypoints_val2017.json").read_text())
    image = ann["images"][0]
    path = learn_root / "images" / "val2017" / image["file_name"]
    dets = learn_root / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json"
    n_boxes = sum(1 for d in json.loads(dets.read_text())
                  if d["image_id"] == image["id"] and d["score"] >= 0.5)
    r = run_module("-m", "visualize.demo", "--weights", str(out / "best.ckpt"), "--image", str(path),
                   "--boxes", str(dets), "--image-id", str(image["id"]), "--kpt-thr", "0.0",
                   "--out", str(tmp_path / "vis.png"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"drew {n_boxes} person(s)" in r.stdout
    import cv2

    drawn, original = cv2.imread(str(tmp_path / "vis.png")), cv2.imread(str(path))
    assert drawn.shape == original.shape and (drawn.astype(int) - original).any()
    assert "no joint passed" not in r.stdout
    # a threshold no confidence reaches: nothing drawn, and the command says so
    r = run_module("-m", "visualize.demo", "--weights", str(out / "best.ckpt"), "--image", str(path),
                   "--boxes", str(dets), "--image-id", str(image["id"]), "--kpt-thr", "1.5",
                   "--out", str(tmp_path / "none.png"))
    assert r.returncode == 0 and "no joint passed --kpt-thr 1.5 (the highest score was" in r.stdout
    assert np.array_equal(cv2.imread(str(tmp_path / "none.png")), original)


@pytest.mark.e2e
def test_make_demo_in_ci_size(tmp_path):
    """`make demo`, shrunk: data, DARTS search, Prune, --param_flop, training from inherited
    weights, flip-test evaluation, graphs, history plot, overlays, summary."""
    out = tmp_path / "demo"
    r = run_module("-m", "trainers.demo", "--out", str(out), "--data",
                   str(tmp_path / "data"), "--train", "8", "--val", "4", "--overlays", "2",
                   "--search-epochs", "1", "--search-override", "search.batch_size=4",
                   "--search-override", "search.warmup_epochs=0",
                   "train.epochs", "1", "model.input_size", "64x48", "train.num_workers", "0",
                   "train.batch_size", "8")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    # the AP printed is what pycocotools computes from the results file the demo wrote
    results = out / "test" / "keypoints_val2017_results.json"
    expected = cocoeval_ap(tmp_path / "data" / "annotations" / "person_keypoints_val2017.json", results)
    assert lines[-1].startswith("AP=") and float(lines[-1][3:]) == pytest.approx(expected, abs=5e-5)
    assert "GFLOPs" in r.stdout and "[8/8]" in r.stdout and "searching" in r.stdout
    # Lightning's own INFO lines stay out of the demo's output (warnings would still show)
    assert "GPU available" not in r.stdout + r.stderr and "litlogger" not in r.stdout + r.stderr
    # the search's own logs name their batch size: the architecture step's batch (validation
    # split) and the weight step's (training split) differ in size on the last batch, which
    # Lightning would otherwise call ambiguous
    assert "infer the `batch_size`" not in r.stderr
    assert (out / "search" / "arch.json").is_file() and (out / "search" / "derived.json").is_file()
    assert (out / "search" / "derived.pth").is_file()
    assert (out / "train" / "best.ckpt").is_file()
    assert (out / "test" / "keypoints_val2017_results.json").is_file()
    for name in ("arch_search.svg", "arch_derived.svg", "arch_derived.png", "search_history.png"):
        assert (out / name).stat().st_size > 1000, name
    assert "head" in (out / "arch_derived.svg").read_text()
    assert len(list((out / "overlays").glob("*.png"))) == 2


@pytest.mark.e2e
def test_train_derived_arch_then_test_and_param_flop(coco_root, tmp_path):
    """A sampled architecture of the search config: trained with --arch, rebuilt by test.py
    from the checkpoint alone, reported by param_flop --arch."""
    import numpy as np

    from trainers.network.arch_file import ArchFile, save_arch
    from search_space.supernet import build
    from trainers.config.experiment import load_config

    search_cfg = str(REPO / "configs" / "search" / "synthetic_tiny.yaml")
    cfg = load_config(search_cfg, ["dataset.root", str(coco_root), "model.input_size", "64x48"])
    rs = np.random.RandomState(0)
    choices = {k: m.random(random_state=rs) for k, m in build(cfg.space, "coco").simplify().items()}
    arch = tmp_path / "derived.json"
    save_arch(arch, ArchFile(cfg, choices, kind="derived"))
    out = tmp_path / "run"
    r = run_module("trainers/train_derived.py", "--cfg", search_cfg, "--arch", str(arch),
                   "--out", str(out), "--no-progress", "--param_flop", "dataset.root", str(coco_root),
                   "model.input_size", "64x48", "model.sigma", "1.5", "train.num_workers", "0",
                   "train.batch_size", "8", "train.epochs", "1", "train.limit_train_batches", "2",
                   "test.flip_test", "false")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "part0:head" in r.stdout and "AP=" in r.stdout
    r = run_module("trainers/test.py", "--cfg", search_cfg, "--weights", str(out / "last.ckpt"),
                   "--no-flip_test", "--json", "dataset.root", str(coco_root), "model.input_size", "64x48")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "AP" in json.loads(r.stdout.strip().splitlines()[-1])
    r = run_module("-m", "visualize.param_flop", "--arch", str(arch), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["input_size"] == [64, 48] and report["params"] > 0
    choices["part0/fabric/cell/edge0_op"] = "conv_9x9"
    save_arch(arch, ArchFile(cfg, choices, kind="derived"))
    r = run_module("-m", "visualize.param_flop", "--arch", str(arch))
    assert r.returncode == 2 and "choices.part0/fabric/cell/edge0_op" in r.stderr


@pytest.mark.e2e
def test_prune_rate_on_a_trained_network_stops_at_the_tolerance(trained, learn_root, tmp_path):
    """APRCP's rule on a network that has learned something (AP 0.13): pruning without
    fine-tuning costs AP, so the scan r = 0.3, 0.6, 0.9 must stop at the first rate whose AP drop
    exceeds search.prune_rate.tolerance and keep the rate before it — checked here from the probes'
    recorded APs, not from the strategy's own choice."""
    run, _ = trained
    out = tmp_path / "pr"
    tolerance = 0.02
    r = run_module("-m", "strategies.search", "--cfg", str(REPO / "configs" / "search" / "synthetic_tiny.yaml"),
                   "--strategy", "prune_rate", "--out", str(out), "--no-progress",
                   "dataset.root", str(learn_root), "train.num_workers", "0", "test.batch_size", "16",
                   "test.flip_test", "false", "space.head", "plain", "space.backbone.stages", "0",
                   "space.backbone.width_multipliers", "[0.25, 0.5, 0.75, 1.0]",
                   "search.prune_rate.weights", str(run / "best.ckpt"), "search.prune_rate.selection", "simple",
                   "search.prune_rate.step", "0.3", "search.prune_rate.tolerance", str(tolerance))
    assert r.returncode == 0, r.stderr[-3000:]
    probes = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    base = probes[0]
    assert base["rate"] == 0.0
    assert base["AP"] == pytest.approx(json.loads((run / "metrics.json").read_text())["best"], abs=1e-9)
    drops = [base["AP"] - p["AP"] for p in probes[1:]]
    assert drops[-1] > tolerance, "the scan ends at the first infeasible rate"  # pruning costs AP
    assert all(d <= tolerance for d in drops[:-1])
    expected = probes[-2]["rate"] if len(probes) > 2 else 0.0
    from trainers.network.arch_file import load_arch

    arch = load_arch(out / "arch.json")
    assert arch.metrics["rate"] == pytest.approx(expected)
    # the kept rate prunes channels exactly when it is above 0 (rate 0: the full network)
    if expected > 0:
        assert arch.metrics["params"] < base["params"]
    else:
        assert arch.metrics["params"] == base["params"]


@pytest.mark.parametrize("edit, field", [
    (lambda m: m.pop("name"), "posenas.model.name"),
    (lambda m: m["arch"].pop("choices"), "posenas.model.arch"),
    (lambda m: m["arch"]["space"].update(parts_num="three"), "posenas.model.arch.space.parts_num"),
    (lambda m: m["arch"]["space"]["backbone"].update(name="resnet"),
     "posenas.model.arch.space.backbone.name"),
])
def test_a_bad_model_record_in_a_checkpoint_names_the_field(tmp_path, edit, field):
    from tests.conftest import random_sample, tiny_space
    from search_space.supernet import build
    from trainers.network.build import NetworkSpec, load_trained_network
    from trainers.config.experiment import config_to_dict
    from search_space.errors import UserInputError
    from tests.conftest import tiny_config

    space = tiny_space()
    spec = NetworkSpec("sampled", space, "coco", random_sample(build(space, "coco"), 0))
    record = json.loads(json.dumps(spec.record(), default=lambda o: o.item()))  # numpy → plain
    assert record["arch"]["space"]["parts_num"] == 3
    edit(record)
    cfg = tiny_config("coco", tmp_path)
    path = tmp_path / "bad.ckpt"
    meta = {"format": "posenas-ckpt", "model": record, "config": json.loads(json.dumps(config_to_dict(cfg), default=str))}
    torch.save({"state_dict": {}, "posenas": meta}, path)
    with pytest.raises(UserInputError) as err:
        load_trained_network(path)
    assert err.value.field == field and str(path) in str(err.value)


@pytest.mark.e2e
def test_pact_qat_from_a_trained_network_and_test_py_evaluates_it(trained, learn_root, tmp_path):
    """quant.method pact from the trained float checkpoint: α calibrated, one epoch of QAT;
    test.py rebuilds the QAT network from the checkpoint (the recorded AP again, to 1e-9); the
    weights it runs are on the per-channel int8 grid; the AP stays above the no-learning prior
    by the same order of magnitude as the float network's."""
    from search_space.models import build_model
    from trainers.network.build import load_trained_network
    from trainers.engine.qat import pact_modules

    out, _ = trained
    qat = tmp_path / "qat"
    r = run_module("trainers/train_derived.py", "--cfg", CFG, "--out", str(qat), "--no-progress",
                   "dataset.root", str(learn_root), "train.num_workers", "0", "train.batch_size", "16",
                   "train.epochs", "1", "train.lr", "0.0002", "test.flip_test", "false",
                   "quant.method", "pact", "model.pretrained", str(out / "best.ckpt"))
    assert r.returncode == 0, r.stderr[-3000:]
    relus = sum(isinstance(m, torch.nn.ReLU) for m in build_model("hrnet_tiny", "coco").modules())
    assert f"PACT (8 bits, per_channel weights): {relus} clip levels from 4 batches" in r.stdout
    recorded = json.loads((qat / "metrics.json").read_text())["epochs"][0]["AP"]
    t = run_module("trainers/test.py", "--cfg", CFG, "--weights", str(qat / "last.ckpt"),
                   "--no-flip_test", "--out", str(tmp_path / "eval"), "--json",
                   "dataset.root", str(learn_root), "train.num_workers", "0")
    assert t.returncode == 0, t.stderr[-3000:]
    assert json.loads(t.stdout.strip().splitlines()[-1])["AP"] == pytest.approx(recorded, abs=1e-9)
    _, _, net = load_trained_network(qat / "last.ckpt")
    assert len(pact_modules(net)) == relus and all(float(m.alpha.detach()) > 0 for m in pact_modules(net))
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            w = m.weight.detach()  # what the network computes with
            step = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8) / 127
            assert torch.allclose(w / step, (w / step).round(), atol=1e-3)
    print(f"float AP {json.loads((out / 'metrics.json').read_text())['best']:.4f}, PACT int8 AP {recorded:.4f}")
    assert recorded > 10 * mean_pose_ap(learn_root)
    # --int8: BN folded, int8 weights (a quarter of float32's bytes, plus scales and graph),
    # onnxruntime's int8 convolution kernels, the fake-quantized network's peaks kept
    from trainers.deploy.int8 import int8_kernels

    # a QAT checkpoint exports as int8 by default; without its dataset, one line names the fix
    e = run_module("-m", "trainers.export", "--weights", str(qat / "last.ckpt"), "--onnx",
                   str(tmp_path / "int8.onnx"), "--calib-root", str(tmp_path / "nowhere"))
    assert e.returncode == 2 and "--calib-root DIR (or --no-int8" in e.stderr and "Traceback" not in e.stderr
    e = run_module("-m", "trainers.export", "--weights", str(qat / "last.ckpt"), "--onnx",
                   str(tmp_path / "int8.onnx"), "--calib-root", str(learn_root))
    assert e.returncode == 0, e.stderr[-3000:]
    print(e.stdout)
    row = [c.strip() for c in e.stdout.splitlines()[2].strip("|").split("|")]
    float_mb, int8_mb, kernels, same_peak = float(row[3]), float(row[4]), int(row[5]), float(row[7][:-1])
    assert int8_mb <= 0.35 * float_mb and kernels == int8_kernels(tmp_path / "int8.onnx") > 0
    # a broken export (scales, channel order, normalisation) keeps ~0 % of the peaks; measured
    # 88-90 %: onnxruntime also quantizes what QAT left float (sums, upsampling); leaving those
    # float (op_types_to_quantize=["Conv"]) kept 87.5 % vs 86.8 % of peaks and ran 9 % slower.
    # Quantizing the image too (before trainers.deploy.int8.float_ends) kept 44 % on one of
    # benchmarks/compress.py's seeds (88 % with it)
    assert same_peak >= 50.0
    # at an input size other than the trained one: the calibration crops are cut at that size
    # too (they were cut at the trained size, and onnxruntime's calibration failed on them)
    e = run_module("-m", "trainers.export", "--weights", str(qat / "last.ckpt"), "--onnx",
                   str(tmp_path / "int8_96.onnx"), "--calib-root", str(learn_root),
                   "--input-size", "96x64")
    assert e.returncode == 0, e.stderr[-3000:]
    assert json.loads((tmp_path / "int8_96.json").read_text())["input_size"] == [96, 64]
    e = run_module("-m", "trainers.export", "--weights", str(out / "best.ckpt"), "--onnx",
                   str(tmp_path / "no.onnx"), "--int8")
    assert e.returncode == 2 and "a float checkpoint: --int8 needs a quantization-aware" in e.stderr
    assert not (tmp_path / "no.onnx").exists()
    # --no-int8: the QAT network's fake-quantized graph (QuantizeLinear/DequantizeLinear pairs),
    # judged by its decoded keypoints on the checkpoint's validation crops. Value by value it
    # failed on most seeds (81-92 % of heatmap values within 1e-4 on seeds 0-2, max |Δ|
    # 0.004-0.006 on heatmaps peaking at ~0.2: quantization-bin flips between the two runtimes
    # cascade), while 99.1 % of argmaxes were the same and 99.8 % within one heatmap pixel
    e = run_module("-m", "trainers.export", "--weights", str(qat / "last.ckpt"), "--onnx",
                   str(tmp_path / "qat.onnx"), "--no-int8")
    assert e.returncode == 0, e.stderr[-3000:]
    print(e.stdout)
    header, _, values = (line.strip("| ").split(" | ") for line in e.stdout.splitlines()[:3])
    row = {h.strip(): v.strip() for h, v in zip(header, values)}
    assert float(row["keypoints agreeing"][:-1]) >= 99.0, e.stdout + e.stderr
    assert json.loads((tmp_path / "qat.json").read_text())["quantized"] is True
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "qat.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
