"""A learnable synthetic pose dataset, written in the official COCO or MPII layout.

    python -m trainers.data.synthetic --format coco|mpii --out DIR [--train N --val M --seed S]

Each image shows 1-3 articulated, human-like figures facing the camera (so a person's left is on
the image right, as in frontal photos) over a cluttered background: limbs drawn as shaded tubes,
torso, neck, head with eyes, nose and ears, random joint angles, scale, lean and position, some
figures cut by the image border. Joints hidden by another body part or figure are labelled
``v=1``; joints outside the image are unlabelled (``v=0``, x=y=0), as COCO does. Boxes and areas
come from the rendered masks; COCO gets a detection-results file (jittered boxes, misses and
false positives with scores) and MPII gets ``gt_valid.mat``. The output is a deterministic
function of the seed.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from trainers.atomic import atomic_path, write_json_atomic
from search_space.joints import COCO, MPII
from trainers.errors import UserInputError, cli_errors
from trainers.evaluation.mpii import MPII_JOINT_CODES
from trainers.report import format_table

__all__ = ["Figure", "render_image", "write_coco", "write_mpii", "main"]

logger = logging.getLogger(__name__)

# Named skeleton points → body parts that own them (a joint drawn under any other part is
# occluded). Part ids are small ints painted into the owner map.
_PARTS = ("torso", "head", "neck", "l_uarm", "l_farm", "r_uarm", "r_farm", "l_thigh", "l_shin",
          "r_thigh", "r_shin", "l_ear", "r_ear")
_PART_ID = {name: i + 1 for i, name in enumerate(_PARTS)}
_OWNERS = {
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
_MPII_TO_POINT = {
    "r_ankle": "right_ankle", "r_knee": "right_knee", "r_hip": "right_hip", "l_hip": "left_hip",
    "l_knee": "left_knee", "l_ankle": "left_ankle", "pelvis": "pelvis", "thorax": "thorax",
    "upper_neck": "upper_neck", "head_top": "head_top", "r_wrist": "right_wrist",
    "r_elbow": "right_elbow", "r_shoulder": "right_shoulder", "l_shoulder": "left_shoulder",
    "l_elbow": "left_elbow", "l_wrist": "left_wrist",
}
_SKIN = ((224, 190, 160), (198, 150, 110), (160, 110, 75), (110, 75, 50), (240, 210, 185))


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
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
        up = _rot(np.array([0.0, -1.0]), lean)  # pelvis → thorax
        left = np.array([-up[1], up[0]])  # person's left = image right for a frontal figure
        down = -up
        width = rng.uniform(0.65, 1.0)  # body turned away from the camera narrows it
        p: dict[str, np.ndarray] = {"pelvis": pelvis.astype(np.float64)}
        p["thorax"] = pelvis + up * 0.30 * h
        p["upper_neck"] = p["thorax"] + up * 0.06 * h
        head_up = _rot(up, rng.normal(0, 12))
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
        skin = _SKIN[rng.integers(len(_SKIN))]
        shirt = tuple(int(c) for c in rng.integers(30, 256, 3))
        pants = tuple(int(c) for c in rng.integers(20, 200, 3))
        return Figure(p, h, r, thickness, skin, shirt, pants,
                      (bool(rng.random() < 0.7), bool(rng.random() < 0.7)))


class _Canvas:
    """An image plus an owner map (which figure part is on top at each pixel) and masks."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.owner = np.zeros(image.shape[:2], np.int32)
        self.masks: list[np.ndarray] = []

    def begin_figure(self) -> None:
        self.masks.append(np.zeros(self.image.shape[:2], np.uint8))

    def _label(self, part: str) -> int:
        return len(self.masks) * 64 + _PART_ID[part]

    def limb(self, a: np.ndarray, b: np.ndarray, thickness: float, color, part: str) -> None:
        t = max(2, int(round(thickness)))
        pa, pb = tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b)
        dark = tuple(int(c * 0.6) for c in color)
        light = tuple(int(min(255, c * 1.15 + 20)) for c in color)
        cv2.line(self.image, pa, pb, dark, t, cv2.LINE_AA)
        cv2.line(self.image, pa, pb, color, max(1, int(t * 0.7)), cv2.LINE_AA)
        off = np.array([1.0, -1.0]) * t * 0.15
        cv2.line(self.image, tuple(int(round(v)) for v in a + off),
                 tuple(int(round(v)) for v in b + off), light, max(1, int(t * 0.25)), cv2.LINE_AA)
        cv2.line(self.owner, pa, pb, self._label(part), t)
        cv2.line(self.masks[-1], pa, pb, 1, t)

    def polygon(self, pts: list[np.ndarray], color, part: str) -> None:
        poly = np.round(np.array(pts)).astype(np.int32)
        cv2.fillPoly(self.image, [poly], tuple(int(c * 0.6) for c in color), cv2.LINE_AA)
        inner = poly.mean(axis=0) + (poly - poly.mean(axis=0)) * 0.85
        cv2.fillPoly(self.image, [np.round(inner).astype(np.int32)], color, cv2.LINE_AA)
        cv2.fillPoly(self.owner, [poly], self._label(part))
        cv2.fillPoly(self.masks[-1], [poly], 1)

    def disc(self, c: np.ndarray, radius: float, color, part: str | None, outline: bool = True) -> None:
        rr = max(1, int(round(radius)))
        pc = tuple(int(round(v)) for v in c)
        if outline:
            cv2.circle(self.image, pc, rr, tuple(int(v * 0.6) for v in color), -1, cv2.LINE_AA)
            cv2.circle(self.image, pc, max(1, int(rr * 0.85)), color, -1, cv2.LINE_AA)
        else:
            cv2.circle(self.image, pc, rr, color, -1, cv2.LINE_AA)
        if part is not None:
            cv2.circle(self.owner, pc, rr, self._label(part), -1)
            cv2.circle(self.masks[-1], pc, rr, 1, -1)


