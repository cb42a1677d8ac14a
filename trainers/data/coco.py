"""COCO person keypoints, top-down, in either layout people have:

    ROOT/annotations/person_keypoints_{train2017,val2017}.json
    ROOT/{train2017,val2017}/*.jpg           (COCO as it unzips)
      or ROOT/images/{train2017,val2017}/*.jpg  (HRNet's README layout)
    ROOT/person_detection_results/COCO_val2017_detections_AP_H_56_person.json

Crowd annotations (``iscrowd`` 1) are not people to learn from or to crop (as HRNet's reader):
they are skipped, and counted in the log. A root where none of the annotated images can be found
is an error naming the folders searched.

Training uses the ground-truth boxes; validation uses them too (``test.use_gt_bbox``) or the
detector's boxes (``--use_dt``), filtered by ``test.image_thre`` (score) and ``test.bbox_thre``
(minimum side, pixels). Evaluation applies HRNet's rescoring and OKS-NMS, writes the COCO results
JSON and runs pycocotools' COCOeval.
"""
from __future__ import annotations


import json
import logging
from pathlib import Path

import numpy as np

from trainers.data.topdown import PersonRecord, TopDownDataset
from trainers.data.transforms import PIXEL_STD, box_to_center_scale
from search_space.errors import UserInputError
from trainers.evaluation.coco import (evaluate_keypoints, load_coco_annotations, rescore_and_nms,
                                      write_results)
from trainers.config.schema import Config


__all__ = ["CocoKeypoints", "coco_paths", "image_dirs", "check_images_found"]

logger = logging.getLogger(__name__)


def image_dirs(root: str | Path, image_set: str) -> list[Path]:
    """The folders where ``image_set``'s images may be, in the order they are tried."""
    root = Path(root)
    return [root / image_set, root / "images" / image_set]


