"""Synthetic datasets in the official layouts of the COCO-format keypoint datasets beside COCO:
CrowdPose, OCHuman, AI Challenger (its own raw JSON), COCO-WholeBody and a custom keypoint
set (COCO format, names and skeleton in ``categories``).

The figures are the ones :func:`~trainers.data.synthetic.writers.write_coco` draws; each layout
names the figure's points its joints come from. COCO-WholeBody's feet, face and hands are not
drawn: their points are placed around the ankles, the head and the wrists (with the visibility
of the joint they hang from), enough to exercise its reader and evaluator, not to learn from.
CrowdPose's images get their crowd index (CrowdPose's definition: per person, the labelled
joints of others inside its box over its own, averaged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from search_space.joints import AIC, COCO, COCO_WHOLEBODY, CROWDPOSE, KeypointSpec
from trainers.atomic import write_json_atomic
from trainers.data.synthetic.render import RenderedPerson, render_image
from trainers.data.synthetic.writers import image_rng, write_jpeg

__all__ = ["CUSTOM_POINTS", "CUSTOM_SKELETON", "COCO_FAMILY_FORMATS", "write_coco_family"]

#: the custom layout: 12 points of the figure, in an order and with names COCO does not use
CUSTOM_POINTS = ("head_top", "upper_neck", "pelvis", "left_elbow", "right_elbow", "left_wrist",
                 "right_wrist", "left_knee", "right_knee", "left_ankle", "right_ankle", "thorax")
CUSTOM_SKELETON = (("head_top", "upper_neck"), ("upper_neck", "thorax"), ("thorax", "pelvis"),
                   ("thorax", "left_elbow"), ("left_elbow", "left_wrist"),
                   ("thorax", "right_elbow"), ("right_elbow", "right_wrist"),
                   ("pelvis", "left_knee"), ("left_knee", "left_ankle"),
                   ("pelvis", "right_knee"), ("right_knee", "right_ankle"))
_POINT_OF = {"top_head": "head_top", "neck": "upper_neck"}


def _joints(person: RenderedPerson, points: tuple[str, ...]) -> list[float]:
    out: list[float] = []
    for name in points:
        point = _POINT_OF.get(name, name)
        v = person.visibility[point]
        x, y = person.points[point]
        out += [round(float(x), 2), round(float(y), 2), v] if v else [0, 0, 0]
    return out


def _around(person: RenderedPerson, anchor: str, offsets: np.ndarray, size: tuple[int, int]
            ) -> list[float]:
    """Points at ``offsets`` (M, 2, pixels) from the joint ``anchor``, with its visibility
    (0 for points outside the image)."""
    v = person.visibility[anchor]
    out: list[float] = []
    for dx, dy in offsets:
        x, y = person.points[anchor][0] + dx, person.points[anchor][1] + dy
        inside = v and 0 <= x < size[0] and 0 <= y < size[1]
        out += [round(float(x), 2), round(float(y), 2), v] if inside else [0, 0, 0]
    return out


def _wholebody_fields(person: RenderedPerson, size: tuple[int, int]) -> dict[str, Any]:
    (x0, y0), (x1, y1) = person.head_box
    r = (x1 - x0) / 2
    pts = person.points
    face = []  # jaw (0-16) from the person's right (image left), brows, nose, eyes, mouth
    for i in range(17):
        a = math.pi * (1 - i / 16)
        face.append((0.8 * r * math.cos(a), 0.1 * r + 0.75 * r * math.sin(a) * 0.9))
    face += [(-0.6 * r + 0.1 * r * i, -0.4 * r) for i in range(5)]
    face += [(0.2 * r + 0.1 * r * i, -0.4 * r) for i in range(5)]
    face += [(0.0, -0.25 * r + 0.1 * r * i) for i in range(4)]
    face += [(-0.2 * r + 0.1 * r * i, 0.2 * r) for i in range(5)]
    for cx in (-0.35 * r, 0.35 * r):
        face += [(cx + 0.12 * r * math.cos(a), -0.2 * r + 0.06 * r * math.sin(a))
                 for a in np.linspace(math.pi, -math.pi, 6, endpoint=False)]
    face += [(0.3 * r * math.cos(a), 0.45 * r + 0.1 * r * math.sin(a))
             for a in np.linspace(math.pi, -math.pi, 12, endpoint=False)]
    face += [(0.18 * r * math.cos(a), 0.45 * r + 0.05 * r * math.sin(a))
             for a in np.linspace(math.pi, -math.pi, 8, endpoint=False)]
    head = (x0 + x1) / 2, (y0 + y1) / 2
    face_offsets = np.array(face) + np.array(head) - pts["nose"]
    fields: dict[str, Any] = {"face_kpts": _around(person, "nose", face_offsets, size)}
    feet: list[float] = []
    for side in ("left", "right"):
        shin = pts[f"{side}_ankle"] - pts[f"{side}_knee"]
        d = shin / max(1e-6, float(np.linalg.norm(shin))) * 0.25 * r
        side_d = np.array([-d[1], d[0]])
        feet += _around(person, f"{side}_ankle", np.array([d + side_d, d - side_d, -0.5 * d]), size)
        arm = pts[f"{side}_wrist"] - pts[f"{side}_elbow"]
        u = arm / max(1e-6, float(np.linalg.norm(arm))) * 0.15 * r
        w = np.array([-u[1], u[0]])
        hand = [u * 0.5] + [u * (1 + k) + w * (f - 2) * (0.3 + 0.1 * k)
                            for f in range(5) for k in range(4)]
        fields[f"{side}hand_kpts"] = _around(person, f"{side}_wrist", np.array(hand), size)
    fields["foot_kpts"] = feet
    for part in ("face", "lefthand", "righthand"):
        valid = any(v > 0 for v in fields[f"{part}_kpts"][2::3])
        fields[f"{part}_valid"] = bool(valid)
        fields[f"{part}_box"] = [0.0, 0.0, 0.0, 0.0]
    fields["foot_valid"] = any(v > 0 for v in feet[2::3])
    return fields


def _crowd_index(annotations: list[dict[str, Any]]) -> float:
    """CrowdPose's crowd index of one image: mean over persons of (others' labelled joints inside
    its box) / (its own labelled joints)."""
    ratios = []
    for a in annotations:
        own = [(x, y) for x, y, v in zip(*[iter(a["keypoints"])] * 3) if v > 0]
        if not own:
            continue
        x, y, w, h = a["bbox"]
        others = sum(1 for b in annotations if b is not a
                     for px, py, v in zip(*[iter(b["keypoints"])] * 3)
                     if v > 0 and x <= px <= x + w and y <= py <= y + h)
        ratios.append(others / len(own))
    return round(float(np.mean(ratios)), 4) if ratios else 0.0


@dataclass(frozen=True)
class _Layout:
    """Where a format puts its files and what a person annotation holds."""

    sets: tuple[str, str]
    annotation: Callable[[str], str]  # image set → annotation file (relative)
    images: Callable[[str], str]  # image set → image folder (relative)
    names: tuple[str, ...]  # category keypoint names
    skeleton: tuple[tuple[int, int], ...]  # 0-based
    joints: Callable[[RenderedPerson, tuple[int, int]], dict[str, Any]]
    crowd_index: bool = False
    raw_aic: bool = False


def _spec_layout(spec: KeypointSpec, sets, annotation, images, **kw) -> _Layout:
    return _Layout(sets, annotation, images, spec.names, spec.skeleton,
                   lambda p, size: {"keypoints": _joints(p, spec.names)}, **kw)


_CUSTOM_INDEX = {n: i for i, n in enumerate(CUSTOM_POINTS)}

#: format name → layout
COCO_FAMILY_FORMATS: dict[str, _Layout] = {
    "crowdpose": _spec_layout(CROWDPOSE, ("trainval", "test"), lambda s: f"json/crowdpose_{s}.json",
                              lambda s: "images", crowd_index=True),
    "ochuman": _spec_layout(COCO, ("val", "test"),
                            lambda s: f"ochuman_coco_format_{s}_range_0.00_1.00.json",
                            lambda s: "images"),
    "aic": _spec_layout(AIC, ("train", "val"),
                        lambda s: {"train": "ai_challenger_keypoint_train_20170902/"
                                            "keypoint_train_annotations_20170909.json",
                                   "val": "ai_challenger_keypoint_validation_20170911/"
                                          "keypoint_validation_annotations_20170911.json"}[s],
                        lambda s: {"train": "ai_challenger_keypoint_train_20170902/"
                                            "keypoint_train_images_20170902",
                                   "val": "ai_challenger_keypoint_validation_20170911/"
                                          "keypoint_validation_images_20170911"}[s],
                        raw_aic=True),
    "coco_wholebody": _Layout(("train2017", "val2017"),
                              lambda s: f"annotations/coco_wholebody_{s.replace('2017', '')}_v1.0.json",
                              lambda s: s, COCO_WHOLEBODY.names, COCO_WHOLEBODY.skeleton,
                              lambda p, size: {"keypoints": _joints(p, COCO.names),
                                               **_wholebody_fields(p, size)}),
    "custom": _Layout(("train2017", "val2017"), lambda s: f"annotations/person_keypoints_{s}.json",
                      lambda s: f"images/{s}", CUSTOM_POINTS,
                      tuple((_CUSTOM_INDEX[a], _CUSTOM_INDEX[b]) for a, b in CUSTOM_SKELETON),
                      lambda p, size: {"keypoints": _joints(p, CUSTOM_POINTS)}),
}


def _aic_raw(images: list[dict], annotations: list[dict]) -> list[dict[str, Any]]:
    """AI Challenger's own JSON: per image ``human_annotations`` boxes [x1, y1, x2, y2] and
    ``keypoint_annotations`` [x, y, v]·14 with v 1 visible, 2 occluded, 3 unlabelled."""
    by_image: dict[int, list[dict]] = {}
    for ann in annotations:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for img in images:
        humans, keypoints = {}, {}
        for k, ann in enumerate(by_image.get(img["id"], []), 1):
            x, y, w, h = ann["bbox"]
            humans[f"human{k}"] = [round(x), round(y), round(x + w), round(y + h)]
            flat = []
            for px, py, v in zip(*[iter(ann["keypoints"])] * 3):
                flat += [round(px), round(py), {2: 1, 1: 2, 0: 3}[v]]
            keypoints[f"human{k}"] = flat
        out.append({"image_id": Path(img["file_name"]).stem, "url": "",
                    "human_annotations": humans, "keypoint_annotations": keypoints})
    return out


def write_coco_family(fmt: str, out: str | Path, num_train: int, num_val: int,
                      seed: int = 0) -> dict[str, int]:
    """Write the synthetic dataset of format ``fmt`` (a :data:`COCO_FAMILY_FORMATS` key)."""
    layout = COCO_FAMILY_FORMATS[fmt]
    out = Path(out)
    counts: dict[str, int] = {}
    for split, image_set, n in (("train", layout.sets[0], num_train), ("val", layout.sets[1], num_val)):
        images, annotations = [], []
        id_base = 0 if split == "train" else 1_000_000
        ann_id = id_base
        for index in range(n):
            image, persons = render_image(image_rng(seed, split, index))
            image_id = id_base + index + 1
            file_name = f"{image_id:012d}.jpg"
            write_jpeg(out / layout.images(image_set) / file_name, image)
            size = (image.shape[1], image.shape[0])
            entry: dict[str, Any] = {"id": image_id, "file_name": file_name, "width": size[0],
                                     "height": size[1]}
            mine = []
            for person in persons:
                ann_id += 1
                fields = layout.joints(person, size)
                mine.append({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                             "bbox": [round(v, 2) for v in person.bbox], "area": person.area,
                             **fields, "num_keypoints": sum(1 for v in fields["keypoints"][2::3] if v > 0),
                             "segmentation": []})
            if layout.crowd_index:
                entry["crowdIndex"] = _crowd_index(mine)
            images.append(entry)
            annotations += mine
        path = out / layout.annotation(image_set)
        if layout.raw_aic:
            write_json_atomic(path, _aic_raw(images, annotations))
        else:
            write_json_atomic(path, {
                "info": {"description": f"posenas synthetic {fmt} keypoints", "seed": seed},
                "images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "person", "supercategory": "person",
                                "keypoints": list(layout.names),
                                "skeleton": [[a + 1, b + 1] for a, b in layout.skeleton]}]})
        counts[f"{split}_images"] = len(images)
        counts[f"{split}_persons"] = len(annotations)
    return counts