def _draw_arm(cv: _Canvas, fig: Figure, side: str) -> None:
    p, s = fig.points, side[0]
    cv.limb(p[f"{side}_shoulder"], p[f"{side}_elbow"], fig.thickness["uarm"], fig.shirt, f"{s}_uarm")
    cv.limb(p[f"{side}_elbow"], p[f"{side}_wrist"], fig.thickness["farm"], fig.skin, f"{s}_farm")
    cv.disc(p[f"{side}_elbow"], fig.thickness["farm"] * 0.55, fig.skin, f"{s}_farm")
    cv.disc(p[f"{side}_wrist"], fig.thickness["farm"] * 0.75, fig.skin, f"{s}_farm")


def _draw_figure(cv: _Canvas, fig: Figure) -> None:
    p = fig.points
    cv.begin_figure()
    for side, front in zip(("left", "right"), fig.arms_in_front):
        if not front:
            _draw_arm(cv, fig, side)
    for side in ("left", "right"):
        s = side[0]
        cv.limb(p[f"{side}_hip"], p[f"{side}_knee"], fig.thickness["thigh"], fig.pants, f"{s}_thigh")
        cv.limb(p[f"{side}_knee"], p[f"{side}_ankle"], fig.thickness["shin"], fig.pants, f"{s}_shin")
        cv.disc(p[f"{side}_knee"], fig.thickness["shin"] * 0.55, fig.pants, f"{s}_shin")
        cv.disc(p[f"{side}_ankle"], fig.thickness["shin"] * 0.7, (40, 40, 40), f"{s}_shin")
    cv.polygon([p["left_shoulder"], p["right_shoulder"], p["right_hip"], p["left_hip"]],
               fig.shirt, "torso")
    cv.limb(p["thorax"], p["upper_neck"], fig.thickness["neck"], fig.skin, "neck")
    r = fig.head_radius
    for side in ("left", "right"):
        cv.disc(p[f"{side}_ear"], r * 0.3, fig.skin, f"{side[0]}_ear")
    cv.disc(p["head_center"], r, fig.skin, "head")
    for side in ("left", "right"):
        cv.disc(p[f"{side}_eye"], max(1.0, r * 0.13), (25, 25, 25), None, outline=False)
    cv.disc(p["nose"], max(1.0, r * 0.12), tuple(int(c * 0.7) for c in fig.skin), None, outline=False)
    for side, front in zip(("left", "right"), fig.arms_in_front):
        if front:
            _draw_arm(cv, fig, side)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx * math.cos(angle) + yy * math.sin(angle))
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    image = (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(np.uint8)
    image = np.ascontiguousarray(image)
    for _ in range(int(rng.integers(3, 9))):
        color = tuple(int(v) for v in (0.5 * rng.integers(0, 256, 3) + 0.5 * c0))
        kind = rng.integers(3)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(10, 80)), y + int(rng.integers(10, 80))),
                          color, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), int(rng.integers(5, 40)), color, -1, cv2.LINE_AA)
        else:
            cv2.line(image, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))),
                     color, int(rng.integers(1, 4)), cv2.LINE_AA)
    return image


