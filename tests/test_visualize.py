"""Architecture graphs, search plots and keypoint overlays on real search outputs."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from trainers.arch_file import load_arch
from tests.conftest import REPO, run_module
from tests.test_strategies import search

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def searched(coco_root, tmp_path_factory):
    """A 2-epoch DARTS search, its Prune step, and 2 random trials (real history files)."""
    out = tmp_path_factory.mktemp("vis")
    r = search(coco_root, "darts", out / "darts", "search.epochs", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_module("-m", "strategies.prune", "--arch", str(out / "darts" / "arch.json"),
                   "--out", str(out / "darts" / "derived.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = search(coco_root, "random", out / "random")
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("which", ["arch.json", "derived.json"])
def test_architecture_graph_svg_png_dot(searched, tmp_path, which):
    path = searched / "darts" / which
    arch = load_arch(path)
    for fmt in ("svg", "png", "dot"):
        out = tmp_path / f"g.{fmt}"
        r = run_module("-m", "visualize.arch", str(path), "--out", str(out))
        assert r.returncode == 0, r.stderr[-3000:]
        data = out.read_bytes()
        if fmt == "png":
            assert data.startswith(PNG) and len(data) > 5000
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert img.shape[1] > 600
        else:
            text = data.decode()
            for part in ("head", "upper_limbs", "lower_limbs", "left_wrist"):
                assert part in text  # parts labelled with their joints
            assert "stage 2" in text and "backbone" in text
    dot = (tmp_path / "g.dot").read_text()
    if arch.kind == "search":  # every cell, every slot weighted by beta
        assert dot.count("from_higher 0.") >= 9 and "penwidth" in dot
    else:  # only kept cells, chosen routes
        from search_space.pose_space import freeze

        net = freeze(arch.config.space, "coco", arch.choices)
        kept = sum(len(h.fabric.cells) for h in net.heads)
        assert sum(1 for line in dot.splitlines() if '"p' in line and "_l" in line
                   and "->" not in line and "label=" in line and " ch\\n" in line) == kept
    r = run_module("-m", "visualize.arch", str(path), "--out", str(tmp_path / "g.gif"))
    assert r.returncode == 2 and ".svg, .png or .dot" in r.stderr


@pytest.mark.e2e
def test_history_plots_from_real_histories(searched, tmp_path):
    r = run_module("-m", "visualize.history", str(searched / "darts" / "history.jsonl"),
                   "--out", str(tmp_path / "alpha.png"), "--pareto", str(tmp_path / "pareto.png"),
                   "--baseline", "hrnet_tiny=0.05:0.6")
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("alpha.png", "pareto.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
    r = run_module("-m", "visualize.history", str(searched / "random" / "history.jsonl"),
                   "--out", str(tmp_path / "trials.png"), "--pareto", str(tmp_path / "p2.png"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "trials.png").stat().st_size > 5000
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 0}\nnot json\n')
    r = run_module("-m", "visualize.history", str(bad), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "line 2" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_pareto_front():
    from visualize.history import pareto_front

    pts = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (3.0, 0.6), (4.0, 0.8)]
    assert pareto_front(pts) == [(1.0, 0.5), (2.0, 0.7), (4.0, 0.8)]


def test_heatmap_grid_marks_the_peaks(coco_root):
    from trainers.config import load_config
    from trainers.data.datasets import build_dataset
    from trainers.drawing import crop_to_bgr, heatmap_grid

    cfg = load_config(REPO / "configs" / "datasets" / "synthetic_coco.yaml",
                      ["dataset.root", str(coco_root), "model.input_size", "64x48"])
    ds = build_dataset(cfg, "val")
    sample = ds[(0, 0)]
    image = crop_to_bgr(np.asarray(sample["image"]))
    grid = heatmap_grid(image, np.asarray(sample["target"]), ds.spec, columns=6)
    assert grid.shape == (64 * 3, 48 * 6, 3)  # the crop + 17 joints in 3 rows of 6
    # the skeleton tile differs from the plain crop where joints were drawn
    assert np.abs(grid[:64, :48].astype(int) - image.astype(int)).sum() > 0


@pytest.mark.e2e
def test_train_derived_visualize_and_debug(coco_root, tmp_path):
    out = tmp_path / "run"
    r = run_module("trainers/train_derived.py", "--cfg",
                   str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"),
                   "--out", str(out), "--no-progress", "--visualize", "--debug",
                   "dataset.root", str(coco_root), "model.input_size", "64x48",
                   "train.num_workers", "0", "train.batch_size", "8", "train.epochs", "1",
                   "train.limit_train_batches", "2", "test.flip_test", "false")
    assert r.returncode == 0, r.stderr[-3000:]
    vis = sorted((out / "visualize").glob("epoch000_*.jpg"))
    debug = sorted((out / "debug").glob("epoch000.jpg"))
    assert len(vis) == 4 and len(debug) == 1
    img = cv2.imread(str(debug[0]))
    assert img is not None and img.shape[0] == 64 * 4  # 4 samples, one row each
