import json
import logging
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config
from trainers.data.codec import get_max_preds
from trainers.data.heatmap_targets import BatchTargets
from trainers.data.images import SkipCounter
from search_space.joints import COCO
from trainers.data.registry import build_dataset
from trainers.data.loader import build_loader
from trainers.data.topdown import normalize_images
from search_space.errors import UserInputError
from trainers.evaluation.prediction import predict_dataset


def test_coco_train_samples(coco_root):
    cfg = tiny_config("coco", coco_root)
    ds = build_dataset(cfg, "train")
    anns = json.loads((coco_root / "annotations" / "person_keypoints_train2017.json").read_text())
    expected = sum(1 for a in anns["annotations"] if a["area"] > 0 and max(a["keypoints"]) > 0)
    assert len(ds) == expected and ds.num_joints == 17
    s = ds[0]
    heatmaps, weights = BatchTargets(ds.codec)(s)
    assert s["image"].shape == (64, 48, 3) and heatmaps.shape == (17, 16, 12)
    assert weights.shape == (17, 1) and s["visible"].shape == (17,)
    assert s["image"].dtype == np.uint8  # normalised on the device, see normalize_images
    norm = normalize_images(torch.from_numpy(s["image"])[None])
    assert norm.dtype == torch.float32 and abs(float(norm.mean())) < 3
    assert norm.shape == (1, 3, 64, 48)
    expected = (s["image"][5, 5, 2] / 255 - 0.485) / 0.229  # BGR crop: red is channel 2
    assert float(norm[0, 0, 5, 5]) == pytest.approx(float(expected), rel=1e-5)
    expected = (s["image"][5, 7, 0] / 255 - 0.406) / 0.225  # blue: the network's channel 2
    assert float(norm[0, 2, 5, 7]) == pytest.approx(float(expected), rel=1e-5)
    bgr = normalize_images(torch.from_numpy(s["image"])[None], color_rgb=False)
    assert float(bgr[0, 0, 5, 7]) == pytest.approx(float(expected), rel=1e-5)
    # every weighted target whose joint lies on the heatmap peaks where the joint is (a joint
    # just off the border keeps weight 1 with its Gaussian tail inside, as in HRNet)
    coords, _ = get_max_preds(heatmaps[None])
    mu = np.floor(s["joints"] / 4 + 0.5)
    on_map = (mu[:, 0] >= 0) & (mu[:, 0] < 12) & (mu[:, 1] >= 0) & (mu[:, 1] < 16)
    w = (weights[:, 0] > 0) & on_map
    assert w.sum() >= 5
    assert np.abs(coords[0][w] - mu[w]).max() == 0


def test_augmentation_is_reproducible_and_varies_by_epoch(coco_root):
    ds = build_dataset(tiny_config("coco", coco_root), "train")
    a, b = ds[3], ds[3]
    assert np.array_equal(a["image"], b["image"])
    ds.set_epoch(1)
    assert not np.array_equal(a["image"], ds[3]["image"])


def test_flip_augmentation_mirrors_image_and_swaps_joints(coco_root):
    cfg = tiny_config("coco", coco_root, "dataset.scale_factor", "0", "dataset.rotation_factor", "0",
                      "dataset.prob_half_body", "0")
    train, plain = build_dataset(cfg, "train"), build_dataset(cfg, "train", train=False)
    perm = COCO.flip_permutation()
    seen = {"flipped": 0, "unflipped": 0}
    for i in range(len(train)):
        t, p = train[i], plain[i]
        if np.array_equal(t["image"], p["image"]):
            seen["unflipped"] += 1
            continue
        seen["flipped"] += 1
        # crop'(q) = crop(W - q): compare interior columns
        ti, pi = t["image"] / 255.0, p["image"] / 255.0
        assert np.abs(ti[:, 1:] - pi[:, :0:-1]).mean() < 0.05
        targets = BatchTargets(train.codec)
        vis = (targets(p)[1][:, 0] > 0) & (targets(t)[1][perm, 0] > 0)
        tj, pj = t["joints"][perm], p["joints"]
        np.testing.assert_allclose(tj[vis, 0], 48 - pj[vis, 0], atol=1e-3)
        np.testing.assert_allclose(tj[vis, 1], pj[vis, 1], atol=1e-3)
    assert seen["flipped"] > 0 and seen["unflipped"] > 0


def test_oracle_round_trip_through_coco_eval(coco_root, tmp_path):
    """GT targets → decode → back-project → rescoring/NMS → COCOeval: the full val path."""
    cfg = tiny_config("coco", coco_root, "model.input_size", "128x96", "model.sigma", "2")
    ds = build_dataset(cfg, "val")
    preds, idx, skipped = predict_dataset(ds, build_loader(ds, 4, False, 0),
                                          lambda b: BatchTargets(ds.codec)(b)[0],
                                          progress=False)
    assert skipped == 0 and len(preds) == len(ds)
    stats = ds.evaluate(preds, idx, str(tmp_path))
    assert stats["AP50"] > 0.95 and stats["AP"] > 0.6
    results = json.loads((tmp_path / "keypoints_val2017_results.json").read_text())
    assert len(results) == len(ds)  # distinct persons survive OKS-NMS


