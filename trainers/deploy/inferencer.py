"""Keypoints from Python in one line: :class:`PoseInferencer`.

    from trainers.deploy.inferencer import PoseInferencer

    pose = PoseInferencer("runs/demo/train/best.ckpt")          # or "hrnet_w32", weights=...
    result = pose("person.jpg", boxes=[[10, 20, 120, 260]])    # a path, a BGR array, or a list
    result.keypoints    # (P, K, 2) image pixels;  result.scores (P, K);  result.names (K,)

The model is a posenas checkpoint, a registered model name or a config (with ``weights``: a
posenas checkpoint or a released file of another code, converted on the fly), or an exported
``.onnx`` file (onnxruntime; torch is then never imported). Every backend uses ``test.py``'s
person crop (box → centre/scale with the margin, affine warp), flip test and decoding (argmax,
quarter-pixel shift, inverse affine), so the keypoints are the ones ``test.py`` evaluates. Without
boxes, the whole image is one person.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from search_space.errors import UserInputError
from search_space.joints import keypoint_spec
from trainers.data.images import ImageReadError, read_image
from trainers.deploy.infer import OnnxPoseModel

__all__ = ["PoseInferencer", "PoseResult"]

Image = Union[str, Path, np.ndarray]


@dataclass(frozen=True)
class PoseResult:
    """The people of one image.

    Attributes:
        keypoints: (P, K, 2) x, y in image pixels.
        scores: (P, K) heatmap maxima (confidence).
        boxes: (P, 4) the person boxes [x, y, w, h] they were predicted in.
        names: the K joint names.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.keypoints)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``json.dumps``-able): ``{"people": [{"box", "keypoints": {name: [x, y, score]}}]}``."""
        return {"people": [
            {"box": [float(v) for v in box],
             "keypoints": {n: [float(x), float(y), float(s)] for n, (x, y), s in zip(self.names, kp, sc)}}
            for box, kp, sc in zip(self.boxes, self.keypoints, self.scores)]}


class PoseInferencer:
    """A pose network ready to call on images.

    Args:
        model: a posenas checkpoint (``.ckpt``/``.pth``), an exported ``.onnx`` (its ``.json``
            beside it), a config (``.yaml``), or a registered model name (``hrnet_w32``).
        weights: for a config or a model name: the weights (a posenas checkpoint or a released
            file; required for a model name: a network with random weights predicts nothing).
        cfg: for a released file given as ``model``: the config that says what it holds.
        device: torch device (``"cpu"``, ``"cuda:0"``); ignored for ONNX.
        flip: flip test (as ``test.flip_test``).
        threads: onnxruntime intra-op threads (ONNX only).

    Raises:
        UserInputError: a file that cannot be read as any of those, or weights missing.
    """

    def __init__(self, model: str | Path, weights: str | Path | None = None, *,
                 cfg: str | Path | None = None, device: str = "cpu", flip: bool = True,
                 threads: int = 1) -> None:
        self.flip = flip
        model = str(model)
        if model.endswith(".onnx"):
            self._onnx = OnnxPoseModel(model, threads)
            self.names = self._onnx.meta.joints
            self.backend = "onnxruntime"
            return
        # the torch backends only: an ONNX inferencer never loads torch
        from trainers.config.experiment import load_config  # torch backend only
        from trainers.network.build import load_any_network  # torch backend only

        self._onnx = None
        config = load_config(cfg) if cfg else None
        if model.endswith((".yaml", ".yml")):
            config = load_config(model)
            if weights is None:
                raise UserInputError(model, "a config needs weights=... (a checkpoint)", field="weights")
            self.cfg, _, self._net = load_any_network(weights, config, field="weights")
        elif Path(model).is_file():
            self.cfg, _, self._net = load_any_network(model, config, field="model")
        else:
            if weights is None:
                raise UserInputError(model, "a registered model needs weights=... (its "
                                     "checkpoint); random weights predict nothing", field="weights")
            self.cfg, _, self._net = load_any_network(weights, config, model, field="weights")
        self.device = device
        self._net = self._net.to(device).eval()
        self.names = keypoint_spec(self.cfg.dataset.name).names
        self.backend = f"torch ({device})"

    def _predict(self, image_bgr: np.ndarray, boxes: list[list[float]]) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.predict(image_bgr, boxes, flip=self.flip)
        from trainers.evaluation.prediction import predict_image  # torch backend only

        return predict_image(self._net, self.cfg, image_bgr, boxes, self.flip, self.device)

    def _one(self, image: Image, boxes: Sequence[Sequence[float]] | None) -> PoseResult:
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise UserInputError("image", f"expected a uint8 (H, W, 3) BGR array, got "
                                     f"{image.dtype} {image.shape}")
            bgr = image
        else:
            try:
                bgr = read_image(str(image), color_rgb=False)
            except ImageReadError as err:
                raise UserInputError(str(image), err.reason, field="image") from None
        if boxes is None:
            boxes = [[0.0, 0.0, float(bgr.shape[1]), float(bgr.shape[0])]]
        boxes = [[float(v) for v in b] for b in boxes]
        if any(len(b) != 4 or b[2] <= 0 or b[3] <= 0 for b in boxes):
            raise UserInputError("boxes", "each box is [x, y, w, h] with w, h > 0")
        people = self._predict(bgr, boxes).reshape(len(boxes), len(self.names), 3)
        return PoseResult(people[..., :2].copy(), people[..., 2].copy(),
                          np.asarray(boxes, np.float64).reshape(-1, 4), tuple(self.names))

    def __call__(self, images: Image | Sequence[Image],
                 boxes: Sequence[Sequence[float]] | Sequence[Sequence[Sequence[float]]] | None = None
                 ) -> PoseResult | list[PoseResult]:
        """Keypoints of the people in ``images``: one image (path or BGR uint8 array) with its
        ``boxes`` ([x, y, w, h] each; None: the whole image), or a list of images with a list of
        box lists (one per image)."""
        if isinstance(images, (list, tuple)):
            if boxes is not None and len(boxes) != len(images):
                raise UserInputError("boxes", f"{len(images)} images need {len(images)} box lists, "
                                     f"got {len(boxes)}")
            return [self._one(img, None if boxes is None else boxes[i]) for i, img in enumerate(images)]
        return self._one(images, boxes)

    def __repr__(self) -> str:
        return f"PoseInferencer({len(self.names)} joints, {self.backend}, flip={self.flip})"
