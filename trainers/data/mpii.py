"""MPII human pose, top-down, in HRNet's layout.

    ROOT/annot/{train,valid}.json   list of {image, center, scale, joints (16×2), joints_vis (16)}
    ROOT/annot/gt_valid.mat         the official evaluation ground truth
    ROOT/images/*.jpg

Coordinates in the JSON are MATLAB-style 1-based; as in the official loader the centre is moved
down by 15·scale px and the scale enlarged ×1.25 before both are made 0-based. Evaluation writes
``pred.mat`` (1-based again) and computes PCKh against ``gt_<set>.mat``.
"""
from __future__ import annotations


import json
import logging
from pathlib import Path

import numpy as np

from trainers.data.topdown import PersonRecord, TopDownDataset
from search_space.errors import UserInputError
from trainers.evaluation.mpii import load_gt_valid, pckh, save_preds
from trainers.config.schema import Config


__all__ = ["MpiiKeypoints"]

logger = logging.getLogger(__name__)


class MpiiKeypoints(TopDownDataset):
    """MPII, one record per annotated person.

    Args:
        cfg: experiment config.
        split: ``"train"`` or ``"val"``.
        train: augment (defaults to ``split == "train"``).
        use_gt_bbox: MPII has no person detections; ``False`` is an error.
    """

    default_sets = ("train", "valid")

    def __init__(self, cfg: Config, split: str, train: bool | None = None,
                 use_gt_bbox: bool | None = None) -> None:
        if use_gt_bbox is False or (split == "val" and not cfg.test.use_gt_bbox):
            raise UserInputError("--use_dt" if use_gt_bbox is False else "config",
                                 "MPII has no person detection boxes: its persons come with the "
                                 "annotations (detections are COCO's)",
                                 field=None if use_gt_bbox is False else "test.use_gt_bbox")
        super().__init__(cfg, train=(split == "train") if train is None else train)
        # the official loader enlarges every box ×1.25; validation takes test.margin (--margin)
        self.margin = 1.25 if split == "train" else cfg.test.margin
        self.split = split
        self.image_set = self.image_set_of(cfg, split)
        root = Path(cfg.dataset.root)
        self.ann_file = root / "annot" / f"{self.image_set}.json"
        self.source = self.ann_file
        self.gt_file = root / "annot" / f"gt_{self.image_set}.mat"
        self.image_dir = root / "images"
        self.records = self._load(self.ann_file)
        if self.records and not any(Path(r.image).is_file() for r in self.records[:20]):
            raise UserInputError(str(root), f"no image of {self.image_set} found (looked for "
                                 f"{Path(self.records[0].image).name} and others in "
                                 f"{self.image_dir})", field="dataset.root")
        logger.info("MPII %s: %d persons", self.image_set, len(self.records))

    def _load(self, path: Path) -> list[PersonRecord]:
        try:
            with open(path) as f:
                entries = json.load(f)
        except FileNotFoundError:
            raise UserInputError(str(path), "annotation file not found") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserInputError(str(path), f"cannot read annotations ({err})") from None
        if not isinstance(entries, list):
            raise UserInputError(str(path), "expected a JSON list of persons")
        k = self.num_joints
        records = []
        for i, a in enumerate(entries):
            where = f"[{i}]"
            if not isinstance(a, dict):
                raise UserInputError(str(path), "not an object", field=where)
            for key in ("image", "center", "scale", "joints", "joints_vis"):
                if key not in a:
                    raise UserInputError(str(path), f"missing '{key}'", field=where)
            try:
                center = np.asarray(a["center"], dtype=np.float32).reshape(2)
                joints = np.asarray(a["joints"], dtype=np.float32)
                vis = np.asarray(a["joints_vis"], dtype=np.float32).reshape(-1)
                s = float(a["scale"])
            except (TypeError, ValueError):
                raise UserInputError(str(path), "center/scale/joints must be numbers",
                                     field=where) from None
            if joints.shape != (k, 2) or vis.shape != (k,):
                raise UserInputError(str(path), f"expected {k} joints and {k} joints_vis, "
                                     f"got {joints.shape} and {vis.shape}", field=where)
            if s <= 0:
                raise UserInputError(str(path), f"scale must be positive, got {s}", field=where)
            scale = np.array([s, s], dtype=np.float32)
            if center[0] != -1:
                center[1] = center[1] + 15 * scale[1]
                scale = scale * self.margin
            # MATLAB 1-based → 0-based
            records.append(PersonRecord(
                image=str(self.image_dir / a["image"]), center=center - 1, scale=scale,
                joints=(joints - 1) * (vis[:, None] > 0), visible=(vis > 0).astype(np.float32),
                score=1.0, image_id=i))
        return records

    def evaluate(self, preds: np.ndarray, indices: np.ndarray, output_dir: str) -> dict[str, float]:
        """Write ``pred.mat`` (1-based, ground-truth order) and return PCKh.

        Persons without a prediction (their image could not be read) count as misses.
        """
        gt = load_gt_valid(self.gt_file)
        full = np.full((len(self.records), self.num_joints, 2), np.nan, dtype=np.float64)
        full[np.asarray(indices)] = preds[:, :, :2] + 1.0
        missing = int(np.isnan(full[:, 0, 0]).sum())
        if missing:
            logger.warning("%d of %d persons have no prediction; counted as misses",
                           missing, len(full))
        save_preds(Path(output_dir) / "pred.mat", full)
        return pckh(full, gt, source=str(self.gt_file))
