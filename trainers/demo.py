"""`make demo`: the loop on the embedded synthetic data, end to end.

    python -m trainers.demo [--out runs/demo] [--data data/synthetic_coco] [--train N --val M]
                            [--cfg CFG] [KEY VALUE ...]

1. writes the synthetic COCO-layout dataset (once);
2. prints the --param_flop table of the model;
3. trains it with ``train_derived``'s engine (checkpoints, metrics.json, CSV logs);
4. evaluates ``best.ckpt`` with flip test, as ``trainers/test.py --flip_test`` does;
5. draws the predicted skeletons on a few validation images;
6. prints a summary: output paths, params, GFLOPs and the final ``AP=<value>`` line.

Search and Prune join this loop as they land (see the open issues).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import pytorch_lightning as pl

from trainers.build import build_pose_model
from trainers.checkpoint import load_checkpoint
from trainers.config import load_config
from trainers.data.synthetic import write_coco
from trainers.engine import evaluate_model, fit, load_weights
from trainers.errors import cli_errors
from trainers.report import format_metrics, format_table
from visualize.demo import predict_image
from visualize.keypoints import draw_skeleton
from visualize.param_flop import format_report, param_flop_report

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--data", default="data/synthetic_coco")
    p.add_argument("--train", type=int, default=400, help="synthetic training images")
    p.add_argument("--val", type=int, default=100, help="synthetic validation images")
    p.add_argument("--cfg", default=str(DEMO_CONFIG))
    p.add_argument("--overlays", type=int, default=4, help="validation images to draw")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    return p


def _draw_overlays(cfg, model, data: Path, out: Path, count: int) -> list[str]:
    ann = json.loads((data / "annotations" / "person_keypoints_val2017.json").read_text())
    from trainers.data.joints import keypoint_spec

    spec = keypoint_spec(cfg.dataset.name)
    paths = []
    for image in ann["images"][:count]:
        boxes = [a["bbox"] for a in ann["annotations"]
                 if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        img = cv2.imread(str(data / "images" / "val2017" / image["file_name"]))
        if img is None or not boxes:
            continue
        for kpts in predict_image(model, cfg, img, boxes):
            draw_skeleton(img, kpts, spec, threshold=0.2)
        path = out / "overlays" / image["file_name"].replace(".jpg", ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
        paths.append(str(path))
    return paths


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.time()
    data, out = Path(args.data), Path(args.out)
    if not (data / "annotations" / "person_keypoints_val2017.json").exists():
        print(f"[1/5] writing the synthetic COCO dataset to {data}")
        write_coco(data, args.train, args.val, seed=0)
    else:
        print(f"[1/5] using the synthetic COCO dataset in {data}")
    cfg = load_config(args.cfg, ["dataset.root", str(data), *args.overrides])
    pl.seed_everything(cfg.seed, verbose=False)
    model, info = build_pose_model(cfg)
    report = param_flop_report(model, cfg.model.input_size)
    print("[2/5] --param_flop")
    print(format_report(report, info["name"]))
    print(f"[3/5] training {info['name']} for {cfg.train.epochs} epochs")
    summary = fit(cfg, model, info, out)
    print("[4/5] evaluating best.ckpt with flip test")
    ckpt = load_checkpoint(out / "best.ckpt")
    best_model, _ = build_pose_model(cfg, info["name"])
    load_weights(best_model, ckpt, str(out / "best.ckpt"))
    result = evaluate_model(cfg, best_model, out / "test")
    metrics = result["metrics"]
    print(format_metrics(metrics))
    print("[5/5] drawing predictions")
    overlays = _draw_overlays(cfg, best_model.cpu(), data, out, args.overlays)
    h, w = cfg.model.input_size
    print(format_table(["output", "path"], [
        ["checkpoints", f"{out / 'best.ckpt'}, {out / 'last.ckpt'}"],
        ["per-epoch metrics", str(out / "metrics.json")],
        ["COCO results", str(out / "test" / "keypoints_val2017_results.json")],
        ["overlays", f"{out / 'overlays'} ({len(overlays)} images)"],
    ]))
    print(f"{info['name']} at {h}x{w}: {report['params'] / 1e6:.2f}M params, "
          f"{report['gflops']:.3f} GFLOPs; best epoch AP {summary['best']:.4f}; "
          f"flip-test AP {metrics['AP']:.4f}; {time.time() - start:.0f}s")
    print(f"AP={metrics['AP']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
