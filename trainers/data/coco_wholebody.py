"""COCO-WholeBody (Jin et al., "Whole-Body Human Pose Estimation in the Wild", ECCV 2020;
https://github.com/jin-s13/COCO-WholeBody): COCO's images with 133 keypoints per person,

    ROOT/annotations/coco_wholebody_{train,val}_v1.0.json
    ROOT/{train2017,val2017}/*.jpg          (or ROOT/images/{train2017,val2017}/, as for COCO)

Each annotation keeps COCO's 17 body keypoints in ``keypoints`` and adds ``foot_kpts`` (6),
``face_kpts`` (68), ``lefthand_kpts`` and ``righthand_kpts`` (21 each); the network predicts the
133 in that order (:data:`search_space.joints.COCO_WHOLEBODY`). Results are written with the
same separate fields and scored by xtcocotools per part and for the whole body, with the
official sigmas (:func:`trainers.evaluation.xtcoco.evaluate_wholebody`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from search_space.errors import UserInputError
from search_space.joints import WHOLEBODY_PARTS
from trainers.data.coco import CocoKeypoints
from trainers.evaluation.coco import is_number, load_coco_annotations
from trainers.evaluation.xtcoco import WHOLEBODY_FIELDS, evaluate_wholebody

__all__ = ["CocoWholeBodyKeypoints", "split_wholebody", "check_part_fields",
           "check_wholebody_annotations"]


def split_wholebody(keypoints: list[float]) -> dict[str, list[float]]:
    """133·3 values in the network's order → the annotation's separate fields."""
    return {WHOLEBODY_FIELDS[part]: keypoints[3 * start:3 * (start + count)]
            for part, start, count in WHOLEBODY_PARTS}


def check_part_fields(entry: dict[str, Any], source: str, where: str, hint: str = "") -> None:
    """``entry`` (an annotation or a result) holds each part beyond the body as its field of
    3 × count finite numbers (``foot_kpts`` 18, ``face_kpts`` 204, each hand 63).

    Raises:
        UserInputError: naming ``source``, ``where`` and the first field that is not so.
    """
    for part, _, count in WHOLEBODY_PARTS[1:]:
        field = WHOLEBODY_FIELDS[part]
        values = entry.get(field)
        if not (isinstance(values, list) and len(values) == 3 * count
                and all(is_number(v) for v in values)):
            raise UserInputError(source, f"expected '{field}' with {3 * count} numbers ({count} × "
                                 f"x, y, v){hint}", field=where)


def check_wholebody_annotations(data: dict[str, Any], source: str) -> None:
    """:func:`check_part_fields` of every person annotation of ``data`` (read from ``source``)."""
    for ann in data["annotations"]:
        if ann["category_id"] == 1:
            check_part_fields(ann, source, f"annotation id={ann['id']}")


class CocoWholeBodyKeypoints(CocoKeypoints):
    """COCO-WholeBody: 133 keypoints from five annotation fields."""

    title = "COCO-WholeBody"

    @classmethod
    def annotation_files(cls, root: Path, image_set: str) -> list[Path]:
        return [root / "annotations" / f"coco_wholebody_{image_set.replace('2017', '')}_v1.0.json"]

    def load_annotations(self, path: Path) -> dict[str, Any]:
        data = load_coco_annotations(path, WHOLEBODY_PARTS[0][2],
                                     strict=self.cfg.dataset.strict_annotations)
        check_wholebody_annotations(data, str(path))
        return data

    def person_keypoints(self, ann: dict[str, Any]) -> np.ndarray:
        flat = [v for part, _, _ in WHOLEBODY_PARTS for v in ann[WHOLEBODY_FIELDS[part]]]
        return np.asarray(flat, dtype=np.float32).reshape(self.spec.num_joints, 3)

    def result_entry(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**result, **split_wholebody(result["keypoints"])}

    def score_results(self, results: list[dict[str, Any]]) -> dict[str, float]:
        return evaluate_wholebody(self.gt, results, self.spec.sigmas)
