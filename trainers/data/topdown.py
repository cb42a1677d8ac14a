"""The top-down sample pipeline shared by COCO, MPII and the synthetic data.

One record = one person box in one image. ``__getitem__`` reads the image, applies HRNet's
training augmentation (half body, scale, rotation, flip), warps the box to the input size with
OpenCV and encodes Gaussian targets.

Sample legend: image (H, W, 3) uint8 in OpenCV's BGR order (the crop as warped: no copy in the
worker; :func:`normalize_images` makes it the network's (N, 3, H, W) input); target_x (K, W/4) and target_y (K, H/4), the separable
factors of the Gaussian target heatmaps (K, H/4, W/4) that :func:`~trainers.data.codec.
batch_targets` expands on the device; target_weight (K, 1).

Images leave the loader as uint8 and are normalised on the device by :func:`normalize_images`
(as mmpose's data preprocessor does): a quarter of the bytes between processes, and the float
arithmetic runs where it is cheap.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from trainers.data.codec import HeatmapCodec
from trainers.data.images import ImageReadError, SkippedSample, read_image
from search_space.joints import KeypointSpec, keypoint_spec
from trainers.data.transforms import (affine_points, fliplr_joints, get_affine_transform,
                                      half_body_center_scale, random_scale_rotation)
from trainers.config.schema import Config


__all__ = ["PersonRecord", "TopDownDataset", "normalize_images", "IMAGENET_MEAN", "IMAGENET_STD"]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class PersonRecord:
    """One person box to crop.

    Attributes:
        image: path of the image file.
        center, scale: the box in HRNet's convention (pixels; units of 200 px).
        joints: (K, 2) joint positions, 0-based pixels (zeros when unlabelled).
        visible: (K,) 1 for labelled joints, 0 otherwise.
        score: box score (1 for ground-truth boxes, detector score otherwise).
        image_id: the dataset's image id (COCO) or the record's position (MPII).
        annotation_id: COCO annotation id, or -1.
    """

    image: str
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    score: float = 1.0
    image_id: int = 0
    annotation_id: int = -1
    extra: dict[str, Any] = field(default_factory=dict)


def normalize_images(images: torch.Tensor, color_rgb: bool = True) -> torch.Tensor:
    """Loader crops, uint8 (N, H, W, 3) in OpenCV's BGR order → the network's input: float
    (N, 3, H, W), ImageNet mean/std normalised, on the crops' own device.

    ``color_rgb`` puts the channels in RGB order (the released HRNet/PNFS weights expect it);
    False keeps BGR. The result keeps the crops' memory layout, i.e. it is channels-last (NHWC
    strides) without a copy; ``.contiguous()`` gives NCHW.
    """
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected loader crops (N, H, W, 3), got shape {tuple(images.shape)}")
    x = images.permute(0, 3, 1, 2)
    if color_rgb:
        x = x.flip(1)
    mean = torch.as_tensor(IMAGENET_MEAN * 255.0, device=images.device)
    std = torch.as_tensor(IMAGENET_STD * 255.0, device=images.device)
    if not color_rgb:
        mean, std = mean.flip(0), std.flip(0)
    return (x.float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


@dataclass
class SampleGeometry:
    """Where a training crop comes from: box, rotation, (flipped) joints and 2×3 matrices."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    joints: np.ndarray
    visible: np.ndarray
    image_matrix: np.ndarray  #: image → crop, including the mirror when flipped
    joint_matrix: np.ndarray  #: (already flipped) joints → crop


class _SampleDraws:
    """One sample's row of the epoch's random draws, handed out in order through the two
    methods of :class:`numpy.random.Generator` the augmentation uses."""

    UNIFORMS = 4  #: half-body gate, half choice, rotation gate, flip
    NORMALS = 2  #: scale, rotation
    __slots__ = ("_uniform", "_normal")

    def __init__(self, uniform: list[float], normal: list[float]) -> None:
        self._uniform, self._normal = uniform, normal

    def random(self) -> float:
        return self._uniform.pop()

    def standard_normal(self) -> float:
        return self._normal.pop()


