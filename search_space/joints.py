"""Keypoint layouts: joint names, flip pairs, skeletons, OKS sigmas and the body-part groupings
of the part-specific heads, one :class:`KeypointSpec` per layout in :data:`KEYPOINT_SPECS`.

The networks' heads are built for a layout, so it lives in the lowest layer; a dataset
(``trainers.data.registry``) names the layout it is annotated in. A new layout is one entry
here (see README "Extending").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KeypointSpec", "COCO", "MPII", "CROWDPOSE", "AIC", "COCO_WHOLEBODY", "WHOLEBODY_PARTS",
           "KEYPOINT_SPECS", "keypoint_spec", "register_keypoint_spec", "HEATMAP_STRIDE"]


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

def _groups_14(head: str, neck: str) -> tuple:
    """PNFS's 3/5/8-part groupings carried over to a 14-joint body (12 limb joints, a head top
    and a neck: CrowdPose, AI Challenger): COCO's face joints become ``head``+``neck``."""
    shoulders, elbows = ("left_shoulder", "right_shoulder"), ("left_elbow", "right_elbow")
    wrists, hips = ("left_wrist", "right_wrist"), ("left_hip", "right_hip")
    knees, ankles = ("left_knee", "right_knee"), ("left_ankle", "right_ankle")
    return (
        (3, (("head", (head, neck)),
             ("upper_limbs", (*shoulders, *elbows, *wrists)),
             ("lower_limbs", (*hips, *knees, *ankles)))),
        (5, (("head_shoulders", (head, neck, *shoulders)),
             ("left_arm", ("left_elbow", "left_wrist")),
             ("right_arm", ("right_elbow", "right_wrist")),
             ("hips", hips),
             ("legs", (*knees, *ankles)))),
        (8, (("head_shoulders", (head, neck, *shoulders)),
             ("left_upper_arm", ("left_shoulder", "left_elbow")),
             ("right_upper_arm", ("right_shoulder", "right_elbow")),
             ("left_lower_arm", ("left_elbow", "left_wrist")),
             ("right_lower_arm", ("right_elbow", "right_wrist")),
             ("upper_legs", (*hips, *knees)),
             ("left_lower_leg", ("left_knee", "left_ankle")),
             ("right_lower_leg", ("right_knee", "right_ankle")))),
    )


def _index_pairs(names: tuple[str, ...], pairs) -> tuple[tuple[int, int], ...]:
    index = {n: i for i, n in enumerate(names)}
    return tuple((index[a], index[b]) for a, b in pairs)


