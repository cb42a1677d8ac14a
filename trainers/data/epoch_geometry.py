"""The training crops of a whole epoch, computed at once: HRNet's augmentation, vectorised.

HRNet's ``JointsDataset.__getitem__`` (Sun et al., CVPR 2019; leoxiaobin/deep-high-resolution-net.pytorch)
decides each sample's crop in Python: half body, scale and rotation jitter, flip, then the
affine matrix. Per sample that is a few dozen small NumPy calls, which in a loader worker,
between JPEG decodes that evict the interpreter's caches, cost about as much as the warp.
:func:`epoch_geometry` makes the same decisions for every record of an epoch in whole-array
operations, from the epoch's table of random draws, so a sample only looks up its row.

A flipped sample mirrors its joints and centre in its image's width (``x → W - 1 - x``, in
float32 as HRNet stores them), which is only known once the image is decoded, so
:meth:`EpochGeometry.crop` finishes those samples (about half of them) with HRNet's per-sample
mirror: the same numbers, bit for bit, as the per-sample pipeline.

Shape legend: N records, K joints; matrices (N, 2, 3) map image pixels to crop pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from trainers.data.transforms import PIXEL_STD, affine_points, get_affine_transform

__all__ = ["Augmentation", "EpochGeometry", "RecordArrays", "SampleCrop", "epoch_geometry",
           "UNIFORM_DRAWS", "NORMAL_DRAWS"]

#: uniform draws per sample: half-body gate, half choice, rotation gate, flip
UNIFORM_DRAWS = 4
#: normal draws per sample: scale, rotation
NORMAL_DRAWS = 2


@dataclass(frozen=True)
class Augmentation:
    """HRNet's training augmentation (the ``dataset`` section's knobs); None for evaluation."""

    prob_half_body: float
    num_joints_half_body: int
    upper_body: tuple[int, ...]
    lower_body: tuple[int, ...]
    scale_factor: float
    rotation_factor: float
    rotation_prob: float
    flip: bool
    flip_permutation: np.ndarray  #: (K,) ``flipped[j] = original[perm[j]]``


@dataclass(frozen=True)
class RecordArrays:
    """The records' boxes and joints stacked: center, scale (N, 2), joints (N, K, 2), visible
    (N, K), all float32."""

    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    visible: np.ndarray

    @classmethod
    def stack(cls, records: Sequence) -> "RecordArrays":
        """From :class:`~trainers.data.topdown.PersonRecord` s (any object with center, scale,
        joints, visible)."""
        n = len(records)
        center = np.array([r.center[:2] for r in records], dtype=np.float32).reshape(n, 2)
        scale = np.array([r.scale[:2] for r in records], dtype=np.float32).reshape(n, 2)
        joints = np.array([np.asarray(r.joints)[:, :2] for r in records], dtype=np.float32)
        visible = np.array([np.asarray(r.visible).reshape(len(r.joints), -1)[:, 0]
                            for r in records], dtype=np.float32)
        k = joints.shape[1] if joints.ndim == 3 else 0
        return cls(center, scale, joints.reshape(n, k, 2), visible.reshape(n, k))


@dataclass(frozen=True)
class SampleCrop:
    """One sample's crop: box centre (in its mirrored image, if flipped), the image → crop
    matrix (mirror included), joints (K, 2) in crop pixels (zero where unlabelled; mirrored
    order when flipped) and their visibility (K,)."""

    center: np.ndarray
    image_matrix: np.ndarray
    joints: np.ndarray
    visible: np.ndarray


@dataclass(frozen=True)
class EpochGeometry:
    """Every crop of an epoch.

    Attributes:
        center, scale: (N, 2) float32 augmented boxes (``center`` before any mirroring).
        rotation: (N,) degrees.
        flipped: (N,) bool.
        joints: (N, K, 2) float32 joints in crop pixels of the unmirrored crop, zero where
            unlabelled (a flipped sample's are made by :meth:`crop`).
        image_matrix: (N, 2, 3) float64, image → unmirrored crop.
        records: the records' arrays (a flipped sample mirrors its joints from them).
        output_size: (width, height) of the crop.
        flip_permutation: (K,) the flip's joint permutation.
    """

    center: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray
    flipped: np.ndarray
    joints: np.ndarray
    image_matrix: np.ndarray
    records: RecordArrays
    output_size: tuple[int, int]
    flip_permutation: np.ndarray | None

    def crop(self, index: int, image_width: int) -> SampleCrop:
        """Sample ``index``'s crop in an image ``image_width`` pixels wide: a row of the table,
        or, flipped, HRNet's mirror (``fliplr_joints``, the centre mirrored in float32, the
        box's matrix around it composed with the image's mirror; unlabelled joints are zeroed
        once, in the crop). Arrays are the caller's."""
        if not self.flipped[index]:
            return SampleCrop(self.center[index].copy(), self.image_matrix[index].copy(),
                              self.joints[index].copy(), self.records.visible[index].copy())
        center = self.center[index].copy()
        center[0] = image_width - center[0] - 1
        perm = self.flip_permutation
        joints = self.records.joints[index][perm]  # fancy indexing copies
        visible = self.records.visible[index][perm]
        joints[:, 0] = image_width - joints[:, 0] - 1
        matrix = get_affine_transform(center, self.scale[index], float(self.rotation[index]),
                                      self.output_size)
        image_matrix = matrix @ np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0],
                                          [0.0, 0.0, 1.0]])
        joints_in = affine_points(joints, matrix)
        joints_in *= (visible > 0)[:, None]
        return SampleCrop(center, image_matrix, joints_in, visible)


