"""The top-down sample pipeline shared by COCO, MPII and the synthetic data.

One record = one person box in one image. ``__getitem__`` reads the image and warps the box to
the input size with OpenCV; the crop's geometry (HRNet's training augmentation: half body,
scale, rotation, flip) is computed for the whole epoch at once
(:mod:`trainers.data.epoch_geometry`) and the Gaussian targets for the whole batch on the
device (:mod:`trainers.data.heatmap_targets`), so the worker's per-sample Python is a lookup.

Sample legend: image (H, W, 3) uint8 in OpenCV's BGR order (the crop as warped: no copy in the
worker; :func:`normalize_images` makes it the network's (N, 3, H, W) input); joints (K, 2) in
crop pixels (zero where unlabelled) and visible (K,), in the mirrored order when the crop is
flipped: :class:`~trainers.data.heatmap_targets.BatchTargets` turns a batch of them into target
heatmaps (K, H/4, W/4) and weights (K, 1).

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
from trainers.data.epoch_geometry import (NORMAL_DRAWS, UNIFORM_DRAWS, Augmentation,
                                          EpochGeometry, RecordArrays, epoch_geometry)
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
    """Where a training crop comes from: box, rotation, flip, joints and the warp matrix."""

    center: np.ndarray  #: (2,) in the (mirrored, if flipped) image
    scale: np.ndarray
    rotation: float
    flipped: bool
    joints: np.ndarray  #: (K, 2) in crop pixels, mirrored order when flipped; 0 if unlabelled
    visible: np.ndarray  #: (K,)
    image_matrix: np.ndarray  #: image → crop, including the mirror when flipped


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
        self.codec = HeatmapCodec.for_model(cfg.model)
        self.records: list[PersonRecord] = []
        self._epoch_seed = 0
        self._arrays_key: tuple[int, int] | None = None
        self._arrays: RecordArrays | None = None
        self._geometry_key: tuple[int, int, int, int, bool] | None = None
        self._geometry: EpochGeometry | None = None

    @property
    def num_joints(self) -> int:
        return self.spec.num_joints

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Make the augmentation of the next epoch differ from this one, reproducibly."""
        self._epoch_seed = epoch

    def epoch_geometry(self) -> EpochGeometry:
        """The crops of every record for the current epoch (:mod:`trainers.data.epoch_geometry`).

        The same (seed, epoch, index) gives the same augmentation in any worker process, so runs
        and resumes are reproducible: each process draws the epoch's whole table of random draws
        from a generator keyed by (seed, epoch) and computes the epoch's geometry from it once,
        in whole-array operations; a sample reads its row.
        """
        key = (self.cfg.seed, self._epoch_seed, len(self.records), id(self.records), self.train)
        if self._geometry_key != key:
            if self._arrays_key != key[2:4]:
                self._arrays = RecordArrays.stack(self.records)
                self._arrays_key = key[2:4]
            augmentation = uniform = normal = None
            if self.train:
                ds = self.cfg.dataset
                augmentation = Augmentation(
                    ds.prob_half_body, ds.num_joints_half_body, self.spec.upper_body,
                    self.spec.lower_body, ds.scale_factor, ds.rotation_factor, ds.rotation_prob,
                    ds.flip, self.spec.flip_permutation())
                gen = np.random.Generator(np.random.Philox(
                    key=np.array([self.cfg.seed, self._epoch_seed], dtype=np.uint64)))
                uniform = gen.random((len(self.records), UNIFORM_DRAWS))
                normal = gen.standard_normal((len(self.records), NORMAL_DRAWS))
            self._geometry = epoch_geometry(self._arrays, self.input_size, self.aspect_ratio,
                                            augmentation, uniform, normal)
            self._geometry_key = key
        return self._geometry

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
        geometry = self.epoch_geometry()
        crop = geometry.crop(index, image.shape[1])
        out_w_h = (self.input_size[1], self.input_size[0])
        image = cv2.warpAffine(image, crop.image_matrix, out_w_h, flags=cv2.INTER_LINEAR)
        # numpy arrays and Python scalars: default_collate turns them into batched tensors in
        # one go, cheaper than a tensor per field per sample.
        return {
            "image": image,  # as warped: HWC BGR; normalize_images() orders it on the device
            "joints": crop.joints,  # (K, 2) crop pixels: BatchTargets encodes the batch
            "visible": crop.visible,  # (K,)
            "center": crop.center,
            "scale": geometry.scale[index].copy(),
            "rotation": float(geometry.rotation[index]),
            "score": float(rec.score),
            "image_id": int(rec.image_id),
            "index": int(index),
        }

    def sample_geometry(self, index: int, image_width: int) -> SampleGeometry:
        """The crop of record ``index`` in this epoch: augmented box, joints and warp matrix.

        Deterministic for (seed, epoch, index); no augmentation when ``self.train`` is False.
        ``image_width`` places the mirrored centre of a flipped sample.
        """
        g = self.epoch_geometry()
        crop = g.crop(index, image_width)
        return SampleGeometry(crop.center, g.scale[index], float(g.rotation[index]),
                              bool(g.flipped[index]), crop.joints, crop.visible, crop.image_matrix)

    # -- evaluation, implemented by each dataset --------------------------------------------
    def evaluate(self, preds: np.ndarray, indices: np.ndarray, output_dir: str) -> dict[str, float]:
        """Score predictions (N, K, 3: x, y, confidence in image pixels) of records ``indices``."""
        raise NotImplementedError
