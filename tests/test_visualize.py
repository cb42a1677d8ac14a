"""Architecture graphs, search plots and keypoint overlays on real search outputs."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from trainers.network.arch_file import load_arch
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


def test_heatmap_grid_marks_the_peaks():
    """A hand-made case: a grey 64×48 crop, joint 0 (nose) peaking at heatmap cell (x=5, y=3),
    joint 1 at (x=9, y=12), every other joint empty. With stride 4 a peak cell (x, y) is the crop
    pixel ((x + 0.5)·4 − 0.5, (y + 0.5)·4 − 0.5) = (21.5, 13.5) and (37.5, 49.5)."""
    from search_space.joints import KEYPOINT_SPECS
    from trainers.deploy.drawing import heatmap_grid

    spec = KEYPOINT_SPECS["coco"]
    image = np.full((64, 48, 3), 128, np.uint8)
    heatmaps = np.zeros((17, 16, 12), np.float32)
    heatmaps[0, 3, 5] = 1.0
    heatmaps[1, 12, 9] = 0.9
    grid = heatmap_grid(image, heatmaps, spec, columns=6)
    assert grid.shape == (64 * 3, 48 * 6, 3)  # the crop + 17 joints in 3 rows of 6
    # skeleton tile: dots centred on the two peaks, the nose–left-eye limb between them,
    # nothing anywhere else (no other joint passes the threshold)
    changed = np.abs(grid[:64, :48].astype(int) - 128).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    assert changed[13, 21] and changed[49, 37] and changed[31, 29]  # both peaks, the limb's middle
    assert xs.min() >= 21 - 4 and xs.max() <= 37 + 4 and ys.min() >= 13 - 4 and ys.max() <= 49 + 4
    # joint tiles: the colour map's hottest (reddest) pixel sits over the joint's peak
    for j, (y, x) in ((0, (13.5, 21.5)), (1, (49.5, 37.5))):
        r, c = divmod(j + 1, 6)
        tile = grid[64 * r:64 * (r + 1), 48 * c:48 * (c + 1)].astype(int)
        tile[:12] = 0  # the joint's name is written at the top
        red = tile[..., 2] - tile[..., 0]
        py, px = np.unravel_index(red.argmax(), red.shape)
        assert abs(py - y) <= 2 and abs(px - x) <= 2, (j, py, px)
    # an empty heatmap leaves its tile the colour map's zero (blue) blended with the crop
    empty = grid[64:128, 48 * 2:48 * 3]
    assert (empty[20:, :, 0] > empty[20:, :, 2]).all()


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
