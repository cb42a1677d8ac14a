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
from typing import Any

import numpy as np

from trainers.data.topdown import PersonRecord, TopDownDataset
from trainers.data.transforms import PIXEL_STD, box_to_center_scale
from search_space.errors import UserInputError
from trainers.evaluation.coco import (evaluate_keypoints, load_coco_annotations, rescore_and_nms,
                                      write_results)
from trainers.config.schema import Config
from trainers.evaluation.keypoint_metrics import distance_metrics


__all__ = ["CocoKeypoints", "coco_paths", "image_dirs", "check_images_found"]

logger = logging.getLogger(__name__)


def image_dirs(root: str | Path, image_set: str) -> list[Path]:
    """The folders where COCO ``image_set``'s images may be, in the order they are tried."""
    root = Path(root)
    return [root / image_set, root / "images" / image_set]


def coco_paths(root: str | Path, image_set: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of COCO's ``image_set`` under ``root``: the first folder
    of :func:`image_dirs` that exists (the first one if none does)."""
    return CocoKeypoints.layout_paths(root, image_set)


def _first_existing(paths: list[Path]) -> Path:
    return next((p for p in paths if p.exists()), paths[0])


def check_images_found(images: list[dict], root: str | Path, image_set: str,
                       folders: list[Path] | None = None, probe: int = 20) -> None:
    """Raise unless some of the first ``probe`` annotated images exist in the chosen folder
    (the first of ``folders``, COCO's :func:`image_dirs` by default, that exists).

    Raises:
        UserInputError: naming every folder searched.
    """
    if not images:
        return
    folders = folders or image_dirs(root, image_set)
    folder = next((d for d in folders if d.is_dir()), folders[0])
    if any((folder / img["file_name"]).is_file() for img in images[:probe]):
        return
    searched = ", ".join(str(d) for d in folders)
    raise UserInputError(str(root), f"no image of {image_set} found (looked for "
                         f"{images[0]['file_name']} and others in: {searched})",
                         field="dataset.root")


class CocoKeypoints(TopDownDataset):
    """COCO keypoints, one record per person box; the base of every COCO-format dataset
    (CrowdPose, OCHuman, AI Challenger, COCO-WholeBody, custom keypoints), which change the
    layout (:meth:`annotation_files`, :meth:`image_folders`), how an annotation's keypoints are
    read (:meth:`person_keypoints`) and the evaluator (:meth:`score_results`).

    Args:
        cfg: experiment config.
        split: ``"train"`` or ``"val"``.
        train: augment (defaults to ``split == "train"``).
        use_gt_bbox: for ``"val"``, ground-truth boxes (default ``cfg.test.use_gt_bbox``) or
            the detection file ``cfg.test.det_file`` (relative to the dataset root).
    """

    default_sets = ("train2017", "val2017")
    #: the dataset's name in log lines
    title = "COCO"

    @classmethod
    def annotation_files(cls, root: Path, image_set: str) -> list[Path]:
        """Where ``image_set``'s annotation file may be, in the order tried."""
        return [root / "annotations" / f"person_keypoints_{image_set}.json"]

    @classmethod
    def image_folders(cls, root: Path, image_set: str) -> list[Path]:
        """Where ``image_set``'s images may be, in the order tried."""
        return image_dirs(root, image_set)

    @classmethod
    def layout_paths(cls, root: str | Path, image_set: str) -> tuple[Path, Path]:
        """(annotation file, image folder): the first of each that exists (else the first)."""
        root = Path(root)
        return (_first_existing(cls.annotation_files(root, image_set)),
                _first_existing(cls.image_folders(root, image_set)))

    def load_annotations(self, path: Path) -> dict[str, Any]:
        """The validated COCO-format annotations of ``path``."""
        return load_coco_annotations(path, self.spec.num_joints,
                                     strict=self.cfg.dataset.strict_annotations)

    def person_keypoints(self, ann: dict[str, Any]) -> np.ndarray:
        """(K, 3) x, y, v of one person annotation."""
        return np.asarray(ann["keypoints"], dtype=np.float32).reshape(self.spec.num_joints, 3)

    def score_results(self, results: list[dict[str, Any]]) -> dict[str, float]:
        """The evaluator's stats of COCO keypoint ``results`` (pycocotools' COCOeval)."""
        return evaluate_keypoints(self.gt, results, self.spec.sigmas, self.cfg.test.coco_evaluator)

    def result_entry(self, result: dict[str, Any]) -> dict[str, Any]:
        """One COCO keypoint result as the results file stores it (COCO: as it is)."""
        return result

    def __init__(self, cfg: Config, split: str, train: bool | None = None,
                 use_gt_bbox: bool | None = None) -> None:
        super().__init__(cfg, train=(split == "train") if train is None else train)
        self.split = split
        self.image_set = self.image_set_of(cfg, split)
        self.ann_file, self.image_dir = self.layout_paths(cfg.dataset.root, self.image_set)
        self.source = self.ann_file
        self.gt = self.load_annotations(self.ann_file)
        self.images = {img["id"]: img for img in self.gt["images"]}
        check_images_found(self.gt["images"], cfg.dataset.root, self.image_set,
                           self.image_folders(Path(cfg.dataset.root), self.image_set))
        if use_gt_bbox is None:
            use_gt_bbox = split == "train" or cfg.test.use_gt_bbox
        self.use_gt_bbox = use_gt_bbox
        margin = 1.25 if split == "train" else cfg.test.margin
        if use_gt_bbox:
            self.records = self._gt_records(margin)
        else:
            self.source = Path(cfg.dataset.root) / cfg.test.det_file
            self.records = self._detection_records(self.source, margin)
        logger.info("%s %s: %d person boxes from %s", self.title, self.image_set, len(self.records),
                    "ground truth" if use_gt_bbox else "detections")

    def _gt_records(self, margin: float) -> list[PersonRecord]:
        records = []
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
            kpts = self.person_keypoints(ann)
            if kpts[:, 2].max() <= 0:  # no labelled joint: nothing to learn from
                continue
            center, scale = box_to_center_scale([x1, y1, x2 - x1, y2 - y1], self.aspect_ratio, margin)
            records.append(PersonRecord(
                image=str(self.image_dir / img["file_name"]), center=center, scale=scale,
                joints=kpts[:, :2].copy(), visible=np.minimum(1.0, kpts[:, 2]),
                score=1.0, image_id=int(ann["image_id"]), annotation_id=int(ann["id"]),
                extra={"bbox": (x1, y1, x2 - x1, y2 - y1)}))
        if crowd:
            logger.info("%s %s: %d crowd annotations skipped", self.title, self.image_set, crowd)
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
        """Rescore, OKS-NMS, write ``keypoints_<set>_results.json`` and run the evaluator
        (:meth:`score_results`); with ground-truth boxes, PCK@α, AUC and EPE too
        (:mod:`trainers.evaluation.keypoint_metrics`, before rescoring and NMS).

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
        results = [self.result_entry(r) for r in results]
        write_results(out, results)
        logger.info("wrote %d keypoint results to %s", len(results), out)
        stats = self.score_results(results)
        if self.use_gt_bbox and recs:
            stats.update(distance_metrics(
                preds[..., :2], np.stack([r.joints for r in recs]),
                np.stack([r.visible for r in recs]) > 0,
                np.array([r.extra["bbox"] for r in recs]), self.cfg.test.pck_thr,
                self.cfg.test.auc_max_thr))
        return stats
