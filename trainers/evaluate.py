"""Evaluate keypoint predictions against ground truth.

    python -m trainers.evaluate --dataset coco --gt ANN.json --results RES.json [--json]
    python -m trainers.evaluate --dataset mpii --gt gt_valid.mat --preds pred.mat [--json]

COCO-format datasets (any registered one): the 10 COCOeval keypoint stats, computed by
pycocotools with the layout's OKS sigmas. MPII: PCKh@0.5 per joint group, Mean and Mean@0.1 by
the official formula. With ``--json`` the last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

from search_space.errors import UserInputError
from search_space.joints import keypoint_spec
from trainers.cli import ArgumentParser, cli_errors
from trainers.data.registry import DATASETS, dataset_names
from trainers.evaluation import coco, mpii
from trainers.report import format_metrics

__all__ = ["main", "evaluate_files"]


def evaluate_files(dataset: str, gt: str, predictions: str) -> dict[str, float]:
    """Metrics of a results/preds file against a ground-truth file of the registered
    ``dataset``, by its evaluator."""
    if DATASETS[dataset].evaluation == "coco":
        spec = keypoint_spec(dataset)
        gt_data = coco.load_coco_annotations(gt, spec.num_joints)
        image_ids = {img["id"] for img in gt_data["images"]}
        results = coco.load_coco_results(predictions, image_ids, spec.num_joints)
        return coco.evaluate_keypoints(gt_data, results, spec.sigmas)
    gt_mpii = mpii.load_gt_valid(gt)
    preds = mpii.load_preds(predictions)
    return mpii.pckh(preds, gt_mpii, source=predictions)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.evaluate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=dataset_names(), required=True)
    p.add_argument("--gt", required=True,
                   help="COCO person_keypoints_*.json, or MPII gt_valid.mat")
    p.add_argument("--results", help="COCO keypoint results JSON")
    p.add_argument("--preds", help="MPII pred.mat with preds (N, 16, 2), 1-based")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the metrics")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    coco_format = DATASETS[args.dataset].evaluation == "coco"
    predictions = args.results if coco_format else args.preds
    flag = "--results" if coco_format else "--preds"
    if not predictions:
        raise UserInputError("argument", f"--dataset {args.dataset} needs {flag}", field=flag)
    metrics = evaluate_files(args.dataset, args.gt, predictions)
    print(format_metrics(metrics))
    if args.json:
        print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
