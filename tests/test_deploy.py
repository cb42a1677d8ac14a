"""Deployment without torch: ``trainers.deploy.export`` writes the ONNX model and its JSON, and
``trainers.deploy.infer`` (onnxruntime + NumPy + OpenCV) predicts what the torch path predicts."""
import json

import numpy as np
import pytest
import torch

from tests.conftest import run_module
from tests.official_layouts import OfficialHRNet, randomize

TINY = dict(stem=32, stage1=(1, 16), stages=((1, 1, (16, 32)), (1, 1, (16, 32, 64)),
                                             (1, 1, (16, 32, 64, 128))))

#: run a module with ``import torch`` failing, as on a machine without it
NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def _no_torch(*args):
    return run_module("-c", NO_TORCH, *args)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """hrnet_tiny with random weights (official layout), exported at 128×96."""
    root = tmp_path_factory.mktemp("deploy")
    torch.save(randomize(OfficialHRNet(**TINY)).state_dict(), root / "tiny.pth")
    r = run_module("-m", "trainers.export", "--weights", str(root / "tiny.pth"), "--model",
                   "hrnet_tiny", "--onnx", str(root / "tiny.onnx"), "--input-size", "128x96")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "size (MB)" in r.stdout and (root / "tiny.json").is_file()
    return root


def test_the_json_says_what_inference_needs(exported):
    from search_space.joints import COCO

    meta = json.loads((exported / "tiny.json").read_text())
    assert meta["input_size"] == [128, 96] and meta["heatmap_size"] == [32, 24]
    assert meta["joints"] == list(COCO.names) and meta["flip_pairs"] == [list(p) for p in COCO.flip_pairs]
    assert meta["mean"] == [0.485, 0.456, 0.406] and meta["std"] == [0.229, 0.224, 0.225]
    assert meta["margin"] == 1.25 and meta["color_rgb"] is True


@pytest.mark.parametrize("flip", [True, False])
def test_torch_free_inference_equals_the_torch_path(exported, coco_root, tmp_path, flip):
    """The keypoints trainers.deploy.infer prints, in a process where `import torch` fails, equal
    visualize.demo's torch path on the same image and boxes (x, y and score within 1e-4)."""
    import cv2

    from trainers.network.build import load_any_network
    from trainers.config.experiment import config_from_dict
    from trainers.evaluation.prediction import predict_image

    image = sorted((coco_root / "images" / "val2017").glob("*.jpg"))[0]
    boxes = [{"image_id": 7, "bbox": [10.0, 20.0, 120.0, 200.0], "score": 0.9},
             {"image_id": 7, "bbox": [60.0, 5.0, 90.0, 150.0], "score": 0.8},
             {"image_id": 7, "bbox": [0.0, 0.0, 50.0, 50.0], "score": 0.1},  # below --score-thr
             {"image_id": 8, "bbox": [0.0, 0.0, 80.0, 80.0], "score": 0.9}]  # another image
    (tmp_path / "dets.json").write_text(json.dumps(boxes))
    args = ["trainers.infer", "--model", str(exported / "tiny.onnx"), "--image", str(image),
            "--out", str(tmp_path / "vis.png"), "--boxes", str(tmp_path / "dets.json"),
            "--image-id", "7", "--json"] + ([] if flip else ["--no-flip"])
    r = _no_torch(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    people = json.loads(r.stdout.strip().splitlines()[-1])["people"]
    assert [p["box"] for p in people] == [b["bbox"] for b in boxes[:2]]
    ours = np.array([p["keypoints"] for p in people])
    cfg = config_from_dict({"dataset": {"name": "coco", "root": ""},
                            "model": {"name": "hrnet_tiny", "input_size": [128, 96]}}, source="test")
    _, _, model = load_any_network(exported / "tiny.pth", cfg)
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    torch_path = predict_image(model, cfg, bgr, [b["bbox"] for b in boxes[:2]], flip=flip)
    print("max |onnxruntime (no torch) - torch|:", np.abs(ours - torch_path).max(0).max(0))
    assert np.abs(ours - torch_path).max() <= 1e-4
    drawn = cv2.imread(str(tmp_path / "vis.png"))
    assert drawn.shape == bgr.shape and (drawn != bgr).any()


def test_bad_deployment_inputs_get_one_clear_line(exported, coco_root, tmp_path):
    image = str(sorted((coco_root / "images" / "val2017").glob("*.jpg"))[0])
    (tmp_path / "alone.onnx").write_bytes((exported / "tiny.onnx").read_bytes())
    r = _no_torch("trainers.infer", "--model", str(tmp_path / "alone.onnx"), "--image", image,
                  "--out", str(tmp_path / "v.png"))
    assert r.returncode == 2 and "no alone.json beside it" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "v.png").exists()
    meta = json.loads((exported / "tiny.json").read_text())
    meta["flip_pairs"] = [[1, 99]]
    (tmp_path / "alone.json").write_text(json.dumps(meta))
    r = _no_torch("trainers.infer", "--model", str(tmp_path / "alone.onnx"), "--image", image,
                  "--out", str(tmp_path / "v.png"))
    assert r.returncode == 2 and "alone.json: flip_pairs" in r.stderr
    r = _no_torch("trainers.infer", "--model", str(exported / "tiny.onnx"), "--image",
                  str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "v.png"))
    assert r.returncode == 2 and "missing.jpg" in r.stderr and "Traceback" not in r.stderr
