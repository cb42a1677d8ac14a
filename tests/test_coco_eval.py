import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO as CocoApi
from pycocotools.cocoeval import COCOeval

from search_space.joints import COCO
from search_space.errors import UserInputError
from trainers.evaluation.coco import (COCO_STAT_NAMES, evaluate_keypoints, load_coco_annotations,
                                      load_coco_results, oks_iou, oks_nms, rescore_and_nms)


def jittered_results(gt, sigma_px, seed=0, drop=0.0):
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt["annotations"]:
        if ann["num_keypoints"] == 0 or rng.random() < drop:
            continue
        k = np.array(ann["keypoints"], float).reshape(17, 3)
        k[:, :2] += rng.normal(0, sigma_px, (17, 2))
        k[:, 2] = rng.uniform(0.3, 1.0, 17)
        results.append({"image_id": ann["image_id"], "category_id": 1,
                        "keypoints": k.reshape(-1).tolist(), "score": float(rng.uniform(0.5, 1))})
    return results


def pycocotools_stats(ann_file, results):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = CocoApi(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")
        ev.params.useSegm = None
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats


@pytest.mark.parametrize("evaluator", ["pycocotools", "faster_coco_eval"])
@pytest.mark.parametrize("sigma_px", [0.0, 2.0, 6.0])
def test_matches_pycocotools_on_generated_data(coco_root, sigma_px, evaluator):
    """Both evaluators give pycocotools' 10 stats on the files (faster-coco-eval: identical,
    difference 0, the condition it is offered under)."""
    ann_file = coco_root / "annotations" / "person_keypoints_val2017.json"
    gt = load_coco_annotations(ann_file)
    for seed, drop in ((0, 0.1), (1, 0.0), (2, 0.5)):
        results = jittered_results(gt, sigma_px, seed=seed, drop=drop)
        ours = evaluate_keypoints(gt, results, evaluator=evaluator)
        ref = pycocotools_stats(ann_file, results)
        assert list(ours) == list(COCO_STAT_NAMES)
        np.testing.assert_allclose(list(ours.values()), ref, atol=1e-12 if evaluator == "pycocotools" else 0)


def test_perfect_predictions_score_one_and_noise_scores_less(coco_root):
    gt = load_coco_annotations(coco_root / "annotations" / "person_keypoints_val2017.json")
    perfect = evaluate_keypoints(gt, jittered_results(gt, 0.0))
    noisy = evaluate_keypoints(gt, jittered_results(gt, 8.0))
    assert perfect["AP"] == pytest.approx(1.0)
    assert noisy["AP"] < 0.8 * perfect["AP"]
    assert evaluate_keypoints(gt, [])["AP"] == 0.0


def test_oks_iou_identical_and_far():
    pose = np.zeros((17, 3))
    pose[:, :2] = np.random.default_rng(0).uniform(0, 100, (17, 2))
    pose[:, 2] = 1
    far = pose.copy()
    far[:, 0] += 500
    ious = oks_iou(pose.reshape(-1), np.stack([pose.reshape(-1), far.reshape(-1)]), 5000.0,
                   np.array([5000.0, 5000.0]), np.array(COCO.sigmas))
    assert ious[0] == pytest.approx(1.0) and ious[1] < 0.01


def test_oks_nms_drops_duplicates_keeps_distinct():
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    b = a.copy()
    b[:, :2] += 0.5  # a duplicate of a
    c = a.copy()
    c[:, 0] += 300  # another person
    keep = oks_nms(np.stack([a, b, c]), np.array([0.8, 0.9, 0.5]), np.full(3, 4000.0), 0.9,
                   np.array(COCO.sigmas))
    assert keep == [1, 2]


def test_rescoring_uses_confident_joints_only():
    pose = np.zeros((1, 17, 3))
    pose[0, :, 2] = 0.1
    pose[0, :4, 2] = [0.9, 0.7, 0.5, 0.3]  # mean over >0.2 is 0.6
    res = rescore_and_nms(pose, np.array([0.5]), np.array([1000.0]), np.array([7]), 0.2, 0.9)
    assert res[0]["score"] == pytest.approx(0.3) and res[0]["image_id"] == 7
    assert len(res[0]["keypoints"]) == 51


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["annotations"][0].update(keypoints=[0] * 50), "expected 51 keypoint values"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, -3, 10]), "negative box size"),
    (lambda d: d["annotations"][0].pop("area"), "missing 'area'"),
    (lambda d: d["annotations"][0].update(image_id=-5), "is not in 'images'"),
    (lambda d: d.pop("images"), "missing or not a list"),
])
def test_malformed_annotations_name_file_and_id(coco_root, tmp_path, mutate, words):
    data = json.loads((coco_root / "annotations" / "person_keypoints_val2017.json").read_text())
    ann_id = data["annotations"][0]["id"]
    mutate(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(UserInputError) as info:
        load_coco_annotations(bad)
    assert words in str(info.value) and str(bad) in str(info.value)
    if "annotation" in (info.value.field or ""):
        assert str(ann_id) in info.value.field


def test_bad_results_files(tmp_path):
    (tmp_path / "trunc.json").write_text('[{"image_id": 1, "keyp')
    with pytest.raises(UserInputError, match="not valid JSON"):
        load_coco_results(tmp_path / "trunc.json")
    (tmp_path / "short.json").write_text(json.dumps(
        [{"image_id": 1, "category_id": 1, "keypoints": [0] * 3, "score": 1}]))
    with pytest.raises(UserInputError, match="51 keypoint values") as info:
        load_coco_results(tmp_path / "short.json")
    assert info.value.field == "[0]"
    (tmp_path / "ids.json").write_text(json.dumps(
        [{"image_id": 99, "category_id": 1, "keypoints": [0] * 51, "score": 1}]))
    with pytest.raises(UserInputError, match="not in the ground truth"):
        load_coco_results(tmp_path / "ids.json", image_ids={1, 2})


def test_sigmas_match_pycocotools():
    from pycocotools.cocoeval import Params

    np.testing.assert_allclose(COCO.sigmas, Params(iouType="keypoints").kpt_oks_sigmas)
