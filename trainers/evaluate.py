"""Evaluate keypoint predictions against ground truth.

    python -m trainers.evaluate --dataset coco --gt ANN.json --results RES.json [--json]
    python -m trainers.evaluate --dataset mpii --gt gt_valid.mat --preds pred.mat [--json]
    python -m trainers.evaluate --cfg CFG --gt ANN.json --results RES.json   (a custom dataset)

COCO-format datasets: the 10 COCOeval keypoint stats, computed by pycocotools with the layout's
OKS sigmas (COCO, OCHuman, custom layouts), or by xtcocotools as the field does for CrowdPose
(AP easy/medium/hard by crowd index), AI Challenger (box areas) and COCO-WholeBody (per part and
whole body; results with the official separate fields, or all 133 keypoints in ``keypoints``).
AI Challenger's ground truth is mmpose's COCO conversion, or the release's own JSON with
``--images`` (its image folder, for the image sizes). MPII: PCKh@0.5 per joint group, Mean and
Mean@0.1 by the official formula. With ``--json`` the last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

from search_space.errors import UserInputError
from search_space.joints import WHOLEBODY_PARTS, keypoint_spec
from trainers.cli import ArgumentParser, cli_errors
from trainers.config.experiment import load_config
from trainers.data.aic import aic_to_coco
from trainers.data.coco_wholebody import (check_part_fields, check_wholebody_annotations,
                                          split_wholebody)
from trainers.data.crowdpose import check_crowd_index
from trainers.data.registry import BUILT_IN, DATASETS
from trainers.evaluation import coco, mpii, xtcoco
from trainers.report import format_metrics

__all__ = ["main", "evaluate_files"]


def _wholebody_results(path: str, image_ids: set) -> list[dict]:
    """COCO-WholeBody results: the official separate fields, or 133 keypoints in one list."""
    data = coco.load_json(path, "results file")
    if isinstance(data, list) and data and all(
            isinstance(r, dict) and isinstance(r.get("keypoints"), list)
            and len(r["keypoints"]) == 3 * 133 for r in data):
        results = coco.load_coco_results(path, image_ids, 133)
        return [{**r, **split_wholebody(r["keypoints"])} for r in results]
    results = coco.load_coco_results(path, image_ids, WHOLEBODY_PARTS[0][2])
    for i, r in enumerate(results):
        check_part_fields(r, path, f"[{i}]", hint=", or all 133 keypoints in 'keypoints'")
    return results


def evaluate_files(dataset: str, gt: str, predictions: str,
                   images: str | None = None) -> dict[str, float]:
    """Metrics of a results/preds file against a ground-truth file of the registered
    ``dataset``, by its evaluator (``images``: AI Challenger's image folder, for its own JSON)."""
    evaluation = DATASETS[dataset].evaluation
    if evaluation == "mpii":
        return _evaluate_mpii(gt, predictions)
    spec = keypoint_spec(dataset)
    if evaluation == "coco_wholebody":
        gt_data = coco.load_coco_annotations(gt, WHOLEBODY_PARTS[0][2])
        check_wholebody_annotations(gt_data, gt)
        results = _wholebody_results(predictions, {img["id"] for img in gt_data["images"]})
        return xtcoco.evaluate_wholebody(gt_data, results, spec.sigmas)
    raw = None
    if evaluation == "aic":
        raw = coco.load_json(gt, "annotation file")
        if isinstance(raw, list):
            if not images:
                raise UserInputError(gt, "AI Challenger's own JSON: give its image folder with "
                                     "--images (for the image sizes)", field="--images")
            raw = aic_to_coco(raw, Path(images), gt)
    gt_data = coco.load_coco_annotations(gt, spec.num_joints, data=raw)
    image_ids = {img["id"] for img in gt_data["images"]}
    results = coco.load_coco_results(predictions, image_ids, spec.num_joints)
    if evaluation == "crowdpose":
        check_crowd_index(gt_data, gt)
        return xtcoco.evaluate_crowd(gt_data, results, spec.sigmas)
    if evaluation == "aic":
        return xtcoco.evaluate_xtcoco(gt_data, results, spec.sigmas, use_area=False)
    return coco.evaluate_keypoints(gt_data, results, spec.sigmas)


def _evaluate_mpii(gt: str, predictions: str) -> dict[str, float]:
    gt_mpii = mpii.load_gt_valid(gt)
    preds = mpii.load_preds(predictions)
    return mpii.pckh(preds, gt_mpii, source=predictions)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.evaluate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(BUILT_IN - {"custom"}),
                   help="a built-in dataset (or --cfg)")
    p.add_argument("--cfg", help="a config whose dataset is evaluated (a custom dataset: its "
                   "layout and sigmas)")
    p.add_argument("--gt", required=True,
                   help="COCO-format annotations (person_keypoints_*.json, crowdpose_test.json, "
                   "...), or MPII gt_valid.mat")
    p.add_argument("--results", help="COCO-format keypoint results JSON")
    p.add_argument("--images", help="AI Challenger's own JSON as --gt: its image folder")
    p.add_argument("--preds", help="MPII pred.mat with preds (N, 16, 2), 1-based")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the metrics")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if bool(args.dataset) == bool(args.cfg):
        raise UserInputError("argument", "give --dataset NAME or --cfg CFG", field="--dataset")
    dataset = args.dataset or load_config(args.cfg).dataset.name
    coco_format = DATASETS[dataset].evaluation != "mpii"
    predictions = args.results if coco_format else args.preds
    flag = "--results" if coco_format else "--preds"
    if not predictions:
        raise UserInputError("argument", f"--dataset {dataset} needs {flag}", field=flag)
    metrics = evaluate_files(dataset, args.gt, predictions, args.images)
    print(format_metrics(metrics))
    if args.json:
        print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