def coco_paths(root: str | Path, image_set: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``image_set`` under ``root``: the first folder of
    :func:`image_dirs` that exists (the first one if none does)."""
    root = Path(root)
    dirs = image_dirs(root, image_set)
    return (root / "annotations" / f"person_keypoints_{image_set}.json",
            next((d for d in dirs if d.is_dir()), dirs[0]))


def check_images_found(images: list[dict], root: str | Path, image_set: str, probe: int = 20) -> None:
    """Raise unless some of the first ``probe`` annotated images exist in the chosen folder.

    Raises:
        UserInputError: naming every folder searched.
    """
    if not images:
        return
    folder = coco_paths(root, image_set)[1]
    if any((folder / img["file_name"]).is_file() for img in images[:probe]):
        return
    searched = ", ".join(str(d) for d in image_dirs(root, image_set))
    raise UserInputError(str(root), f"no image of {image_set} found (looked for "
                         f"{images[0]['file_name']} and others in: {searched})",
                         field="dataset.root")


class CocoKeypoints(TopDownDataset):
    """COCO keypoints, one record per person box.

    Args:
        cfg: experiment config.
        split: ``"train"`` or ``"val"``.
        train: augment (defaults to ``split == "train"``).
        use_gt_bbox: for ``"val"``, ground-truth boxes (default ``cfg.test.use_gt_bbox``) or
            the detection file ``cfg.test.det_file`` (relative to the dataset root).
    """

    default_sets = ("train2017", "val2017")

    def __init__(self, cfg: Config, split: str, train: bool | None = None,
                 use_gt_bbox: bool | None = None) -> None:
        super().__init__(cfg, train=(split == "train") if train is None else train)
        self.split = split
        self.image_set = self.image_set_of(cfg, split)
        self.ann_file, self.image_dir = coco_paths(cfg.dataset.root, self.image_set)
        self.source = self.ann_file
        self.gt = load_coco_annotations(self.ann_file, self.spec.num_joints,
                                        strict=cfg.dataset.strict_annotations)
        self.images = {img["id"]: img for img in self.gt["images"]}
        check_images_found(self.gt["images"], cfg.dataset.root, self.image_set)
        if use_gt_bbox is None:
            use_gt_bbox = split == "train" or cfg.test.use_gt_bbox
        self.use_gt_bbox = use_gt_bbox
        margin = 1.25 if split == "train" else cfg.test.margin
        if use_gt_bbox:
            self.records = self._gt_records(margin)
        else:
            self.source = Path(cfg.dataset.root) / cfg.test.det_file
            self.records = self._detection_records(self.source, margin)
        logger.info("COCO %s: %d person boxes from %s", self.image_set, len(self.records),
                    "ground truth" if use_gt_bbox else "detections")

    def _gt_records(self, margin: float) -> list[PersonRecord]:
        records = []
        k = self.num_joints
        crowd = 0
        for ann in self.gt["annotations"]:
            if ann["category_id"] != 1:
                continue
            if ann.get("iscrowd", 0):
                crowd += 1
                continue
            img = self.images[ann["image_id"]]
            width, height = img["width"], img["height"]
            x, y, w, h = ann["bbox"]
            x1, y1 = max(0.0, x), max(0.0, y)
            x2 = min(width - 1.0, x1 + max(0.0, w - 1))
            y2 = min(height - 1.0, y1 + max(0.0, h - 1))
            if not (ann["area"] > 0 and x2 >= x1 and y2 >= y1):
                continue
            kpts = np.asarray(ann["keypoints"], dtype=np.float32).reshape(k, 3)
            if kpts.max() == 0:  # no labelled joint: nothing to learn from
                continue
            center, scale = box_to_center_scale([x1, y1, x2 - x1, y2 - y1], self.aspect_ratio, margin)
            records.append(PersonRecord(
                image=str(self.image_dir / img["file_name"]), center=center, scale=scale,
                joints=kpts[:, :2].copy(), visible=np.minimum(1.0, kpts[:, 2]),
                score=1.0, image_id=int(ann["image_id"]), annotation_id=int(ann["id"])))
        if crowd:
            logger.info("COCO %s: %d crowd annotations skipped", self.image_set, crowd)
        return records

    def _detection_records(self, det_file: Path, margin: float) -> list[PersonRecord]:
        try:
            with open(det_file) as f:
                dets = json.load(f)
        except FileNotFoundError:
            raise UserInputError(str(det_file), "detection results file not found "
                                 "(set test.det_file or use ground-truth boxes)") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserInputError(str(det_file), f"cannot read detection results ({err})") from None
        if not isinstance(dets, list):
            raise UserInputError(str(det_file), "expected a JSON list of "
                                 "{image_id, category_id, bbox, score}")
        cfg = self.cfg.test
        k = self.num_joints
        records, dropped = [], 0
        for i, det in enumerate(dets):
            if not isinstance(det, dict) or not all(key in det for key in ("image_id", "bbox", "score")):
                raise UserInputError(str(det_file), "needs image_id, bbox and score", field=f"[{i}]")
            if det.get("category_id", 1) != 1:
                continue
            box = det["bbox"]
            if not (isinstance(box, list) and len(box) == 4):
                raise UserInputError(str(det_file), "bbox must be [x, y, w, h]", field=f"[{i}]")
            img = self.images.get(det["image_id"])
            if img is None:
                raise UserInputError(str(det_file), f"image_id {det['image_id']!r} is not in "
                                     f"{self.ann_file.name}", field=f"[{i}]")
            if det["score"] < cfg.image_thre or box[2] < cfg.bbox_thre or box[3] < cfg.bbox_thre:
                dropped += 1
                continue
            center, scale = box_to_center_scale(box, self.aspect_ratio, margin)
            records.append(PersonRecord(
                image=str(self.image_dir / img["file_name"]), center=center, scale=scale,
                joints=np.zeros((k, 2), np.float32), visible=np.zeros(k, np.float32),
                score=float(det["score"]), image_id=int(det["image_id"])))
        logger.info("detections: kept %d, dropped %d below image_thre=%g / bbox_thre=%g",
                    len(records), dropped, cfg.image_thre, cfg.bbox_thre)
        return records

    def evaluate(self, preds: np.ndarray, indices: np.ndarray, output_dir: str) -> dict[str, float]:
        """Rescore, OKS-NMS, write ``keypoints_<set>_results.json`` and run COCOeval.

        Args:
            preds: (N, K, 3) x, y, confidence in image pixels for records ``indices`` (N,).
        """
        indices = np.asarray(indices)
        _, first = np.unique(indices, return_index=True)  # DDP may repeat samples
        preds, indices = preds[first], indices[first]
        recs = [self.records[i] for i in indices]
        scales = np.array([r.scale for r in recs], dtype=np.float64).reshape(-1, 2)
        areas = np.prod(scales * PIXEL_STD, axis=1)
        results = rescore_and_nms(
            preds, np.array([r.score for r in recs]), areas,
            np.array([r.image_id for r in recs]), self.cfg.test.in_vis_thre, self.cfg.test.oks_thre,
            self.spec.sigmas)
        out = Path(output_dir) / f"keypoints_{self.image_set}_results.json"
        write_results(out, results)
        logger.info("wrote %d keypoint results to %s", len(results), out)
        return evaluate_keypoints(self.gt, results, self.spec.sigmas)
