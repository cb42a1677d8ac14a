"""Keypoint definitions of the two datasets: names, flip pairs, skeletons, OKS sigmas."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KeypointSpec", "COCO", "MPII", "KEYPOINT_SPECS", "keypoint_spec"]


@dataclass(frozen=True)
class KeypointSpec:
    """What a dataset's joints are.

    Attributes:
        names: joint names in dataset order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        skeleton: (a, b) index pairs drawn as limbs.
        upper_body: joint ids of the upper half (half-body augmentation).
        joints_weight: per-joint loss weight (HRNet's ``joints_weight``).
        sigmas: COCO OKS per-keypoint sigmas, as pycocotools uses them (only for COCO).
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    upper_body: tuple[int, ...]
    joints_weight: tuple[float, ...]
    sigmas: tuple[float, ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def lower_body(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_joints) if i not in self.upper_body)

    def flip_permutation(self) -> np.ndarray:
        """Index array ``p`` with ``flipped[..., j, :] = original[..., p[j], :]``."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


COCO = KeypointSpec(
    name="coco",
    names=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
           "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
           "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
              (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
    upper_body=tuple(range(11)),
    joints_weight=(1., 1., 1., 1., 1., 1., 1., 1.2, 1.2, 1.5, 1.5, 1., 1., 1.2, 1.2, 1.5, 1.5),
    sigmas=(.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087,
            .089, .089),
)

MPII = KeypointSpec(
    name="mpii",
    names=("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
           "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow",
           "l_wrist"),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=((0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11),
              (11, 12), (12, 7), (7, 13), (13, 14), (14, 15)),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
    joints_weight=(1.5, 1.2, 1., 1., 1.2, 1.5, 1., 1., 1., 1., 1.5, 1.2, 1., 1., 1.2, 1.5),
)

#: dataset name → its keypoints (the same names as trainers.data.datasets.DATASETS)
KEYPOINT_SPECS = {"coco": COCO, "mpii": MPII}


def keypoint_spec(dataset: str) -> KeypointSpec:
    """The :class:`KeypointSpec` of ``"coco"`` or ``"mpii"``."""
    try:
        return KEYPOINT_SPECS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(KEYPOINT_SPECS)}") from None
