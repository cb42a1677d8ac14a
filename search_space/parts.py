"""Body-part groupings: which joints each part-specific head predicts.

The groupings of PNFS (Yang et al., "Pose Neural Fabrics Search", arXiv 1909.07068, Table I)
for 1, 3, 5 and 8 parts on COCO (17 joints) and MPII (16 joints). Parts overlap where a joint
belongs to two limbs (8 parts: the elbows, knees and shoulders); the outputs of the parts that
share a joint are summed.

Groupings are written with joint names and resolved against the dataset's
:class:`~search_space.joints.KeypointSpec`, so a typo fails at import-time tests rather than
silently predicting the wrong joint.
"""
from __future__ import annotations

from dataclasses import dataclass

from search_space.joints import keypoint_spec

__all__ = ["BodyPart", "body_parts", "PARTS_NUMS"]

#: the part counts of the paper
PARTS_NUMS = (1, 3, 5, 8)

# (part name, joints) per dataset and part count; COCO names use "left_"/"right_", MPII "l_"/"r_"
_GROUPS: dict[str, dict[int, list[tuple[str, tuple[str, ...]]]]] = {
    "coco": {
        3: [
            ("head", ("nose", "left_eye", "right_eye", "left_ear", "right_ear")),
            ("upper_limbs", ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                             "left_wrist", "right_wrist")),
            ("lower_limbs", ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                             "right_ankle")),
        ],
        5: [
            ("head_shoulders", ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                "left_shoulder", "right_shoulder")),
            ("left_arm", ("left_elbow", "left_wrist")),
            ("right_arm", ("right_elbow", "right_wrist")),
            ("hips", ("left_hip", "right_hip")),
            ("legs", ("left_knee", "right_knee", "left_ankle", "right_ankle")),
        ],
        8: [
            ("head_shoulders", ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                "left_shoulder", "right_shoulder")),
            ("left_upper_arm", ("left_shoulder", "left_elbow")),
            ("right_upper_arm", ("right_shoulder", "right_elbow")),
            ("left_lower_arm", ("left_elbow", "left_wrist")),
            ("right_lower_arm", ("right_elbow", "right_wrist")),
            ("upper_legs", ("left_hip", "right_hip", "left_knee", "right_knee")),
            ("left_lower_leg", ("left_knee", "left_ankle")),
            ("right_lower_leg", ("right_knee", "right_ankle")),
        ],
    },
    "mpii": {
        3: [
            ("head", ("head_top", "upper_neck", "thorax")),
            ("upper_limbs", ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist",
                             "r_wrist")),
            ("lower_limbs", ("l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
                             "pelvis")),
        ],
        5: [
            ("head_shoulders", ("head_top", "upper_neck", "thorax", "l_shoulder", "r_shoulder")),
            ("left_arm", ("l_elbow", "l_wrist")),
            ("right_arm", ("r_elbow", "r_wrist")),
            ("hips", ("pelvis", "l_hip", "r_hip")),
            ("legs", ("l_knee", "r_knee", "l_ankle", "r_ankle")),
        ],
        8: [
            ("head_shoulders", ("head_top", "upper_neck", "thorax", "l_shoulder", "r_shoulder")),
            ("left_upper_arm", ("l_shoulder", "l_elbow")),
            ("right_upper_arm", ("r_shoulder", "r_elbow")),
            ("left_lower_arm", ("l_elbow", "l_wrist")),
            ("right_lower_arm", ("r_elbow", "r_wrist")),
            ("upper_legs", ("l_hip", "pelvis", "r_hip", "l_knee", "r_knee")),
            ("left_lower_leg", ("l_knee", "l_ankle")),
            ("right_lower_leg", ("r_knee", "r_ankle")),
        ],
    },
}


@dataclass(frozen=True)
class BodyPart:
    """One part: its name and the dataset indices of its joints (in grouping order)."""

    name: str
    joints: tuple[int, ...]
    joint_names: tuple[str, ...]


def body_parts(dataset: str, parts_num: int) -> list[BodyPart]:
    """The parts of ``dataset`` ("coco" or "mpii") for ``parts_num`` ∈ {1, 3, 5, 8}.

    Every joint of the dataset belongs to at least one part.

    Raises:
        ValueError: unknown dataset or part count.
    """
    spec = keypoint_spec(dataset)
    if parts_num not in PARTS_NUMS:
        raise ValueError(f"parts_num must be one of {list(PARTS_NUMS)}, got {parts_num}")
    if parts_num == 1:
        return [BodyPart("whole_body", tuple(range(spec.num_joints)), spec.names)]
    index = {name: i for i, name in enumerate(spec.names)}
    return [BodyPart(name, tuple(index[j] for j in joints), joints)
            for name, joints in _GROUPS[dataset][parts_num]]
