"""The Python inferencer against test.py's predictions, its ONNX backend against the torch one,
and the video demo (torch and torch-free) on a short synthetic video."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from search_space.errors import UserInputError
from tests.conftest import CONFIGS, run_module
from tests.official_layouts import OfficialHRNet, randomize
from trainers.config.experiment import load_config
from trainers.data.registry import build_dataset
from trainers.deploy.inferencer import PoseInferencer

TINY = dict(stem=32, stage1=(1, 16), stages=((1, 1, (16, 32)), (1, 1, (16, 32, 64)),
                                             (1, 1, (16, 32, 64, 128))))
NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")

pytestmark = pytest.mark.e2e  # real commands: test.py, export, the video demos (~40 s)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, coco_root):
    """hrnet_tiny with random weights (official layout), its config at 128×96, its ONNX export."""
    root = tmp_path_factory.mktemp("inferencer")
    torch.manual_seed(0)
    torch.save(randomize(OfficialHRNet(**TINY)).state_dict(), root / "tiny.pth")
    (root / "tiny.yaml").write_text(
        f"_base_: {CONFIGS / 'datasets' / 'synthetic_coco.yaml'}\n"
        f"dataset: {{root: {coco_root}}}\n"
        "model: {name: hrnet_tiny, input_size: [128, 96]}\n"
        "test: {batch_size: 8}\ntrain: {num_workers: 0}\n")
    r = run_module("-m", "trainers.export", "--weights", str(root / "tiny.pth"), "--cfg",
                   str(root / "tiny.yaml"), "--onnx", str(root / "tiny.onnx"))
    assert r.returncode == 0, r.stderr[-3000:]
    return root


def test_inferencer_equals_test_py_predictions(tiny, tmp_path):
    """The keypoints PoseInferencer returns for each ground-truth person box are the ones
    test.py evaluates (its COCO results file: x, y rounded to 3 decimals, after OKS-NMS)."""
    r = run_module("trainers/test.py", "--cfg", str(tiny / "tiny.yaml"), "--weights",
                   str(tiny / "tiny.pth"), "--out", str(tmp_path / "eval"))
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(next((tmp_path / "eval").rglob("keypoints_val2017_results.json")).read_text())
    cfg = load_config(tiny / "tiny.yaml")
    val = build_dataset(cfg, "val")
    pose = PoseInferencer(tiny / "tiny.yaml", weights=tiny / "tiny.pth")
    ours: dict[int, list[np.ndarray]] = {}
    for image_id in sorted({rec.image_id for rec in val.records}):
        recs = [rec for rec in val.records if rec.image_id == image_id]
        out = pose(recs[0].image, boxes=[rec.extra["bbox"] for rec in recs])
        assert out.keypoints.shape == (len(recs), 17, 2) and out.names[0] == "nose"
        ours[image_id] = [np.concatenate([k, s[:, None]], 1) for k, s in zip(out.keypoints, out.scores)]
    worst = 0.0
    for res in results:
        mine = min(ours[res["image_id"]], key=lambda p: np.abs(
            p[:, :2] - np.reshape(res["keypoints"], (17, 3))[:, :2]).max())
        worst = max(worst, float(np.abs(mine[:, :2] - np.reshape(res["keypoints"], (17, 3))[:, :2]).max()))
    print("max |inferencer - test.py| (px):", worst)
    assert len(results) > 0 and worst <= 5e-4 + 1e-6  # test.py rounds to 3 decimals


def test_onnx_inferencer_equals_torch_and_takes_batches(tiny, coco_root):
    images = sorted((coco_root / "images" / "val2017").glob("*.jpg"))[:2]
    boxes = [[[10.0, 20.0, 120.0, 200.0]], [[5.0, 5.0, 100.0, 150.0], [60.0, 5.0, 90.0, 150.0]]]
    torch_pose = PoseInferencer(tiny / "tiny.yaml", weights=tiny / "tiny.pth")
    onnx_pose = PoseInferencer(tiny / "tiny.onnx")
    a, b = torch_pose(images, boxes), onnx_pose([cv2.imread(str(p)) for p in images], boxes)
    assert [len(x) for x in a] == [1, 2] == [len(x) for x in b]
    for x, y in zip(a, b):
        assert np.abs(x.keypoints - y.keypoints).max() <= 1e-3
        assert np.abs(x.scores - y.scores).max() <= 1e-4
    whole = onnx_pose(str(images[0]))  # no boxes: the whole image is one person
    assert whole.boxes.tolist() == [[0.0, 0.0, *cv2.imread(str(images[0])).shape[1::-1]]]
    assert json.dumps(whole.to_dict())
    # the ONNX inferencer where torch cannot be imported
    r = run_module("-c", "import sys; sys.modules['torch'] = None; from trainers.deploy.inferencer "
                   "import PoseInferencer; print(PoseInferencer(sys.argv[1])(sys.argv[2]).keypoints.shape)",
                   str(tiny / "tiny.onnx"), str(images[0]))
    assert r.returncode == 0 and "(1, 17, 2)" in r.stdout, r.stderr[-3000:]
    with pytest.raises(UserInputError):
        onnx_pose(images, boxes[:1])
    with pytest.raises(UserInputError) as err:
        PoseInferencer("hrnet_tiny")
    assert err.value.field == "weights"


def _synthetic_video(coco_root: Path, out: Path, frames: int = 6) -> tuple[Path, Path]:
    """A short video of synthetic images (320×240) and its boxes file (image_id = frame)."""
    gt = json.loads((coco_root / "annotations" / "person_keypoints_val2017.json").read_text())
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (320, 240))
    dets = []
    for i, img in enumerate(gt["images"][:frames]):
        image = cv2.imread(str(coco_root / "images" / "val2017" / img["file_name"]))
        sx, sy = 320 / image.shape[1], 240 / image.shape[0]
        writer.write(cv2.resize(image, (320, 240)))
        dets += [{"image_id": i, "bbox": [a["bbox"][0] * sx, a["bbox"][1] * sy, a["bbox"][2] * sx,
                                          a["bbox"][3] * sy], "score": 1.0}
                 for a in gt["annotations"] if a["image_id"] == img["id"] and a["bbox"][2] > 0]
    writer.release()
    boxes = out.with_suffix(".json")
    boxes.write_text(json.dumps(dets))
    return out, boxes


def _frames(path: Path) -> list[np.ndarray]:
    cap, frames = cv2.VideoCapture(str(path)), []
    ok, frame = cap.read()
    while ok:
        frames.append(frame)
        ok, frame = cap.read()
    cap.release()
    return frames


def test_video_demo_torch_and_torch_free(tiny, coco_root, tmp_path):
    video, boxes = _synthetic_video(coco_root, tmp_path / "in.mp4")
    source = _frames(video)
    assert len(source) == 6
    r = run_module("-m", "visualize.demo", "--weights", str(tiny / "tiny.pth"), "--cfg",
                   str(tiny / "tiny.yaml"), "--video", str(video), "--boxes", str(boxes),
                   "--kpt-thr", "0", "--out", str(tmp_path / "out.mp4"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "frames/s" in r.stdout and "boxes file" in r.stdout
    drawn = _frames(tmp_path / "out.mp4")
    assert len(drawn) == 6 and drawn[0].shape == source[0].shape
    assert all(np.abs(d.astype(int) - s).mean() > 1 for d, s in zip(drawn, source))
    # torch-free: the ONNX model, people from OpenCV's HOG detector
    r = run_module("-c", NO_TORCH, "trainers.infer", "--model", str(tiny / "tiny.onnx"),
                   "--video", str(video), "--out", str(tmp_path / "hog.avi"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "OpenCV HOG" in r.stdout and len(_frames(tmp_path / "hog.avi")) == 6
    # bad input: one line, nothing written
    r = run_module("-m", "trainers.infer", "--model", str(tiny / "tiny.onnx"), "--video",
                   str(tmp_path / "in.json"), "--out", str(tmp_path / "bad.mp4"))
    assert r.returncode == 2 and "OpenCV cannot open" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.mp4").exists() and not list(tmp_path.glob(".bad.mp4*"))
    r = run_module("-m", "trainers.infer", "--model", str(tiny / "tiny.onnx"), "--video",
                   str(video), "--out", str(tmp_path / "out.gif"))
    assert r.returncode == 2 and "out.gif" in r.stderr
