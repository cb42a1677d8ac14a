import hashlib
import json

import numpy as np
import pytest

from search_space.joints import COCO
from trainers.data.synthetic import render_image, write_coco
from trainers.evaluation.mpii import load_gt_valid


def digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    write_coco(tmp_path / "a", 3, 2, seed=5)
    write_coco(tmp_path / "b", 3, 2, seed=5)
    write_coco(tmp_path / "c", 3, 2, seed=6)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_coco_layout_and_annotations(coco_root):
    for path in ("annotations/person_keypoints_train2017.json",
                 "annotations/person_keypoints_val2017.json",
                 "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"):
        assert (coco_root / path).is_file()
    data = json.loads((coco_root / "annotations" / "person_keypoints_val2017.json").read_text())
    assert data["categories"][0]["keypoints"] == list(COCO.names)
    files = {p.name for p in (coco_root / "images" / "val2017").glob("*.jpg")}
    assert files == {img["file_name"] for img in data["images"]}
    anns = data["annotations"]
    assert len(anns) > len(data["images"])  # several people per image
    vis = np.array([a["keypoints"][2::3] for a in anns])
    assert set(np.unique(vis)) <= {0, 1, 2} and (vis == 2).mean() > 0.6
    for a in anns:
        k = np.array(a["keypoints"]).reshape(17, 3)
        assert np.all(k[k[:, 2] == 0, :2] == 0)  # unlabelled joints are (0, 0, 0)
        assert a["num_keypoints"] == int((k[:, 2] > 0).sum())
        x, y, w, h = a["bbox"]
        inside = k[:, 2] > 0
        assert np.all(k[inside, 0] >= x - 1) and np.all(k[inside, 0] <= x + w + 1)
        assert 0 < a["area"] <= w * h
    dets = json.loads((coco_root / "person_detection_results" /
                       "COCO_val2017_detections_AP_H_56_person.json").read_text())
    assert {d["image_id"] for d in dets} <= {img["id"] for img in data["images"]}
    assert all(0 < d["score"] <= 1 for d in dets)


def test_occlusion_and_frontal_left_right():
    """Across many images some joints are hidden (v=1), and a frontal figure's left shoulder is
    on the image right, as in photos of people facing the camera."""
    hidden, left_is_right = 0, []
    for i in range(30):
        _, persons = render_image(np.random.default_rng(i))
        for p in persons:
            hidden += sum(1 for v in p.visibility.values() if v == 1)
            if p.visibility["left_shoulder"] and p.visibility["right_shoulder"]:
                left_is_right.append(p.points["left_shoulder"][0] > p.points["right_shoulder"][0])
    assert hidden > 5
    assert np.mean(left_is_right) > 0.8


def test_mpii_layout_and_gt_mat(mpii_root):
    entries = json.loads((mpii_root / "annot" / "valid.json").read_text())
    gt = load_gt_valid(mpii_root / "annot" / "gt_valid.mat")
    assert gt.num_persons == len(entries) > 0
    e = entries[0]
    assert len(e["joints"]) == 16 and len(e["joints_vis"]) == 16
    np.testing.assert_allclose(gt.pos_gt_src[:, :, 0], np.array(e["joints"]), atol=1e-6)
    np.testing.assert_allclose(gt.jnt_missing[:, 0], 1 - np.array(e["joints_vis"]))
    assert np.all(gt.headboxes_src[1] > gt.headboxes_src[0])
    assert (mpii_root / "images" / e["image"]).is_file()
    assert json.loads((mpii_root / "annot" / "train.json").read_text())


def test_if_missing_writes_once_and_a_late_writer_leaves_the_first_dataset(tmp_path):
    """``--if-missing`` (nnictl's concurrent trials): the folder appears whole, by rename; a
    writer that finishes second (atomic_dir's FileExistsError) leaves the first one's dataset
    and no temporary folder; a normal folder's mode, not mkdtemp's 0700."""
    import os
    import stat

    from trainers.atomic import atomic_dir
    from trainers.data.synthetic.__main__ import main

    out = tmp_path / "data"
    assert main(["--format", "coco", "--out", str(out), "--train", "2", "--val", "2", "--if-missing"]) == 0
    first = sorted(p.name for p in (out / "annotations").iterdir())
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    with pytest.raises(FileExistsError):
        with atomic_dir(out) as tmp:
            (tmp / "late").write_text("x")
    assert sorted(p.name for p in (out / "annotations").iterdir()) == first
    assert not (out / "late").exists() and [p.name for p in tmp_path.iterdir()] == ["data"]
    assert main(["--format", "coco", "--out", str(out), "--if-missing"]) == 0  # left as it is


def test_first_line_of_an_exception_message():
    from search_space.errors import first_line

    assert first_line(RuntimeError("size mismatch\nat layer 3")) == "size mismatch"
    assert first_line(IndexError()) == "" and first_line(ValueError("x" * 300)) == "x" * 200
    assert first_line(ValueError("x" * 300), limit=None) == "x" * 300
