"""AI Challenger human keypoints (Wu et al., "AI Challenger: A Large-scale Dataset for Going
Deeper in Image Understanding", arXiv 1711.06475), top-down, as the release unzips:

    ROOT/ai_challenger_keypoint_train_20170902/keypoint_train_annotations_20170909.json
    ROOT/ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902/*.jpg
    ROOT/ai_challenger_keypoint_validation_20170911/keypoint_validation_annotations_20170911.json
    ROOT/ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911/*.jpg

The release's own JSON (per image ``human_annotations`` boxes [x1, y1, x2, y2] and
``keypoint_annotations`` [x, y, v]·14, v = 1 visible, 2 occluded, 3 unlabelled) is converted in
memory to COCO's form (v 2 / 1 / 0; image sizes read from the image headers, which takes a
while on the 210k training images — mmpose's converted ``ROOT/annotations/aic_{train,val}.json``
is read directly when present). 14 joints (:data:`search_space.joints.AIC`); evaluated with
xtcocotools' COCOeval, AI Challenger's sigmas and box-derived areas (``use_area=False``, as
mmpose evaluates it).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from search_space.errors import UserInputError
from trainers.data.coco import CocoKeypoints
from trainers.evaluation.coco import load_coco_annotations, load_json
from trainers.evaluation.xtcoco import evaluate_xtcoco

__all__ = ["AicKeypoints", "aic_to_coco"]

logger = logging.getLogger(__name__)

_RELEASE = {"train": ("ai_challenger_keypoint_train_20170902", "keypoint_train_annotations_20170909",
                      "keypoint_train_images_20170902"),
            "val": ("ai_challenger_keypoint_validation_20170911",
                    "keypoint_validation_annotations_20170911", "keypoint_validation_images_20170911")}
#: the release's visibility codes → COCO's
_VISIBILITY = {1: 2, 2: 1, 3: 0}


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def aic_to_coco(entries: Any, image_dir: Path, source: str) -> dict[str, Any]:
    """AI Challenger's own annotations → COCO keypoint annotations (images without a readable
    file are skipped and counted)."""
    if not isinstance(entries, list):
        raise UserInputError(source, "expected AI Challenger's JSON list of {image_id, "
                             "human_annotations, keypoint_annotations}")
    images, annotations, unreadable = [], [], 0
    for i, entry in enumerate(entries):
        where = f"[{i}]"
        if not isinstance(entry, dict) or not all(
                k in entry for k in ("image_id", "human_annotations", "keypoint_annotations")):
            raise UserInputError(source, "needs image_id, human_annotations and "
                                 "keypoint_annotations", field=where)
        size = _image_size(image_dir / f"{entry['image_id']}.jpg")
        if size is None:
            unreadable += 1
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": f"{entry['image_id']}.jpg",
                       "width": size[0], "height": size[1]})
        for human, box in entry["human_annotations"].items():
            kpts = entry["keypoint_annotations"].get(human)
            if not (isinstance(box, list) and len(box) == 4 and isinstance(kpts, list)
                    and len(kpts) == 42):
                raise UserInputError(source, "a box is [x1, y1, x2, y2] and 14 × (x, y, v) "
                                     "keypoints", field=f"{where}.{human}")
            coco_kpts: list[float] = []
            for x, y, v in zip(kpts[0::3], kpts[1::3], kpts[2::3]):
                v = _VISIBILITY.get(v)
                if v is None:
                    raise UserInputError(source, "visibility must be 1, 2 or 3",
                                         field=f"{where}.{human}")
                coco_kpts += [x, y, v] if v else [0, 0, 0]
            x1, y1, x2, y2 = box
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "iscrowd": 0, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                "keypoints": coco_kpts, "num_keypoints": sum(1 for v in coco_kpts[2::3] if v)})
    if unreadable:
        logger.warning("%s: %d images missing or unreadable in %s: skipped", source, unreadable,
                       image_dir)
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}]}


class AicKeypoints(CocoKeypoints):
    """AI Challenger keypoints: the release's JSON, or mmpose's COCO conversion."""

    default_sets = ("train", "val")
    title = "AI Challenger"

    @classmethod
    def annotation_files(cls, root: Path, image_set: str) -> list[Path]:
        files = [root / "annotations" / f"aic_{image_set}.json"]
        if image_set in _RELEASE:
            folder, ann, _ = _RELEASE[image_set]
            files.insert(0, root / folder / f"{ann}.json")
        return files

    @classmethod
    def image_folders(cls, root: Path, image_set: str) -> list[Path]:
        if image_set in _RELEASE:
            folder, _, images = _RELEASE[image_set]
            return [root / folder / images]
        return [root / "images" / image_set]

    def load_annotations(self, path: Path) -> dict[str, Any]:
        data = load_json(path, "annotation file")
        if isinstance(data, list):
            data = aic_to_coco(data, self.image_folders(Path(self.cfg.dataset.root),
                                                        self.image_set)[0], str(path))
        return load_coco_annotations(path, self.spec.num_joints,
                                     strict=self.cfg.dataset.strict_annotations, data=data)

    def score_results(self, results: list[dict[str, Any]]) -> dict[str, float]:
        return evaluate_xtcoco(self.gt, results, self.spec.sigmas, use_area=False)