def _left_right_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of names that differ only in a ``left``/``right`` prefix."""
    index = {n: i for i, n in enumerate(names)}
    return tuple((i, index["right" + n[4:]]) for i, n in enumerate(names)
                 if n.startswith("left") and "right" + n[4:] in index)


_LIMB_WEIGHT = {"shoulder": 1.0, "elbow": 1.2, "wrist": 1.5, "hip": 1.0, "knee": 1.2, "ankle": 1.5}

#: CrowdPose (Li et al., CVPR 2019, https://github.com/Jeff-sjtu/CrowdPose): 14 joints in the
#: official order, OKS sigmas of its evaluation (COCO's limb sigmas; head and neck 0.079)
_CROWD_NAMES = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                "right_ankle", "top_head", "neck")
CROWDPOSE = KeypointSpec(
    name="crowdpose",
    names=_CROWD_NAMES,
    flip_pairs=_left_right_pairs(_CROWD_NAMES),
    skeleton=_index_pairs(_CROWD_NAMES, (
        ("top_head", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
        ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_hip", "right_hip"),
        ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("right_hip", "right_knee"), ("right_knee", "right_ankle"))),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
    joints_weight=tuple(_LIMB_WEIGHT.get(n.split("_", 1)[-1], 1.0) for n in _CROWD_NAMES),
    sigmas=(.079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089, .079, .079),
    part_groups=_groups_14("top_head", "neck"),
)

#: AI Challenger keypoints (Wu et al., arXiv 1711.06475): 14 joints in the official order, OKS
#: sigmas of the official evaluation (keypoint_eval.py's delta / 2)
_AIC_NAMES = ("right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
              "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
              "left_ankle", "head_top", "neck")
AIC = KeypointSpec(
    name="aic",
    names=_AIC_NAMES,
    flip_pairs=tuple(sorted(_left_right_pairs(_AIC_NAMES))),
    skeleton=_index_pairs(_AIC_NAMES, (
        ("head_top", "neck"), ("neck", "right_shoulder"), ("neck", "left_shoulder"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip"), ("right_hip", "left_hip"),
        ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
        ("left_hip", "left_knee"), ("left_knee", "left_ankle"))),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
    joints_weight=tuple(_LIMB_WEIGHT.get(n.split("_", 1)[-1], 1.0) for n in _AIC_NAMES),
    sigmas=(0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
            0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173),
    part_groups=_groups_14("head_top", "neck"),
)


# ------------------------------------------------------------------ COCO-WholeBody (133 joints)
_FOOT = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
         "right_heel")
_FACE = tuple(f"face-{i}" for i in range(68))
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
_HAND = {side: (f"{side}_hand_root",) + tuple(f"{side}_{f}{k}" for f in _FINGERS for k in range(1, 5))
         for side in ("left", "right")}
_WB_NAMES = COCO.names + _FOOT + _FACE + _HAND["left"] + _HAND["right"]
#: the 68-point face's mirror (the iBUG 300-W markup): jaw, brows, nose, eyes, mouth
_FACE_MIRROR = (
    [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)])
_FACE_CHAINS = ((0, 17), (17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60),
                (60, 68))
#: the evaluated groups of COCO-WholeBody: (name, first index, count), in annotation order
WHOLEBODY_PARTS = (("body", 0, 17), ("foot", 17, 6), ("face", 23, 68), ("lefthand", 91, 21),
                   ("righthand", 112, 21))


def _wholebody_skeleton() -> tuple[tuple[int, int], ...]:
    index = {n: i for i, n in enumerate(_WB_NAMES)}
    edges = list(COCO.skeleton)
    for side in ("left", "right"):
        edges += [(index[f"{side}_ankle"], index[f"{side}_{t}"])
                  for t in ("big_toe", "small_toe", "heel")]
        root = index[f"{side}_hand_root"]
        edges.append((index[f"{side}_wrist"], root))
        for f in _FINGERS:
            chain = [root] + [index[f"{side}_{f}{k}"] for k in range(1, 5)]
            edges += list(zip(chain[:-1], chain[1:]))
    for start, stop in _FACE_CHAINS:  # the face's contours as open chains
        edges += [(23 + i, 24 + i) for i in range(start, stop - 1)]
    return tuple(edges)


def _wholebody_groups() -> tuple:
    head = COCO.names[:5]
    hand = {s: (f"{s}_wrist", *_HAND[s]) for s in ("left", "right")}
    leg = {s: (f"{s}_knee", f"{s}_ankle", *(t for t in _FOOT if t.startswith(s))) for s in ("left", "right")}
    return (
        (3, (("body_feet", (*COCO.names, *_FOOT)),
             ("face", (*head, *_FACE)),
             ("hands", (*hand["left"], *hand["right"])))),
        (5, (("body", COCO.names), ("feet", _FOOT), ("face", _FACE),
             ("left_hand", _HAND["left"]), ("right_hand", _HAND["right"]))),
        (8, (("head", head), ("face", _FACE),
             ("arms", ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow")),
             ("left_hand", hand["left"]), ("right_hand", hand["right"]),
             ("hips", ("left_hip", "right_hip", "left_knee", "right_knee")),
             ("left_leg_foot", leg["left"]), ("right_leg_foot", leg["right"]))),
    )


#: COCO-WholeBody (Jin et al., ECCV 2020, https://github.com/jin-s13/COCO-WholeBody): 17 body,
#: 6 foot, 68 face, 21 + 21 hand keypoints in the order its evaluation concatenates them; the
#: sigmas of its official evaluation (myeval_wholebody.py)
COCO_WHOLEBODY = KeypointSpec(
    name="coco_wholebody",
    names=_WB_NAMES,
    flip_pairs=tuple(sorted(_left_right_pairs(_WB_NAMES) + tuple((23 + a, 23 + b) for a, b in _FACE_MIRROR))),
    skeleton=_wholebody_skeleton(),
    upper_body=tuple(range(11)) + tuple(range(23, 133)),
    joints_weight=(1.0,) * 133,
    sigmas=COCO.sigmas + (
        0.068, 0.066, 0.066, 0.092, 0.094, 0.094,
        0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037,
        0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013,
        0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009,
        0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008,
        0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008,
        0.008, 0.01, 0.008,
        0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026,
        0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031,
        0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026,
        0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031),
    part_groups=_wholebody_groups(),
)

#: keypoint layout name → its keypoints (a dataset of trainers.data.registry.DATASETS names the
#: layout it is annotated in: OCHuman is annotated in COCO's)
KEYPOINT_SPECS = {"coco": COCO, "mpii": MPII, "crowdpose": CROWDPOSE, "aic": AIC,
                  "coco_wholebody": COCO_WHOLEBODY, "ochuman": COCO}


def register_keypoint_spec(name: str, spec: KeypointSpec) -> None:
    """Register (or replace) the layout ``name``: a dataset described in its config
    (``dataset.keypoints``; :mod:`trainers.data.custom`) registers its layout when the config is
    loaded, so networks built from that config (or an arch file carrying it) find its joints."""
    KEYPOINT_SPECS[name] = spec


def keypoint_spec(dataset: str) -> KeypointSpec:
    """The registered :class:`KeypointSpec` ``dataset`` (``"coco"``, ``"mpii"``, …)."""
    try:
        return KEYPOINT_SPECS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(KEYPOINT_SPECS)}") from None
