"""Evaluate a checkpoint on the validation set.

    python trainers/test.py --cfg CFG [--weights W] [--flip_test | --no-flip_test] [--use_dt]
                            [--margin 1.25] [--out DIR] [--devices N] [KEY VALUE ...]

COCO: writes DIR/keypoints_<set>_results.json and prints the 10 COCOeval stats; ``--use_dt``
crops the detector's boxes (test.det_file) instead of the ground-truth ones. MPII: writes
DIR/pred.mat and prints the PCKh table (MPII has no detections: ``--use_dt`` is an error).
The network is rebuilt from a posenas checkpoint's metadata; a released checkpoint (official
HRNet's ``pose_hrnet_w32_256x192.pth``) is read as the config's ``model.name``, converted on the
fly (see ``python -m trainers.convert``). The checkpoint is ``--weights``, or the
config's ``test.model_file`` (HRNet's ``TEST.MODEL_FILE``, settable as an override).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from trainers.network.build import load_any_network
from trainers.engine.callbacks import save_prediction_grids
from trainers.config.experiment import load_config
from trainers.data.registry import build_dataset, image_set
from trainers.engine.fit import evaluate_model
from trainers.engine.module import BrokenEvaluationError
from search_space.errors import UserInputError
from trainers.cli import (ArgumentParser, cli_errors, nonnegative_int, output_dir, positive_float,
                          positive_int)
from trainers.report import format_metrics



def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python trainers/test.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True)
    p.add_argument("--weights", help="a posenas checkpoint (.ckpt), or a released one of the "
                   "config's model.name (official HRNet; converted on the fly); "
                   "default: test.model_file")
    p.add_argument("--flip_test", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the horizontally flipped input (default: test.flip_test)")
    p.add_argument("--use_dt", action="store_true", help="COCO: use the detection boxes")
    p.add_argument("--margin", type=positive_float, help="box enlargement (default: test.margin, 1.25)")
    p.add_argument("--out", help="where results go (default: next to the checkpoint, eval/)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the metrics")
    p.add_argument("--devices", type=positive_int, default=1,
                   help="N > 1: evaluate with N DDP processes (GPUs; gloo CPU processes without "
                   "CUDA), predictions gathered on rank 0")
    p.add_argument("--visualize", type=nonnegative_int, nargs="?", const=8, default=0, metavar="N",
                   help="save heatmap grids of N validation predictions (OUT/visualize/)")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    extra = list(args.overrides)
    if args.flip_test is not None:
        extra += ["test.flip_test", str(args.flip_test).lower()]
    if args.margin is not None:
        extra += ["test.margin", str(args.margin)]
    if args.out:
        output_dir(args.out, "--out")
    cfg = load_config(args.cfg, extra)
    weights = args.weights or cfg.test.model_file
    if not weights:
        raise UserInputError("argument", "no checkpoint: give --weights or set test.model_file",
                             field="--weights")
    # a posenas checkpoint (warns if trained at another input size), or a released one read as
    # the config's model.name
    _, spec, model = load_any_network(weights, cfg)
    out = Path(args.out) if args.out else Path(weights).resolve().parent / "eval"
    try:
        result = evaluate_model(cfg, model, out, use_gt_bbox=False if args.use_dt else None,
                                devices=args.devices)
    except BrokenEvaluationError as err:
        raise UserInputError(weights, str(err), field="--weights") from None
    if not result["global_zero"]:
        return 0  # DDP: rank 0 reports
    boxes = "detections" if args.use_dt else "ground-truth boxes"
    print(format_metrics(result["metrics"]))
    if args.visualize:
        dataset = build_dataset(cfg, "val", use_gt_bbox=True)
        paths = save_prediction_grids(model, dataset, out / "visualize", "val", args.visualize,
                                      cfg.dataset.color_rgb)
        print(f"heatmap grids: {len(paths)} in {out / 'visualize'}")
    print(f"{spec.name} from {weights} on {cfg.dataset.name} {image_set(cfg, 'val')} "
          f"({result['persons']} {boxes}, {result['skipped']} skipped images, flip test "
          f"{'on' if cfg.test.flip_test else 'off'}); results in {out}")
    if args.json:
        print(json.dumps(result["metrics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
