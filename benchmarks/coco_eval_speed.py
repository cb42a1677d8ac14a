"""pycocotools' COCOeval against faster-coco-eval's C++ COCOeval on a COCO-val-sized keypoint
results file: time and the 10 stats' largest difference.

    python -m benchmarks.coco_eval_speed [--images 5000] [--results 104125] [--repeat 3] [--seed 0]
                                         [--json OUT.json]

The ground truth is generated with COCO val2017's counts (5000 images, 6352 people with
keypoints among 11004 person annotations, crowd regions included) and the results with
HRNet's test-time count (104,125 detections from the person detector: the people, jittered by
a few pixels, plus false positives), so the evaluators do the work they do on the real file.
Both run in this process, one after the other, ``--repeat`` times; the table gives the median
seconds, the speed-up, and max |Δ| over the 10 stats. faster-coco-eval is offered as
``test.coco_evaluator`` only because that difference is 0 here and on every test case.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from search_space.joints import COCO
from trainers.evaluation.coco import COCO_STAT_NAMES, evaluate_keypoints
from trainers.report import format_table


def coco_val_like(images: int, results: int, seed: int) -> tuple[dict, list]:
    """(ground truth, results) with COCO val2017's and HRNet's counts."""
    rng = np.random.default_rng(seed)
    gt_images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": 640, "height": 480}
                 for i in range(images)]
    anns, people = [], []
    n_people = round(11004 * images / 5000)
    n_kpts = round(6352 * images / 5000)
    for a in range(n_people):
        image_id = int(rng.integers(1, images + 1))
        w, h = rng.uniform(10, 300), rng.uniform(20, 400)
        x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
        kpts = np.zeros((17, 3))
        if a < n_kpts:
            kpts[:, 0] = rng.uniform(x, x + w, 17)
            kpts[:, 1] = rng.uniform(y, y + h, 17)
            kpts[:, 2] = rng.choice([0, 1, 2], 17, p=[0.3, 0.1, 0.6])
            kpts[kpts[:, 2] == 0, :2] = 0
        crowd = int(a >= n_kpts and rng.random() < 0.01)
        anns.append({"id": a + 1, "image_id": image_id, "category_id": 1, "iscrowd": crowd,
                     "bbox": [x, y, w, h], "area": w * h * 0.6, "num_keypoints": int((kpts[:, 2] > 0).sum()),
                     "keypoints": kpts.reshape(-1).round(2).tolist()})
        if a < n_kpts:
            people.append((image_id, kpts, w * h * 0.6))
    dets = []
    for i in range(results):
        if i < len(people):
            image_id, kpts, area = people[i]
            k = kpts.copy()
            k[:, :2] += rng.normal(0, 0.03 * np.sqrt(area) + 1, (17, 2))
        else:  # a false positive somewhere
            image_id = int(rng.integers(1, images + 1))
            k = np.zeros((17, 3))
            k[:, 0], k[:, 1] = rng.uniform(0, 640, 17), rng.uniform(0, 480, 17)
        k[:, 2] = rng.uniform(0.05, 1.0, 17)
        dets.append({"image_id": image_id, "category_id": 1, "keypoints": k.reshape(-1).round(3).tolist(),
                     "score": float(rng.uniform(0.05, 1.0) if i >= len(people) else rng.uniform(0.5, 1.0))})
    gt = {"images": gt_images, "annotations": anns,
          "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names)}]}
    return gt, dets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.coco_eval_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--results", type=int, default=104125)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the table as JSON here")
    args = p.parse_args(argv)
    gt, dets = coco_val_like(args.images, args.results, args.seed)
    times: dict[str, list[float]] = {"pycocotools": [], "faster_coco_eval": []}
    stats: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for name in times:
            t0 = time.perf_counter()
            stats[name] = evaluate_keypoints(gt, dets, COCO.sigmas, evaluator=name)
            times[name].append(time.perf_counter() - t0)
    diff = max(abs(stats["pycocotools"][s] - stats["faster_coco_eval"][s]) for s in COCO_STAT_NAMES)
    med = {name: statistics.median(t) for name, t in times.items()}
    rows = [[name, f"{med[name]:.2f}", f"{min(t):.2f}–{max(t):.2f}",
             f"{med['pycocotools'] / med[name]:.2f}×", f"{stats[name]['AP']:.4f}"]
            for name, t in times.items()]
    print(f"{args.images} images, {len(gt['annotations'])} person annotations, {len(dets)} results; "
          f"{args.repeat} runs each")
    print(format_table(["evaluator", "median s", "range s", "speed-up", "AP"], rows))
    print(f"max |difference| over the 10 stats: {diff:g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images": args.images, "results": len(dets), "repeat": args.repeat,
                       "seconds": times, "stats": stats, "max_abs_difference": diff}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
