"""Evaluate keypoint predictions against ground truth.

    python -m trainers.evaluate --dataset coco --gt ANN.json --results RES.json [--json]
    python -m trainers.evaluate --dataset mpii --gt gt_valid.mat --preds pred.mat [--json]

COCO: the 10 COCOeval keypoint stats, computed by pycocotools. MPII: PCKh@0.5 per joint group,
Mean and Mean@0.1 by the official formula. With ``--json`` the last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

from trainers.errors import UserInputError, cli_errors
from trainers.evaluation import coco, mpii
from trainers.report import format_metrics

__all__ = ["main", "evaluate_files"]


def evaluate_files(dataset: str, gt: str, predictions: str) -> dict[str, float]:
    """Metrics of a results/preds file against a ground-truth file."""
    if dataset == "coco":
        gt_data = coco.load_coco_annotations(gt)
        image_ids = {img["id"] for img in gt_data["images"]}
        results = coco.load_coco_results(predictions, image_ids)
        return coco.evaluate_keypoints(gt_data, results)
    gt_mpii = mpii.load_gt_valid(gt)
    preds = mpii.load_preds(predictions)
    return mpii.pckh(preds, gt_mpii, source=predictions)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["coco", "mpii"], required=True)
    p.add_argument("--gt", required=True,
                   help="COCO person_keypoints_*.json, or MPII gt_valid.mat")
    p.add_argument("--results", help="COCO keypoint results JSON")
    p.add_argument("--preds", help="MPII pred.mat with preds (N, 16, 2), 1-based")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the metrics")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    predictions = args.results if args.dataset == "coco" else args.preds
    flag = "--results" if args.dataset == "coco" else "--preds"
    if not predictions:
        raise UserInputError("argument", f"--dataset {args.dataset} needs {flag}", field=flag)
    metrics = evaluate_files(args.dataset, args.gt, predictions)
    print(format_metrics(metrics))
    if args.json:
        print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
