"""The COCO-format datasets beside COCO (CrowdPose, OCHuman, AI Challenger, COCO-WholeBody, custom
layouts) and the distance metrics: readers on the synthetic files in each official layout, each
evaluator against its reference (the library called on the files as mmpose calls it, and an
independent pycocotools computation where one exists), PCK/AUC/EPE on hand-worked cases."""
from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest

from search_space.errors import UserInputError
from search_space.joints import AIC, COCO, COCO_WHOLEBODY, CROWDPOSE, WHOLEBODY_PARTS, keypoint_spec
from search_space.parts import body_parts
from tests.conftest import CONFIGS
from trainers.config.experiment import config_from_dict, config_to_dict, load_config
from trainers.data.custom import left_right_pairs, skeleton_parts
from trainers.data.registry import build_dataset
from trainers.data.synthetic.coco_family import CUSTOM_POINTS, write_coco_family
from trainers.evaluate import evaluate_files
from trainers.evaluation.keypoint_metrics import (distance_metrics, keypoint_auc, keypoint_epe,
                                                  pck_accuracy)

FORMATS = ("crowdpose", "ochuman", "aic", "coco_wholebody", "custom")
CUSTOM_SIGMAS = [0.035, 0.05, 0.107, 0.072, 0.072, 0.062, 0.062, 0.087, 0.087, 0.089, 0.089, 0.079]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for fmt in FORMATS:
        out[fmt] = tmp_path_factory.mktemp(fmt)
        write_coco_family(fmt, out[fmt], 6, 8, seed=3)
    return out


def config(fmt: str, root: Path, *overrides: str):
    name = "custom_example" if fmt == "custom" else f"synthetic_{fmt}"
    return load_config(CONFIGS / "datasets" / f"{name}.yaml",
                       ["dataset.root", str(root), "model.input_size", "64x48", *overrides])


