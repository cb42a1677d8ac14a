"""Keypoints on one image from an exported ONNX model, without PyTorch.

    python -m trainers.infer --model OUT.onnx --image IMG --out VIS.png
                             [--boxes DET.json [--image-id ID]] [--score-thr 0.5]
                             [--kpt-thr 0.3] [--no-flip] [--threads 1] [--json]
    python -m trainers.infer --model OUT.onnx --video IN.mp4 --out OUT.mp4 [--boxes FRAMES.json]

``OUT.onnx`` and the ``OUT.json`` beside it come from ``python -m trainers.export``. onnxruntime,
NumPy and OpenCV only (``import torch`` never happens): the same crop (box → centre/scale with the
export's margin, affine warp), normalisation, flip test (mirrored input, heatmaps flipped back
and shifted as ``test.py`` does) and decoding (argmax, quarter-pixel shift, inverse affine) as
``test.py`` and ``visualize.demo``. Person boxes come from a COCO detection-results JSON, or the
whole image is one box. Draws the keypoints on the image (written atomically), prints one row
per person, and with ``--json`` ends with one JSON line: ``{"image", "people": [{"box",
"keypoints": [[x, y, score], ...]}]}``. With ``--video`` every frame is drawn into the output
video (:mod:`trainers.deploy.video`: boxes per frame from ``--boxes``, ``image_id`` = frame index,
or OpenCV's HOG people detector), ending with a frames-per-second table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from search_space.joints import KeypointSpec
from trainers.data.boxes import read_person_boxes
from trainers.data.codec import HeatmapCodec, flip_back
from trainers.data.images import ImageReadError, read_image
from trainers.data.transforms import person_crops
from trainers.deploy.meta import DeployMeta, read_meta
from trainers.deploy.drawing import add_image_arguments, check_image_arguments, draw_people
from trainers.deploy.video import pose_video, read_frame_boxes
from search_space.errors import UserInputError, first_line
from trainers.cli import ArgumentParser, cli_errors, existing_file, nonnegative_int

__all__ = ["OnnxPoseModel", "main"]


class OnnxPoseModel:
    """An exported pose network under onnxruntime with its :class:`DeployMeta`.

    Args:
        path: the ``.onnx`` file (its JSON beside it).
        threads: onnxruntime intra-op threads (0: onnxruntime's default).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.meta: DeployMeta = read_meta(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise UserInputError(str(path), f"onnxruntime cannot load it "
                                 f"({first_line(err) or type(err).__name__})") from None
        self.input_name = self.session.get_inputs()[0].name
        m = self.meta
        self.codec = HeatmapCodec.for_model(m)
        self._mean = (np.asarray(m.mean, np.float32) * 255.0).reshape(1, 3, 1, 1)
        self._std = (np.asarray(m.std, np.float32) * 255.0).reshape(1, 3, 1, 1)

    @property
    def spec(self) -> KeypointSpec:
        """The joints, for drawing."""
        m = self.meta
        return KeypointSpec(name=m.dataset, names=m.joints, flip_pairs=m.flip_pairs,
                            skeleton=m.skeleton, upper_body=(), joints_weight=())

    def crops(self, image_bgr: np.ndarray, boxes: list[list[float]]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 crops (P, 3, H, W) in the network's channel order, with their centres and
        scales (P, 2) — the test-time crop of ``test.py``."""
        return person_crops(image_bgr, boxes, self.meta.input_size, self.meta.margin,
                            self.meta.color_rgb)

    def heatmaps(self, crops: np.ndarray, flip: bool = True) -> np.ndarray:
        """(P, K, h, w) heatmaps of uint8 crops (P, 3, H, W), averaged with the flipped
        input's when ``flip``."""
        x = (crops.astype(np.float32) - self._mean) / self._std
        out = self.session.run(None, {self.input_name: x})[0]
        if flip:
            mirrored = self.session.run(None, {self.input_name: np.ascontiguousarray(x[..., ::-1])})[0]
            out = (out + flip_back(mirrored, self.meta.flip_pairs, self.meta.shift_heatmap)) * 0.5
        return out

    def predict(self, image_bgr: np.ndarray, boxes: list[list[float]], flip: bool = True
                ) -> np.ndarray:
        """Keypoints (P, K, 3): x, y in image pixels and the heatmap maximum, per box."""
        if not boxes:
            return np.zeros((0, len(self.meta.joints), 3), np.float32)
        crops, centers, scales = self.crops(image_bgr, boxes)
        coords, conf = self.codec.decode_to_image(self.heatmaps(crops, flip), centers, scales,
                                                  self.meta.post_process)
        return np.concatenate([coords, conf], axis=2)


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default."""


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.infer", description=__doc__,
                       formatter_class=_Help)
    p.add_argument("--model", required=True, help="an .onnx file from trainers.deploy.export")
    add_image_arguments(p)
    p.add_argument("--threads", type=nonnegative_int, default=1, help="onnxruntime threads (0: its default)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the people")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check_image_arguments(args)
    existing_file(args.model, "--model")
    try:
        model = OnnxPoseModel(args.model, args.threads)
    except UserInputError as err:
        raise (err if err.field else UserInputError(err.source, err.message, field="--model")) from None
    if args.video:
        frame_boxes = read_frame_boxes(args.boxes, args.score_thr) if args.boxes else None
        summary = pose_video(args.video, args.out,
                             lambda image, boxes: model.predict(image, boxes, flip=not args.no_flip),
                             model.spec, frame_boxes, args.kpt_thr)
        print(summary.table())
        print(f"wrote {args.out}")
        return 0
    try:
        image = read_image(args.image, color_rgb=False)
    except ImageReadError as err:
        raise UserInputError(args.image, err.reason, field="--image") from None
    boxes = read_person_boxes(args.boxes, image.shape, args.image_id, args.score_thr)
    people = model.predict(image, boxes, flip=not args.no_flip)
    print(draw_people(image, boxes, people, model.spec, args.kpt_thr, args.out,
                      what=f"{model.meta.model} ({'quantized' if model.meta.quantized else 'float'}"
                           f", onnxruntime, {args.threads} thread(s)): "))
    if args.json:
        print(json.dumps({"image": args.image, "people": [
            {"box": box, "keypoints": [[float(v) for v in k] for k in kpts]}
            for box, kpts in zip(boxes, people)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
