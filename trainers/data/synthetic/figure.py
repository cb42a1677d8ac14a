"""The synthetic person: an articulated, human-like figure with named skeleton points, and which
body parts own each point (a joint drawn under any other part is occluded)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Figure", "PARTS", "PART_ID", "OWNERS", "MPII_TO_POINT", "SKIN_TONES", "rotate"]

# Named skeleton points → body parts that own them (a joint drawn under any other part is
# occluded). Part ids are small ints painted into the owner map.
PARTS = ("torso", "head", "neck", "l_uarm", "l_farm", "r_uarm", "r_farm", "l_thigh", "l_shin",
         "r_thigh", "r_shin", "l_ear", "r_ear")
PART_ID = {name: i + 1 for i, name in enumerate(PARTS)}
OWNERS = {
    "nose": ("head",), "left_eye": ("head",), "right_eye": ("head",),
    "left_ear": ("l_ear", "head"), "right_ear": ("r_ear", "head"),
    "left_shoulder": ("torso", "l_uarm"), "right_shoulder": ("torso", "r_uarm"),
    "left_elbow": ("l_uarm", "l_farm"), "right_elbow": ("r_uarm", "r_farm"),
    "left_wrist": ("l_farm",), "right_wrist": ("r_farm",),
    "left_hip": ("torso", "l_thigh"), "right_hip": ("torso", "r_thigh"),
    "left_knee": ("l_thigh", "l_shin"), "right_knee": ("r_thigh", "r_shin"),
    "left_ankle": ("l_shin",), "right_ankle": ("r_shin",),
    "pelvis": ("torso",), "thorax": ("torso", "neck"), "upper_neck": ("neck", "head"),
    "head_top": ("head",),
}
MPII_TO_POINT = {
    "r_ankle": "right_ankle", "r_knee": "right_knee", "r_hip": "right_hip", "l_hip": "left_hip",
    "l_knee": "left_knee", "l_ankle": "left_ankle", "pelvis": "pelvis", "thorax": "thorax",
    "upper_neck": "upper_neck", "head_top": "head_top", "r_wrist": "right_wrist",
    "r_elbow": "right_elbow", "r_shoulder": "right_shoulder", "l_shoulder": "left_shoulder",
    "l_elbow": "left_elbow", "l_wrist": "left_wrist",
}
SKIN_TONES = ((224, 190, 160), (198, 150, 110), (160, 110, 75), (110, 75, 50), (240, 210, 185))


def rotate(v: np.ndarray, deg: float) -> np.ndarray:
    r = math.radians(deg)
    c, s = math.cos(r), math.sin(r)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


@dataclass
class Figure:
    """One posed figure: named points (pixels), sizes, colours and draw order."""

    points: dict[str, np.ndarray]
    height: float
    head_radius: float
    thickness: dict[str, float]
    skin: tuple[int, int, int]
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    arms_in_front: tuple[bool, bool]  # (left, right)

    @staticmethod
    def sample(rng: np.random.Generator, pelvis: np.ndarray, height: float) -> "Figure":
        """A random pose with its pelvis at ``pelvis`` and about ``height`` px tall."""
        h = height
        lean = rng.normal(0, 10)
        up = rotate(np.array([0.0, -1.0]), lean)  # pelvis → thorax
        left = np.array([-up[1], up[0]])  # person's left = image right for a frontal figure
        down = -up
        width = rng.uniform(0.65, 1.0)  # body turned away from the camera narrows it
        p: dict[str, np.ndarray] = {"pelvis": pelvis.astype(np.float64)}
        p["thorax"] = pelvis + up * 0.30 * h
        p["upper_neck"] = p["thorax"] + up * 0.06 * h
        head_up = rotate(up, rng.normal(0, 12))
        head_left = np.array([-head_up[1], head_up[0]])
        r = 0.075 * h
        center = p["upper_neck"] + head_up * r
        p["head_center"] = center
        p["head_top"] = center + head_up * r
        turn = rng.uniform(-1, 1) * (1.0 - width)  # face turns with the body
        p["nose"] = center - head_up * 0.15 * r + head_left * turn * 1.2 * r
        for side, sign in (("left", 1), ("right", -1)):
            p[f"{side}_eye"] = center + head_up * 0.22 * r + head_left * (sign * 0.38 * r + turn * 0.7 * r)
            p[f"{side}_ear"] = center + head_left * sign * 0.98 * r * (1 - 0.3 * sign * turn)
            p[f"{side}_shoulder"] = p["thorax"] + left * sign * 0.14 * h * width
            p[f"{side}_hip"] = pelvis + left * sign * 0.10 * h * width
            # arms: angle from "down", positive = away from the body
            a = rng.uniform(-35, 165)
            bend = rng.uniform(0, 140) * rng.choice([-1, 1])
            u = math.cos(math.radians(a)) * down + math.sin(math.radians(a)) * sign * left
            p[f"{side}_elbow"] = p[f"{side}_shoulder"] + u * 0.17 * h
            a2 = a + bend
            f = math.cos(math.radians(a2)) * down + math.sin(math.radians(a2)) * sign * left
            p[f"{side}_wrist"] = p[f"{side}_elbow"] + f * 0.15 * h
            # legs
            b = rng.uniform(-10, 40) if rng.random() < 0.9 else rng.uniform(40, 90)
            knee = rng.uniform(0, 110) * rng.choice([-1, 1])
            t = math.cos(math.radians(b)) * down + math.sin(math.radians(b)) * sign * left
            p[f"{side}_knee"] = p[f"{side}_hip"] + t * 0.245 * h
            b2 = b + knee
            s = math.cos(math.radians(b2)) * down + math.sin(math.radians(b2)) * sign * left
            p[f"{side}_ankle"] = p[f"{side}_knee"] + s * 0.235 * h
        thickness = {"uarm": 0.09 * h, "farm": 0.075 * h, "thigh": 0.125 * h, "shin": 0.095 * h,
                     "neck": 0.07 * h}
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
        shirt = tuple(int(c) for c in rng.integers(30, 256, 3))
        pants = tuple(int(c) for c in rng.integers(20, 200, 3))
        return Figure(p, h, r, thickness, skin, shirt, pants,
                      (bool(rng.random() < 0.7), bool(rng.random() < 0.7)))