class TopDownDataset(Dataset):
    """Base class: subclasses fill ``self.records`` and implement ``evaluate``.

    Args:
        cfg: the experiment config (``dataset``, ``model`` and ``test`` sections are used).
        train: apply training augmentation.
    """

    #: the file the records came from (annotation or detection file), for error messages
    source: Path | str = ""
    #: the (train, val) image sets of the official layout, when dataset.train_set / val_set
    #: are left empty
    default_sets: tuple[str, str] = ("train", "val")

    @classmethod
    def image_set_of(cls, cfg: Config, split: str) -> str:
        """The image set of ``split`` ("train" or "val"): the config's, else the layout's."""
        given = cfg.dataset.train_set if split == "train" else cfg.dataset.val_set
        return given or cls.default_sets[0 if split == "train" else 1]

    def __init__(self, cfg: Config, train: bool) -> None:
        self.cfg = cfg
        self.train = train
        self.spec: KeypointSpec = keypoint_spec(cfg.dataset.name)
        self.input_size = tuple(cfg.model.input_size)  # (h, w)
        self.aspect_ratio = self.input_size[1] / self.input_size[0]
        self.codec = HeatmapCodec(self.input_size, cfg.model.heatmap_size, cfg.model.sigma)
        self.records: list[PersonRecord] = []
        self._epoch_seed = 0
        self._draws_key: tuple[int, int, int] | None = None
        self._draws: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def num_joints(self) -> int:
        return self.spec.num_joints

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Make the augmentation of the next epoch differ from this one, reproducibly."""
        self._epoch_seed = epoch

    def _rng(self, index: int) -> "_SampleDraws":
        # The same (seed, epoch, index) gives the same augmentation in any worker process, so
        # runs and resumes are reproducible: each process draws the epoch's whole table from a
        # generator keyed by (seed, epoch), once (a generator per sample costs more than the
        # flip it decides), and a sample reads its row.
        key = (self.cfg.seed, self._epoch_seed, len(self.records))
        if self._draws_key != key:
            gen = np.random.Generator(np.random.Philox(
                key=np.array([self.cfg.seed, self._epoch_seed], dtype=np.uint64)))
            self._draws = (gen.random((len(self.records), _SampleDraws.UNIFORMS)),
                           gen.standard_normal((len(self.records), _SampleDraws.NORMALS)))
            self._draws_key = key
        return _SampleDraws(self._draws[0][index].tolist(), self._draws[1][index].tolist())

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | SkippedSample:
        """Sample ``key``: an index, or ``(epoch, index)`` from :class:`~trainers.data.sampler.EpochSampler`."""
        if isinstance(key, tuple):
            epoch, index = key
            self._epoch_seed = int(epoch)
        else:
            index = key
        rec = self.records[index]
        try:
            image = read_image(rec.image, color_rgb=False)  # BGR; channels swapped on the crop
        except ImageReadError as err:
            return SkippedSample(rec.image, str(err))
        geo = self.sample_geometry(index, image.shape[1])
        out_w_h = (self.input_size[1], self.input_size[0])
        crop = cv2.warpAffine(image, geo.image_matrix, out_w_h, flags=cv2.INTER_LINEAR)
        joints_in = affine_points(geo.joints, geo.joint_matrix)
        visible = geo.visible
        joints_in *= (visible[:, None] > 0)
        center, scale, rotation = geo.center, geo.scale, geo.rotation
        target_x, target_y, target_weight = self.codec.encode_separable(joints_in, visible)
        # numpy arrays and Python scalars: default_collate turns them into batched tensors in
        # one go, cheaper than a tensor per field per sample.
        return {
            "image": crop,  # as warped: HWC BGR; normalize_images() orders it on the device
            "target_x": target_x,  # the heatmaps' separable factors: codec.batch_targets()
            "target_y": target_y,
            "target_weight": target_weight,
            "joints": joints_in,
            "center": center,
            "scale": scale,
            "rotation": rotation,
            "score": float(rec.score),
            "image_id": int(rec.image_id),
            "index": int(index),
        }

    def sample_geometry(self, index: int, image_width: int) -> "SampleGeometry":
        """The crop of record ``index``: augmented box and joints, and the warp matrices.

        Deterministic for (seed, epoch, index); no augmentation when ``self.train`` is False.
        """
        rec = self.records[index]
        joints = rec.joints.astype(np.float32).copy()
        visible = rec.visible.astype(np.float32).copy()
        center = rec.center.astype(np.float32).copy()
        scale = rec.scale.astype(np.float32).copy()
        rotation = 0.0
        flip_matrix = None
        if self.train:
            center, scale, rotation, joints, visible, flip_matrix = self._augment(
                index, image_width, joints, visible, center, scale)
        out_w_h = (self.input_size[1], self.input_size[0])
        joint_matrix = get_affine_transform(center, scale, rotation, out_w_h)
        image_matrix = joint_matrix
        if flip_matrix is not None:
            # warp(flip(image)) in one pass: compose the mirror into the image's matrix (the
            # joints were flipped already, so they keep the unflipped matrix).
            image_matrix = joint_matrix @ np.vstack([flip_matrix, [0.0, 0.0, 1.0]])
        return SampleGeometry(center, scale, rotation, joints, visible, image_matrix, joint_matrix)

    def _augment(self, index: int, width: int, joints: np.ndarray, visible: np.ndarray,
                 center: np.ndarray, scale: np.ndarray):
        ds = self.cfg.dataset
        rng = self._rng(index)
        if (ds.prob_half_body > 0 and self.spec.upper_body and self.spec.lower_body
                and np.sum(visible > 0) > ds.num_joints_half_body
                and rng.random() < ds.prob_half_body):
            half = half_body_center_scale(joints, visible, self.spec.upper_body,
                                          self.aspect_ratio, rng)
            if half is not None:
                center, scale = half
        s, rotation = random_scale_rotation(rng, ds.scale_factor, ds.rotation_factor,
                                            ds.rotation_prob)
        scale = scale * s
        flip_matrix = None
        if ds.flip and rng.random() <= 0.5:
            joints, visible = fliplr_joints(joints, visible, width, self.spec.flip_pairs)
            center = center.copy()
            center[0] = width - center[0] - 1
            flip_matrix = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])
        return center, scale, rotation, joints, visible, flip_matrix

    # -- evaluation, implemented by each dataset --------------------------------------------
    def evaluate(self, preds: np.ndarray, indices: np.ndarray, output_dir: str) -> dict[str, float]:
        """Score predictions (N, K, 3: x, y, confidence in image pixels) of records ``indices``."""
        raise NotImplementedError