def _take_uniform(uniform: np.ndarray, cursor: np.ndarray, consume: np.ndarray) -> np.ndarray:
    """Each sample's next uniform draw where ``consume`` (its row is handed out from the end, as
    :meth:`list.pop` does); advances ``cursor`` there."""
    value = uniform[np.arange(len(uniform)), np.maximum(cursor, 0)]
    cursor -= consume
    return value


def _half_body(arrays: RecordArrays, aug: Augmentation, aspect_ratio: float, uniform: np.ndarray,
               cursor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HRNet's half-body crop (``half_body_transform``) where its gate opens: a box around the
    visible upper or lower body, ×1.5; the records' boxes elsewhere."""
    center, scale = arrays.center.copy(), arrays.scale.copy()
    labelled = arrays.visible > 0
    if not (aug.prob_half_body > 0 and aug.upper_body and aug.lower_body):
        return center, scale
    eligible = labelled.sum(1) > aug.num_joints_half_body
    gate = _take_uniform(uniform, cursor, eligible)
    chosen_gate = eligible & (gate < aug.prob_half_body)
    choice = _take_uniform(uniform, cursor, chosen_gate)  # drawn whenever the gate opened
    is_upper = np.zeros(labelled.shape[1], dtype=bool)
    is_upper[list(aug.upper_body)] = True
    upper, lower = labelled & is_upper, labelled & ~is_upper
    n_upper, n_lower = upper.sum(1), lower.sum(1)
    take_upper = ((choice < 0.5) & (n_upper > 2)) | (n_lower < 2)
    selected = np.where(take_upper[:, None], upper, lower)
    count = selected.sum(1)
    apply = chosen_gate & (count >= 2)
    if not apply.any():
        return center, scale
    pts, sel, cnt = arrays.joints[apply], selected[apply][..., None], count[apply]
    # float32 as HRNet's per-sample mean/min/max: summed row by row (unselected rows add 0)
    mean = np.where(sel, pts, np.float32(0)).sum(axis=1, dtype=np.float32) / cnt[:, None].astype(np.float32)
    left_top = np.where(sel, pts, np.float32(np.inf)).min(axis=1)
    right_bottom = np.where(sel, pts, np.float32(-np.inf)).max(axis=1)
    w = (right_bottom[:, 0] - left_top[:, 0]).astype(np.float64)
    h = (right_bottom[:, 1] - left_top[:, 1]).astype(np.float64)
    wider, taller = w > aspect_ratio * h, w < aspect_ratio * h
    h, w = np.where(wider, w / aspect_ratio, h), np.where(taller, h * aspect_ratio, w)
    center[apply] = mean
    scale[apply] = np.stack([w / PIXEL_STD, h / PIXEL_STD], axis=1).astype(np.float32) * np.float32(1.5)
    return center, scale


def epoch_geometry(arrays: RecordArrays, input_size: tuple[int, int], aspect_ratio: float,
                   aug: Augmentation | None = None, uniform: np.ndarray | None = None,
                   normal: np.ndarray | None = None) -> EpochGeometry:
    """The crops of all records for one epoch.

    Args:
        arrays: the records' boxes and joints.
        input_size: (height, width) of the network input.
        aspect_ratio: width / height of the input (the half-body box is grown to it).
        aug: the augmentation; None gives the plain boxes (evaluation).
        uniform, normal: the epoch's draws, (N, :data:`UNIFORM_DRAWS`) and
            (N, :data:`NORMAL_DRAWS`); each sample consumes its row from the end, in HRNet's
            order: half-body gate and choice (when they apply), scale, rotation gate and angle
            (when the gate opens), flip (when enabled).
    """
    n = len(arrays.center)
    rotation = np.zeros(n)
    flipped = np.zeros(n, dtype=bool)
    if aug is None:
        center, scale = arrays.center.copy(), arrays.scale.copy()
    else:
        assert uniform is not None and normal is not None
        cursor = np.full(n, UNIFORM_DRAWS - 1)
        center, scale = _half_body(arrays, aug, aspect_ratio, uniform, cursor)
        sf, rf = aug.scale_factor, aug.rotation_factor
        s = np.minimum(np.maximum(normal[:, NORMAL_DRAWS - 1] * sf + 1, 1 - sf), 1 + sf)
        scale = scale * s.astype(np.float32)[:, None]
        rotate = _take_uniform(uniform, cursor, np.ones(n, dtype=bool)) <= aug.rotation_prob
        angle = np.minimum(np.maximum(normal[:, NORMAL_DRAWS - 2] * rf, -2 * rf), 2 * rf)
        rotation = np.where(rotate, angle, 0.0)
        if aug.flip:
            flipped = _take_uniform(uniform, cursor, np.ones(n, dtype=bool)) <= 0.5

    # get_affine_transform in closed form, per row (cos/sin from math: the same bits as the
    # per-sample function); flipped rows are finished per sample (EpochGeometry.crop)
    dst_w, dst_h = float(input_size[1]), float(input_size[0])
    k = dst_w / (scale[:, 0].astype(np.float64) * PIXEL_STD)
    rad = [math.radians(r) for r in rotation.tolist()]
    cs = np.array([math.cos(r) for r in rad]).reshape(n)
    sn = np.array([math.sin(r) for r in rad]).reshape(n)
    a, b, c, d = k * cs, k * sn, -k * sn, k * cs
    cx, cy = center[:, 0].astype(np.float64), center[:, 1].astype(np.float64)
    tx = dst_w * 0.5 - (a * cx + b * cy)
    ty = dst_h * 0.5 - (c * cx + d * cy)
    matrix = np.stack([np.stack([a, b, tx], 1), np.stack([c, d, ty], 1)], 1)

    joints = arrays.joints.astype(np.float64) @ matrix[:, :, :2].transpose(0, 2, 1) + matrix[:, None, :, 2]
    joints = joints.astype(np.float32)
    joints *= (arrays.visible > 0)[..., None]
    return EpochGeometry(center, scale, rotation, flipped, joints, matrix, arrays,
                         (input_size[1], input_size[0]),
                         aug.flip_permutation if aug is not None else None)