def jittered(records, sigma_px: float, seed: int, num_joints: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    preds = np.zeros((len(records), num_joints, 3))
    for i, r in enumerate(records):
        preds[i, :, :2] = r.joints + rng.normal(0, sigma_px, r.joints.shape)
        preds[i, :, 2] = rng.uniform(0.3, 1.0, num_joints)
    return preds


# ----------------------------------------------------------------------------- PCK, AUC, EPE

def test_pck_auc_epe_hand_worked():
    # two persons, two joints; box sides 100 (max(100, 50)) and 20
    gt = np.zeros((2, 2, 2))
    pred = np.array([[[3.0, 4.0], [0.0, 10.0]],     # errors 5 and 10 px → 0.05, 0.10 of 100
                     [[0.0, 0.5], [6.0, 8.0]]])     # errors 0.5 and 10 px → 0.025, 0.5 of 20
    mask = np.array([[True, True], [True, False]])  # the last joint is unlabelled
    boxes = np.array([[0, 0, 100, 50], [0, 0, 20, 10]])
    norm = np.array([100.0, 20.0])
    # α = 0.06: joint 0 → 0.05 and 0.025 both below (1.0); joint 1 → 0.10 not (0.0); mean 0.5
    per_joint, mean, labelled = pck_accuracy(pred, gt, mask, norm, 0.06)
    assert per_joint.tolist() == [1.0, 0.0] and mean == 0.5 and labelled == 2
    # α = 0.05 is strict (mmpose's "<"): joint 0 has 0.025 only → 0.5; joint 1 → 0; mean 0.25
    assert pck_accuracy(pred, gt, mask, norm, 0.05)[1] == 0.25
    # AUC over α = 0, 0.1, 0.2, 0.3 (max 0.4, 4 steps): PCKs 0, (1+0)/2, (1+1)/2, 1 → 2.5 / 4
    assert keypoint_auc(pred, gt, mask, norm, max_alpha=0.4, num_thrs=4) == pytest.approx(0.625)
    # EPE over the three labelled joints: (5 + 10 + 0.5) / 3
    assert keypoint_epe(pred, gt, mask) == pytest.approx(15.5 / 3)
    m = distance_metrics(pred, gt, mask, boxes, pck_alpha=0.06)
    assert m["PCK"] == 0.5 and m["EPE"] == pytest.approx(15.5 / 3)
    # a joint labelled nowhere is left out of the mean, not counted as 0
    assert pck_accuracy(pred, gt, np.array([[True, False], [True, False]]), norm, 0.06)[1] == 1.0


# ---------------------------------------------------------------------- keypoint layouts

def test_layouts_mirror_and_group_every_joint():
    for spec in (CROWDPOSE, AIC, COCO_WHOLEBODY):
        perm = spec.flip_permutation()
        for a, b in spec.flip_pairs:  # a flip pair is a left and a right joint of one kind
            left, right = spec.names[a], spec.names[b]
            if left.startswith("face-"):
                continue
            assert left.replace("left", "right") == right
        assert sorted(perm) == list(range(spec.num_joints)) and len(spec.sigmas) == spec.num_joints
        for n in (3, 5, 8):
            covered = {j for part in body_parts(spec.name, n) for j in part.joints}
            assert covered == set(range(spec.num_joints))
    # COCO-WholeBody's face mirror (iBUG 68): jaw 0↔16, outer eye corners 36↔45, mouth 48↔54
    pairs = {(a - 23, b - 23) for a, b in COCO_WHOLEBODY.flip_pairs if a >= 23 and b < 91}
    assert {(0, 16), (36, 45), (48, 54), (8, 8)} - pairs == {(8, 8)}
    assert not any(8 in p or 30 in p or 57 in p for p in pairs)  # chin, nose tip, lip centre
    # the evaluated groups tile the 133 joints, in the annotation's order
    assert [s for _, s, _ in WHOLEBODY_PARTS] == [0, 17, 23, 91, 112]
    assert sum(c for _, _, c in WHOLEBODY_PARTS) == 133 == COCO_WHOLEBODY.num_joints


def test_left_right_pairs_and_skeleton_parts_hand_worked():
    names = ("nose", "left_eye", "right_eye", "l_paw", "r_paw", "ear_Left", "ear_Right", "tail")
    assert left_right_pairs(names) == ((1, 2), (3, 4), (5, 6))
    # a chain j0-…-j6: the centre is j3; the joint farthest from it j0 (ties go to the lower
    # index), then j6; each joint joins its nearest centre (ties go to the earlier centre)
    chain = tuple(f"j{i}" for i in range(7))
    parts = skeleton_parts(chain, tuple((i, i + 1) for i in range(6)), 3)
    assert parts == (("part0_j3", ("j2", "j3", "j4")), ("part1_j0", ("j0", "j1")),
                     ("part2_j6", ("j5", "j6")))
    with pytest.raises(UserInputError) as err:
        skeleton_parts(chain[:2], ((0, 1),), 3)
    assert err.value.field == "space.parts_num"


# ------------------------------------------------------------------------- the readers

@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_reads_the_official_layout_and_perfect_predictions_score_one(roots, fmt, tmp_path):
    cfg = config(fmt, roots[fmt])
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    spec = keypoint_spec(cfg.dataset.name)
    assert len(train) > 0 and len(val) > 0 and val.num_joints == spec.num_joints
    sample = train[0]
    assert sample["image"].shape == (64, 48, 3) and sample["visible"].shape == (spec.num_joints,)
    perfect = np.concatenate([np.stack([r.joints for r in val.records]),
                              np.full((len(val), spec.num_joints, 1), 0.9)], axis=2)
    metrics = val.evaluate(perfect, np.arange(len(val)), str(tmp_path))
    assert metrics["AP"] == pytest.approx(1.0) and metrics["PCK"] == 1.0 and metrics["EPE"] == 0.0
    noisy = val.evaluate(jittered(val.records, 6.0, 0, spec.num_joints), np.arange(len(val)),
                         str(tmp_path))
    assert noisy["AP"] < 0.9 and 0 < noisy["PCK"] < 1 and noisy["EPE"] > 1


def _xtcocotools_from_files(gt_file: Path, results: list, iou_type: str, sigmas, use_area: bool):
    """The reference: xtcocotools on the files, as mmpose's evaluation calls it."""
    from xtcocotools.coco import COCO as XtCoco
    from xtcocotools.cocoeval import COCOeval as XtEval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = XtCoco(str(gt_file))
        ev = XtEval(gt, gt.loadRes(copy.deepcopy(results)), iou_type, np.array(sigmas), use_area=use_area)
        ev.params.useSegm = None
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return np.asarray(ev.stats)


def _pycocotools(gt: dict, results: list, sigmas) -> np.ndarray:
    from pycocotools.coco import COCO as CocoApi
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        api = CocoApi()
        api.dataset = copy.deepcopy(gt)
        api.createIndex()
        ev = COCOeval(api, api.loadRes(copy.deepcopy(results)), "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return np.asarray(ev.stats)


def _written_results(val, preds, tmp_path) -> tuple[list, dict]:
    metrics = val.evaluate(preds, np.arange(len(val)), str(tmp_path))
    return json.loads(next(tmp_path.glob("keypoints_*_results.json")).read_text()), metrics


@pytest.mark.parametrize("seed", [0, 1])
def test_crowdpose_matches_xtcocotools_on_the_files(roots, tmp_path, seed):
    cfg = config("crowdpose", roots["crowdpose"])
    val = build_dataset(cfg, "val")
    results, ours = _written_results(val, jittered(val.records, 3.0, seed, 14), tmp_path)
    gt_file = roots["crowdpose"] / "json" / "crowdpose_test.json"
    ref = _xtcocotools_from_files(gt_file, results, "keypoints_crowd", CROWDPOSE.sigmas, False)
    names = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
    np.testing.assert_allclose([ours[n] for n in names], ref, atol=1e-12)
    assert evaluate_files("crowdpose", str(gt_file), str(next(tmp_path.glob("*.json"))))["AP"] == ours["AP"]
    # the crowd split is by the file's crowdIndex (< 0.2 easy, < 0.8 medium): the synthetic
    # images have both kinds; a level without images reads -1 as in the reference
    index = [img["crowdIndex"] for img in json.loads(gt_file.read_text())["images"]]
    assert any(c < 0.2 for c in index) and any(0.2 <= c < 0.8 for c in index)


def test_aic_matches_xtcocotools_and_pycocotools_with_box_areas(roots, tmp_path):
    cfg = config("aic", roots["aic"])
    val = build_dataset(cfg, "val")
    results, ours = _written_results(val, jittered(val.records, 3.0, 5, 14), tmp_path)
    # reference 1: xtcocotools on mmpose's COCO conversion of the release's JSON
    coco_gt = copy.deepcopy(val.gt)
    gt_file = tmp_path / "aic_val.json"
    gt_file.write_text(json.dumps(coco_gt))
    ref = _xtcocotools_from_files(gt_file, results, "keypoints", AIC.sigmas, False)
    np.testing.assert_allclose(list(ours.values())[:10], ref, atol=1e-12)
    # reference 2, independent: pycocotools with each area replaced by the box's w·h·0.53
    for ann in coco_gt["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3] * 0.53
    np.testing.assert_allclose(list(ours.values())[:10], _pycocotools(coco_gt, results, AIC.sigmas),
                               atol=1e-12)
    # the release's raw JSON converts: visibilities 1/2/3 → 2/1/0, boxes x1y1x2y2 → xywh
    raw = json.loads((roots["aic"] / "ai_challenger_keypoint_validation_20170911" /
                      "keypoint_validation_annotations_20170911.json").read_text())
    first = raw[0]["keypoint_annotations"]["human1"]
    ann = next(a for a in val.gt["annotations"] if a["image_id"] == 1)
    assert [{1: 2, 2: 1, 3: 0}[v] for v in first[2::3]] == ann["keypoints"][2::3]
    x1, y1, x2, y2 = raw[0]["human_annotations"]["human1"]
    assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    res_file = next(tmp_path.glob("keypoints_*_results.json"))
    raw_file = (roots["aic"] / "ai_challenger_keypoint_validation_20170911" /
                "keypoint_validation_annotations_20170911.json")
    images = raw_file.parent / "keypoint_validation_images_20170911"
    assert evaluate_files("aic", str(raw_file), str(res_file), str(images))["AP"] == ours["AP"]
    with pytest.raises(UserInputError) as err:
        evaluate_files("aic", str(raw_file), str(res_file))
    assert err.value.field == "--images"


def test_wholebody_matches_xtcocotools_per_part_and_pycocotools_on_the_body(roots, tmp_path):
    cfg = config("coco_wholebody", roots["coco_wholebody"])
    val = build_dataset(cfg, "val")
    results, ours = _written_results(val, jittered(val.records, 2.0, 7, 133), tmp_path)
    assert all(len(r["face_kpts"]) == 204 and len(r["keypoints"]) == 51 for r in results)
    gt_file = roots["coco_wholebody"] / "annotations" / "coco_wholebody_val_v1.0.json"
    sig = np.array(COCO_WHOLEBODY.sigmas)
    worst = 0.0
    for part, start, count in (*WHOLEBODY_PARTS, ("wholebody", 0, 133)):
        ref = _xtcocotools_from_files(gt_file, results, f"keypoints_{part}",
                                      sig[start:start + count], True)
        mine = [ours[f"{part}_{s}"] for s in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50",
                                               "AR75", "ARm", "ARl")]
        worst = max(worst, float(np.abs(np.array(mine) - ref).max()))
    assert worst <= 1e-12
    assert ours["AP"] == ours["wholebody_AP"] and 0 < ours["AP"] < 1
    # independent: the body AP is COCO's AP of the 17 body keypoints (pycocotools)
    body = [{**r, "keypoints": r["keypoints"][:51]} for r in results]
    assert ours["body_AP"] == pytest.approx(_pycocotools(val.gt, body, COCO.sigmas)[0], abs=1e-12)
    res_file = next(tmp_path.glob("keypoints_*_results.json"))
    assert evaluate_files("coco_wholebody", str(gt_file), str(res_file))["AP"] == ours["AP"]


def test_ochuman_is_pycocotools_with_coco_sigmas(roots, tmp_path):
    cfg = config("ochuman", roots["ochuman"])
    val = build_dataset(cfg, "val")
    assert val.image_set == "test"
    results, ours = _written_results(val, jittered(val.records, 3.0, 2, 17), tmp_path)
    np.testing.assert_allclose(list(ours.values())[:10], _pycocotools(val.gt, results, COCO.sigmas),
                               atol=1e-12)


# ------------------------------------------------------------------ custom keypoint layouts

def test_custom_layout_comes_from_the_categories_and_the_config(roots):
    cfg = config("custom", roots["custom"])
    ds = cfg.dataset
    assert ds.keypoints == CUSTOM_POINTS and len(ds.skeleton) == 11
    # flip pairs from the left_/right_ names; parts cut from the skeleton for 3, 5 and 8
    assert ds.flip_pairs == ((3, 4), (5, 6), (7, 8), (9, 10))
    assert sorted(ds.parts) == ["3", "5", "8"]
    spec = keypoint_spec("custom")
    assert spec.names == CUSTOM_POINTS and spec.sigmas == tuple(CUSTOM_SIGMAS)
    for n in (3, 5, 8):
        groups = body_parts("custom", n)
        assert len(groups) == n and {j for g in groups for j in g.joints} == set(range(12))
    # the completed layout travels in the config: rebuilt without the annotation file
    again = config_from_dict(json.loads(json.dumps(config_to_dict(cfg) | {
        "dataset": config_to_dict(cfg)["dataset"] | {"root": "/nowhere"}})))
    assert again.dataset.keypoints == CUSTOM_POINTS and again.dataset.parts == ds.parts
    # parts given in the config are used as given
    given = config("custom", roots["custom"], "dataset.parts",
                   "{3: {head: [head_top, upper_neck, thorax], arms: [left_elbow, right_elbow, "
                   "left_wrist, right_wrist], legs: [pelvis, left_knee, right_knee, left_ankle, "
                   "right_ankle]}}")
    assert [p.name for p in body_parts("custom", 3)] == ["head", "arms", "legs"]
    assert given.dataset.parts["3"]["head"] == ["head_top", "upper_neck", "thorax"]


@pytest.mark.parametrize("overrides, field, words", [
    (("dataset.sigmas", "[]"), "dataset.sigmas", "one OKS sigma per keypoint (12"),
    (("dataset.sigmas", "[0.1, 0.1]"), "dataset.sigmas", "got 2 values"),
    (("dataset.flip_pairs", "[[0, 12]]"), "dataset.flip_pairs[0]", "two different joints"),
    (("dataset.parts", "{3: {a: [head_top], b: [pelvis], c: [nowhere]}}"), "dataset.parts.3.c",
     "unknown keypoint 'nowhere'"),
    (("dataset.parts", "{3: {a: [head_top], b: [pelvis], c: [thorax]}}"), "dataset.parts.3",
     "is in no part"),
    (("dataset.upper_body", "[12]"), "dataset.upper_body", "joint 12 does not exist"),
    (("test.metric", "PCKh"), "test.metric", "not 'PCKh'"),
])
def test_custom_layout_errors_name_the_field(roots, overrides, field, words):
    with pytest.raises(UserInputError) as err:
        config("custom", roots["custom"], *overrides)
    assert err.value.field == field and words in err.value.message


def test_layout_fields_are_refused_on_a_built_in_dataset(coco_root):
    with pytest.raises(UserInputError) as err:
        load_config(CONFIGS / "datasets" / "synthetic_coco.yaml",
                    ["dataset.root", str(coco_root), "dataset.sigmas", "[0.1]"])
    assert err.value.field == "dataset.sigmas" and "custom" in err.value.message


def test_custom_without_categories_names_the_file(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_train2017.json").write_text(json.dumps(
        {"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    with pytest.raises(UserInputError) as err:
        config("custom", tmp_path)
    assert err.value.field == "categories" and "person_keypoints_train2017.json" in err.value.source


def test_evaluate_files_bad_crowd_index_and_part_fields_name_the_entry(roots, tmp_path):
    gt = json.loads((roots["crowdpose"] / "json" / "crowdpose_test.json").read_text())
    del gt["images"][1]["crowdIndex"]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    ann = next(a for a in gt["annotations"] if a["image_id"] == gt["images"][0]["id"])
    (tmp_path / "res.json").write_text(json.dumps([{"image_id": ann["image_id"], "category_id": 1,
                                                    "keypoints": ann["keypoints"], "score": 1.0}]))
    with pytest.raises(UserInputError) as err:
        evaluate_files("crowdpose", str(tmp_path / "gt.json"), str(tmp_path / "res.json"))
    assert err.value.field == f"image id={gt['images'][1]['id']}" and "crowdIndex" in err.value.message
    wb = roots["coco_wholebody"] / "annotations" / "coco_wholebody_val_v1.0.json"
    ann = json.loads(wb.read_text())["annotations"][0]
    result = {"image_id": ann["image_id"], "category_id": 1, "score": 1.0,
              **{k: ann[k] for k in ("keypoints", "foot_kpts", "lefthand_kpts", "righthand_kpts")}}
    (tmp_path / "wb.json").write_text(json.dumps([result]))  # no face_kpts
    with pytest.raises(UserInputError) as err:
        evaluate_files("coco_wholebody", str(wb), str(tmp_path / "wb.json"))
    assert err.value.field == "[0]" and "'face_kpts' with 204 numbers" in err.value.message
