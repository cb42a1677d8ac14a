"""Keypoint layouts: joint names, flip pairs, skeletons, OKS sigmas and the body-part groupings
of the part-specific heads, one :class:`KeypointSpec` per layout in :data:`KEYPOINT_SPECS`.

The networks' heads are built for a layout, so it lives in the lowest layer; a dataset
(``trainers.data.registry``) names the layout it is annotated in. A new layout is one entry
here (see README "Extending").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KeypointSpec", "COCO", "MPII", "KEYPOINT_SPECS", "keypoint_spec", "HEATMAP_STRIDE"]


#: every posenas network outputs its heatmaps at 1/4 of the input size (HRNet's convention)
HEATMAP_STRIDE = 4

@dataclass(frozen=True)
class KeypointSpec:
    """What a dataset's joints are.

    Attributes:
        names: joint names in dataset order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        skeleton: (a, b) index pairs drawn as limbs.
        upper_body: joint ids of the upper half (half-body augmentation).
        joints_weight: per-joint loss weight (HRNet's ``joints_weight``).
        sigmas: OKS per-keypoint sigmas, as pycocotools uses them (COCO-format datasets).
        part_groups: ``(parts_num, ((part name, joint names), ...))`` pairs: the body parts of
            the part-specific heads for each part count (PNFS's Table I for COCO and MPII);
            parts may share a joint. One part (the whole body) needs no entry.
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    upper_body: tuple[int, ...]
    joints_weight: tuple[float, ...]
    sigmas: tuple[float, ...] = ()
    part_groups: tuple[tuple[int, tuple[tuple[str, tuple[str, ...]], ...]], ...] = ()

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
    part_groups=(
        (3, (
            ("head", ("nose", "left_eye", "right_eye", "left_ear", "right_ear",)),
            ("upper_limbs", ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",)),
            ("lower_limbs", ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",)),
        )),
        (5, (
            ("head_shoulders", ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",)),
            ("left_arm", ("left_elbow", "left_wrist",)),
            ("right_arm", ("right_elbow", "right_wrist",)),
            ("hips", ("left_hip", "right_hip",)),
            ("legs", ("left_knee", "right_knee", "left_ankle", "right_ankle",)),
        )),
        (8, (
            ("head_shoulders", ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",)),
            ("left_upper_arm", ("left_shoulder", "left_elbow",)),
            ("right_upper_arm", ("right_shoulder", "right_elbow",)),
            ("left_lower_arm", ("left_elbow", "left_wrist",)),
            ("right_lower_arm", ("right_elbow", "right_wrist",)),
            ("upper_legs", ("left_hip", "right_hip", "left_knee", "right_knee",)),
            ("left_lower_leg", ("left_knee", "left_ankle",)),
            ("right_lower_leg", ("right_knee", "right_ankle",)),
        )),
    ),
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
    part_groups=(
        (3, (
            ("head", ("head_top", "upper_neck", "thorax",)),
            ("upper_limbs", ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",)),
            ("lower_limbs", ("l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle", "pelvis",)),
        )),
        (5, (
            ("head_shoulders", ("head_top", "upper_neck", "thorax", "l_shoulder", "r_shoulder",)),
            ("left_arm", ("l_elbow", "l_wrist",)),
            ("right_arm", ("r_elbow", "r_wrist",)),
            ("hips", ("pelvis", "l_hip", "r_hip",)),
            ("legs", ("l_knee", "r_knee", "l_ankle", "r_ankle",)),
        )),
        (8, (
            ("head_shoulders", ("head_top", "upper_neck", "thorax", "l_shoulder", "r_shoulder",)),
            ("left_upper_arm", ("l_shoulder", "l_elbow",)),
            ("right_upper_arm", ("r_shoulder", "r_elbow",)),
            ("left_lower_arm", ("l_elbow", "l_wrist",)),
            ("right_lower_arm", ("r_elbow", "r_wrist",)),
            ("upper_legs", ("l_hip", "pelvis", "r_hip", "l_knee", "r_knee",)),
            ("left_lower_leg", ("l_knee", "l_ankle",)),
            ("right_lower_leg", ("r_knee", "r_ankle",)),
        )),
    ),
)

#: dataset name → its keypoints (the same names as trainers.data.registry.DATASETS)
KEYPOINT_SPECS = {"coco": COCO, "mpii": MPII}


def keypoint_spec(dataset: str) -> KeypointSpec:
    """The registered :class:`KeypointSpec` ``dataset`` (``"coco"``, ``"mpii"``, …)."""
    try:
        return KEYPOINT_SPECS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(KEYPOINT_SPECS)}") from None