@dataclass
class RenderedPerson:
    """A figure as annotated: named points with visibility (2 seen, 1 hidden, 0 outside)."""

    points: dict[str, np.ndarray]
    visibility: dict[str, int]
    bbox: list[float]
    area: float
    head_box: tuple[np.ndarray, np.ndarray]


def render_image(rng: np.random.Generator, max_persons: int = 3
                 ) -> tuple[np.ndarray, list[RenderedPerson]]:
    """Draw one image (BGR uint8) and return it with its annotated persons."""
    width, height = int(rng.integers(224, 321)), int(rng.integers(224, 321))
    canvas = _Canvas(_background(rng, width, height))
    n = int(rng.choice(np.arange(1, max_persons + 1), p=_person_count_probs(max_persons)))
    figures = []
    for _ in range(n):
        fig_h = height * rng.uniform(0.6, 0.95) / (1 + 0.2 * (n - 1))
        px = rng.uniform(0.1, 0.9) * width
        py = rng.uniform(0.45, 0.65) * height + rng.normal(0, 0.05) * height
        fig = Figure.sample(rng, np.array([px, py]), fig_h)
        _draw_figure(canvas, fig)
        figures.append(fig)
    noise = rng.normal(0, 3.0, canvas.image.shape)
    image = np.clip(canvas.image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    persons = []
    for i, fig in enumerate(figures):
        label_base = (i + 1) * 64
        points, visibility = {}, {}
        for name, owners in _OWNERS.items():
            x, y = fig.points[name]
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= x < width and 0 <= y < height):
                visibility[name] = 0
                points[name] = np.zeros(2)
                continue
            points[name] = fig.points[name].copy()
            top = canvas.owner[min(yi, height - 1), min(xi, width - 1)]
            visibility[name] = 2 if top in {label_base + _PART_ID[o] for o in owners} else 1
        own = (canvas.owner >= label_base) & (canvas.owner < label_base + 64)
        ys, xs = np.nonzero(canvas.masks[i])
        bbox = ([float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                 float(ys.max() - ys.min() + 1)] if len(xs) else [0.0, 0.0, 0.0, 0.0])
        c, r = fig.points["head_center"], fig.head_radius
        persons.append(RenderedPerson(points, visibility, bbox, float(own.sum()),
                                      (c - r, c + r)))
    return image, persons


def _person_count_probs(max_persons: int) -> np.ndarray:
    w = np.array([0.5, 0.3, 0.2, 0.1, 0.1][:max_persons])
    return w / w.sum()


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    with atomic_path(path, suffix=".jpg") as tmp:
        tmp.write_bytes(data.tobytes())


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, {"train": 1, "val": 2}[split], index])


# ------------------------------------------------------------------------------------ COCO
def write_coco(out: str | Path, num_train: int, num_val: int, seed: int = 0) -> dict[str, int]:
    """Write a synthetic COCO keypoints dataset under ``out``; return counts."""
    out = Path(out)
    counts: dict[str, int] = {}
    for split, image_set, n in (("train", "train2017", num_train), ("val", "val2017", num_val)):
        images, annotations, dets = [], [], []
        det_rng = np.random.default_rng([seed, 3])
        id_base = 0 if split == "train" else 1_000_000
        ann_id = id_base
        for index in range(n):
            rng = _image_rng(seed, split, index)
            image, persons = render_image(rng)
            image_id = id_base + index + 1
            file_name = f"{image_id:012d}.jpg"
            _write_jpeg(out / "images" / image_set / file_name, image)
            images.append({"id": image_id, "file_name": file_name, "width": image.shape[1],
                           "height": image.shape[0]})
            for person in persons:
                kpts = []
                for name in COCO.names:
                    x, y = person.points[name]
                    v = person.visibility[name]
                    kpts += [round(float(x), 2), round(float(y), 2), v] if v else [0, 0, 0]
                ann_id += 1
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                    "bbox": [round(v, 2) for v in person.bbox], "area": person.area,
                    "keypoints": kpts, "num_keypoints": int(sum(1 for v in kpts[2::3] if v > 0)),
                    "segmentation": [],
                })
                if split == "val" and person.area > 0 and det_rng.random() > 0.05:
                    x, y, w, h = person.bbox
                    jitter = det_rng.normal(0, 0.05, 4) * np.array([w, h, w, h])
                    box = [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]
                    dets.append({"image_id": image_id, "category_id": 1,
                                 "bbox": [round(float(v), 2) for v in box],
                                 "score": round(float(np.clip(det_rng.normal(0.9, 0.08), 0.3, 1.0)), 4)})
            if split == "val" and det_rng.random() < 0.3:
                w, h = det_rng.uniform(20, 80, 2)
                dets.append({"image_id": image_id, "category_id": 1,
                             "bbox": [round(float(det_rng.uniform(0, image.shape[1] - w)), 2),
                                      round(float(det_rng.uniform(0, image.shape[0] - h)), 2),
                                      round(float(w), 2), round(float(h), 2)],
                             "score": round(float(det_rng.uniform(0.05, 0.5)), 4)})
        data = {
            "info": {"description": "posenas synthetic COCO-format keypoints", "seed": seed},
            "licenses": [],
            "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(COCO.names),
                            "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton]}],
        }
        write_json_atomic(out / "annotations" / f"person_keypoints_{image_set}.json", data)
        if split == "val":
            write_json_atomic(out / "person_detection_results" /
                              "COCO_val2017_detections_AP_H_56_person.json", dets)
            counts["val_detections"] = len(dets)
        counts[f"{split}_images"] = len(images)
        counts[f"{split}_persons"] = len(annotations)
    return counts


