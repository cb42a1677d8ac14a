"""Body-part groupings: which joints each part-specific head predicts.

The groupings of PNFS (Yang et al., "Pose Neural Fabrics Search", arXiv 1909.07068, Table I)
for 1, 3, 5 and 8 parts on COCO (17 joints) and MPII (16 joints). Parts overlap where a joint
belongs to two limbs (8 parts: the elbows, knees and shoulders); the outputs of the parts that
share a joint are summed.

Groupings are part of each dataset's :class:`~search_space.joints.KeypointSpec`
(``part_groups``), written with joint names and resolved here, so a typo fails in the tests
rather than silently predicting the wrong joint, and a new keypoint layout brings its own.
"""
from __future__ import annotations

from dataclasses import dataclass

from search_space.errors import UserInputError
from search_space.joints import keypoint_spec

__all__ = ["BodyPart", "body_parts", "PARTS_NUMS"]

#: the part counts of the paper
PARTS_NUMS = (1, 3, 5, 8)

@dataclass(frozen=True)
class BodyPart:
    """One part: its name and the dataset indices of its joints (in grouping order)."""

    name: str
    joints: tuple[int, ...]
    joint_names: tuple[str, ...]


def body_parts(dataset: str, parts_num: int) -> list[BodyPart]:
    """The parts of ``dataset`` (a registered keypoint layout) for ``parts_num``: 1 (the whole
    body) or a count its spec groups (COCO and MPII: 3, 5, 8).

    Every joint of the dataset belongs to at least one part.

    Raises:
        UserInputError: (field ``parts_num``) a part count the layout does not group.
        ValueError: unknown dataset.
    """
    spec = keypoint_spec(dataset)
    if parts_num == 1:
        return [BodyPart("whole_body", tuple(range(spec.num_joints)), spec.names)]
    groups = dict(spec.part_groups)
    if parts_num not in groups:
        raise UserInputError.at_field("space.parts_num", f"{dataset} groups its joints into "
                                      f"{', '.join(str(n) for n in (1, *groups))} parts, not "
                                      f"{parts_num}")
    index = {name: i for i, name in enumerate(spec.names)}
    return [BodyPart(name, tuple(index[j] for j in joints), joints)
            for name, joints in groups[parts_num]]
