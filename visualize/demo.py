"""Predict keypoints on one image with a trained checkpoint and draw them.

    python -m visualize.demo --weights W [--model NAME | --cfg CFG] --image IMG --out OUT.jpg [--boxes DET.json]
                             [--image-id ID] [--score-thr 0.5] [--kpt-thr 0.3] [--no-flip]

Person boxes come from a COCO-style detection JSON (a list of ``{bbox: [x, y, w, h], score}``,
optionally with ``image_id``, then ``--image-id`` picks this image's boxes); without ``--boxes``
the whole image is one person box. Prints one row per person and writes the drawing atomically.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from trainers.data.boxes import read_person_boxes
from trainers.network.build import load_any_network
from trainers.config.experiment import load_config
from trainers.data.codec import HeatmapCodec
from trainers.data.images import ImageReadError, read_image
from search_space.joints import keypoint_spec
from trainers.data.transforms import person_crops
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors
from trainers.evaluation.prediction import flip_test_predictor
from trainers.deploy.drawing import add_image_arguments, check_image_arguments, draw_people

__all__ = ["predict_image", "main"]


def predict_image(model: torch.nn.Module, cfg, image_bgr: np.ndarray, boxes: list[list[float]],
                  flip: bool = True) -> np.ndarray:
    """Keypoints (P, K, 3) in image pixels for the person boxes ``[x, y, w, h]`` of one image."""
    h, w = cfg.model.input_size
    codec = HeatmapCodec((h, w), cfg.model.heatmap_size, cfg.model.sigma)
    crops, centers, scales = person_crops(image_bgr, boxes, (h, w), cfg.test.margin,
                                          color_rgb=False)
    # as the loader gives crops: (P, H, W, 3) BGR; normalize_images orders the channels
    batch = {"image": torch.from_numpy(crops).permute(0, 2, 3, 1)}
    spec = keypoint_spec(cfg.dataset.name)
    predict = flip_test_predictor(model.eval(), spec.flip_pairs, flip, cfg.test.shift_heatmap,
                                  cfg.dataset.color_rgb)
    heatmaps = predict(batch).float().numpy()
    coords, conf = codec.decode_to_image(heatmaps, centers, scales, cfg.test.post_process)
    return np.concatenate([coords, conf], axis=2)


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