def test_detection_boxes_and_thresholds(coco_root):
    cfg = tiny_config("coco", coco_root, "test.use_gt_bbox", "false")
    dets = json.loads((coco_root / "person_detection_results" /
                       "COCO_val2017_detections_AP_H_56_person.json").read_text())
    ds = build_dataset(cfg, "val")
    assert len(ds) == len(dets)
    assert sorted(r.score for r in ds.records) == sorted(d["score"] for d in dets)
    strict = build_dataset(tiny_config("coco", coco_root, "test.use_gt_bbox", "false",
                                       "test.image_thre", "0.6"), "val")
    assert len(strict) == sum(1 for d in dets if d["score"] >= 0.6) < len(dets)


def test_missing_detection_file_is_a_clear_error(coco_root):
    cfg = tiny_config("coco", coco_root, "test.use_gt_bbox", "false", "test.det_file", "nope.json")
    with pytest.raises(UserInputError, match="detection results file not found"):
        build_dataset(cfg, "val")


def test_corrupted_images_are_skipped_and_counted(coco_root, tmp_path, caplog):
    root = tmp_path / "coco"
    shutil.copytree(coco_root, root)
    images = sorted((root / "images" / "train2017").glob("*.jpg"))
    data = images[0].read_bytes()
    images[0].write_bytes(data[: len(data) // 2])  # truncated JPEG
    images[1].write_bytes(b"")  # empty file
    images[2].unlink()  # missing
    bad = {str(p) for p in images[:3]}
    ds = build_dataset(tiny_config("coco", root), "train")
    n_bad = sum(1 for r in ds.records if r.image in bad)
    counter = SkipCounter()
    kept = 0
    for batch in build_loader(ds, 4, shuffle=False, num_workers=2):
        counter.update(batch)
        kept += batch["size"]
        if batch["size"]:
            assert batch["image"].shape[0] == batch["size"]
    assert counter.count == n_bad > 0 and kept == len(ds) - n_bad
    with caplog.at_level(logging.WARNING):
        assert counter.report("epoch 0 train") == n_bad
    assert f"skipped {n_bad} unreadable image(s)" in caplog.text
    assert "truncated JPEG" in caplog.text and counter.count == 0


def test_mpii_records_and_pckh_oracle(mpii_root, tmp_path):
    cfg = tiny_config("mpii", mpii_root)
    ds = build_dataset(cfg, "val")
    entries = json.loads((mpii_root / "annot" / "valid.json").read_text())
    assert len(ds) == len(entries)
    e, r = entries[0], ds.records[0]
    # official loader: centre +15·s down, ×1.25, then 1-based → 0-based
    np.testing.assert_allclose(r.center, [e["center"][0] - 1, e["center"][1] + 15 * e["scale"] - 1],
                               atol=1e-3)
    np.testing.assert_allclose(r.scale, [e["scale"] * 1.25] * 2, rtol=1e-5)
    s = build_dataset(cfg, "train")[0]
    assert s["image"].shape == (64, 64, 3) and BatchTargets(ds.codec)(s)[0].shape == (16, 16, 16)
    preds, idx, _ = predict_dataset(ds, build_loader(ds, 4, False, 0),
                                    lambda b: BatchTargets(ds.codec)(b)[0],
                                    progress=False)
    metrics = ds.evaluate(preds, idx, str(tmp_path))
    assert metrics["Mean"] > 90 and (tmp_path / "pred.mat").exists()
    # a prediction shifted by a head size is wrong everywhere
    far = preds.copy()
    far[:, :, 0] += 200
    assert ds.evaluate(far, idx, str(tmp_path))["Mean"] < 5


def test_malformed_mpii_annotation(mpii_root, tmp_path):
    root = tmp_path / "mpii"
    shutil.copytree(mpii_root, root)
    path = root / "annot" / "valid.json"
    entries = json.loads(path.read_text())
    entries[2]["joints"] = entries[2]["joints"][:15]
    path.write_text(json.dumps(entries))
    with pytest.raises(UserInputError) as info:
        build_dataset(tiny_config("mpii", root), "val")
    assert info.value.field == "[2]" and "16 joints" in str(info.value) and str(path) in str(info.value)


def test_an_mpii_config_without_the_dataset_file_reads_mpiis_own_sets(mpii_root):
    """dataset.train_set / val_set left out: MPII reads annot/train.json and valid.json (not
    COCO's train2017), COCO its train2017 / val2017."""
    from trainers.config.experiment import config_from_dict
    from trainers.data.registry import build_dataset, image_set

    cfg = config_from_dict({"dataset": {"name": "mpii", "root": str(mpii_root)},
                            "model": {"input_size": [64, 64]}})
    assert (image_set(cfg, "train"), image_set(cfg, "val")) == ("train", "valid")
    assert build_dataset(cfg, "val").ann_file.name == "valid.json"
    coco = config_from_dict({"dataset": {"name": "coco", "root": "x"}})
    assert (image_set(coco, "train"), image_set(coco, "val")) == ("train2017", "val2017")