# ------------------------------------------------------------------------------------ MPII
def write_mpii(out: str | Path, num_train: int, num_val: int, seed: int = 0) -> dict[str, int]:
    """Write a synthetic MPII dataset (HRNet's JSON + official gt_valid.mat) under ``out``."""
    out = Path(out)
    counts: dict[str, int] = {}
    for split, image_set, n in (("train", "train", num_train), ("val", "valid", num_val)):
        entries, pos, missing, heads = [], [], [], []
        for index in range(n):
            rng = _image_rng(seed, split, index)
            image, persons = render_image(rng, max_persons=2)
            name = f"{split}_{index:06d}.jpg"
            _write_jpeg(out / "images" / name, image)
            for person in persons:
                joints = np.zeros((16, 2))
                vis = np.zeros(16, dtype=int)
                for j, mpii_name in enumerate(MPII.names):
                    point = _MPII_TO_POINT[mpii_name]
                    if person.visibility[point] > 0:
                        joints[j] = person.points[point] + 1.0  # MATLAB 1-based
                        vis[j] = 1
                if vis.sum() < 4 or person.area == 0:
                    continue  # MPII annotates people whose body is mostly in view
                joints = np.round(joints, 2)  # the JSON and gt_valid.mat hold the same values
                x, y, w, h = person.bbox
                scale = max(h, w) / 200.0
                center = [x + w / 2 + 1.0, y + h / 2 + 1.0 - 15 * scale]
                entries.append({"image": name, "center": [round(c, 2) for c in center],
                                "scale": round(scale, 4),
                                "joints": joints.tolist(),
                                "joints_vis": vis.tolist()})
                pos.append(joints)
                missing.append(1 - vis)
                heads.append(np.stack(person.head_box) + 1.0)
        write_json_atomic(out / "annot" / f"{image_set}.json", entries)
        if split == "val":
            _write_gt_mat(out / "annot" / "gt_valid.mat", pos, missing, heads)
        counts[f"{split}_images"] = n
        counts[f"{split}_persons"] = len(entries)
    return counts


def _write_gt_mat(path: Path, pos: list, missing: list, heads: list) -> None:
    names = np.empty((1, 16), dtype=object)
    for i, code in enumerate(MPII_JOINT_CODES):
        names[0, i] = code
    mat = {
        "dataset_joints": names,
        "jnt_missing": np.stack(missing, axis=1).astype(np.float64),  # (16, N)
        "pos_gt_src": np.stack(pos, axis=2).astype(np.float64),  # (16, 2, N)
        "headboxes_src": np.stack(heads, axis=2).astype(np.float64),  # (2, 2, N)
    }
    with atomic_path(path, suffix=".mat") as tmp:
        scipy.io.savemat(str(tmp), mat)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.data.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=["coco", "mpii"], required=True)
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--train", type=int, default=400, help="training images (default 400)")
    p.add_argument("--val", type=int, default=100, help="validation images (default 100)")
    p.add_argument("--seed", type=int, default=0)
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.train < 1 or args.val < 1:
        raise UserInputError("argument", "--train and --val must be at least 1")
    writer = write_coco if args.format == "coco" else write_mpii
    counts = writer(args.out, args.train, args.val, args.seed)
    print(format_table(["what", "count"], sorted(counts.items())))
    print(f"wrote a synthetic {args.format.upper()} dataset to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
