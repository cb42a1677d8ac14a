"""`make demo`: the whole loop on the embedded synthetic data.

    python -m trainers.demo [--out runs/demo] [--data data/synthetic_coco] [--train N --val M]

Today the loop is: write the synthetic COCO-layout dataset (once), then run the validation path
end to end on ground-truth boxes — crops, decoding of the ground-truth heatmaps, back-projection,
rescoring, OKS-NMS, the results JSON, pycocotools — which
measures the ceiling that heatmap quantisation puts on AP at the configured input size. Search,
Prune and training join this command as they land.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from trainers.config import load_config
from trainers.data.loader import build_dataset, build_loader
from trainers.data.synthetic import write_coco
from trainers.errors import cli_errors
from trainers.inference import predict_dataset
from trainers.report import format_table

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "configs" / "search" / "synthetic_tiny.yaml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--data", default="data/synthetic_coco")
    p.add_argument("--train", type=int, default=400)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--cfg", default=str(DEMO_CONFIG))
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.time()
    data = Path(args.data)
    if not (data / "annotations" / "person_keypoints_val2017.json").exists():
        print(f"[1/2] writing the synthetic COCO dataset to {data}")
        write_coco(data, args.train, args.val, seed=0)
    else:
        print(f"[1/2] using the synthetic COCO dataset in {data}")
    cfg = load_config(args.cfg, ["dataset.root", str(data)])
    print("[2/2] evaluating ground-truth heatmaps through the full validation path")
    ds = build_dataset(cfg, "val", use_gt_bbox=True)
    loader = build_loader(ds, cfg.test.batch_size, shuffle=False, num_workers=0)
    preds, idx, skipped = predict_dataset(ds, loader, lambda batch: batch["target"])
    stats = ds.evaluate(preds, idx, str(Path(args.out)))
    h, w = cfg.model.input_size
    print(format_table(["persons", "skipped", "AP", "AP50", "AP75", "AR", "results"],
                       [[len(ds), skipped, stats["AP"], stats["AP50"], stats["AP75"], stats["AR"],
                         str(Path(args.out) / "keypoints_val2017_results.json")]]))
    print(f"codec ceiling at input {h}x{w}: ground-truth heatmaps, not a trained model "
          f"({time.time() - start:.0f}s)")
    print(f"AP={stats['AP']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
