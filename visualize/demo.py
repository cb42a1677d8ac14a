"""Predict keypoints on one image, or on every frame of a video, with a trained checkpoint and
draw them.

    python -m visualize.demo --weights W [--model NAME | --cfg CFG] --image IMG --out OUT.jpg [--boxes DET.json]
                             [--image-id ID] [--score-thr 0.5] [--kpt-thr 0.3] [--no-flip]
    python -m visualize.demo --weights W --video IN.mp4 --out OUT.mp4 [--boxes FRAMES.json]

Person boxes come from a COCO-style detection JSON (a list of ``{bbox: [x, y, w, h], score}``,
optionally with ``image_id``, then ``--image-id`` picks this image's boxes); without ``--boxes``
the whole image is one person box. Prints one row per person and writes the drawing atomically.
For a video, ``image_id`` is the frame index (from 0), and without ``--boxes`` OpenCV's HOG
people detector finds the people; a progress bar runs and a table ends it (frames, people,
pose ms per frame, frames per second); the video is written atomically too. The torch-free
path is ``python -m trainers.infer --model OUT.onnx --video ...``.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from trainers.data.boxes import read_person_boxes
from trainers.network.build import load_any_network
from trainers.config.experiment import load_config
from trainers.data.images import ImageReadError, read_image
from search_space.joints import keypoint_spec
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors
from trainers.evaluation.prediction import predict_image
from trainers.deploy.drawing import add_image_arguments, check_image_arguments, draw_people
from trainers.deploy.video import pose_video, read_frame_boxes

__all__ = ["predict_image", "main"]


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default."""


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m visualize.demo", description=__doc__,
                       formatter_class=_Help)
    p.add_argument("--weights", required=True, help="a posenas checkpoint, or a released one "
                   "(official HRNet, Lite-HRNet, mmpose) with --model or --cfg")
    p.add_argument("--model", help="for a released checkpoint: the registered model it holds")
    p.add_argument("--cfg", help="for a released checkpoint: a config (model, input size)")
    add_image_arguments(p)
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check_image_arguments(args)
    cfg, _, model = load_any_network(args.weights, load_config(args.cfg) if args.cfg else None,
                                     args.model)
    if args.video:
        frame_boxes = read_frame_boxes(args.boxes, args.score_thr) if args.boxes else None
        summary = pose_video(args.video, args.out,
                             lambda image, boxes: predict_image(model, cfg, image, boxes,
                                                                flip=not args.no_flip),
                             keypoint_spec(cfg.dataset.name), frame_boxes, args.kpt_thr)
        print(summary.table())
        print(f"wrote {args.out}")
        return 0
    try:
        image = read_image(args.image, color_rgb=False)
    except ImageReadError as err:
        raise UserInputError(args.image, err.reason, field="--image") from None
    boxes = read_person_boxes(args.boxes, image.shape, args.image_id, args.score_thr)
    people = (predict_image(model, cfg, image, boxes, flip=not args.no_flip) if boxes
              else np.zeros((0, keypoint_spec(cfg.dataset.name).num_joints, 3), np.float32))
    print(draw_people(image, boxes, people, keypoint_spec(cfg.dataset.name), args.kpt_thr,
                      args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
