"""The dataset registry: name → reader class and the metric that ranks checkpoints.

``dataset.name`` in a config is validated against :data:`DATASETS`; :func:`build_dataset` is the
one place that turns a config into a dataset. Keypoint definitions (joint names, flip pairs)
are in :mod:`search_space.joints` under the same names, because the networks' heads are built
for them.

To add a dataset: a :class:`~trainers.data.topdown.TopDownDataset` subclass that reads the
official layout and evaluates predictions, a :class:`~search_space.joints.KeypointSpec` of its
joints, and one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from trainers.data.coco import CocoKeypoints
from trainers.data.mpii import MpiiKeypoints
from trainers.data.topdown import TopDownDataset

if TYPE_CHECKING:  # the config validates dataset names against this registry
    from trainers.config import Config

__all__ = ["DatasetEntry", "DATASETS", "dataset_names", "build_dataset", "primary_metric"]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: its reader, the metric that ranks checkpoints, a description."""

    reader: type[TopDownDataset]
    metric: str
    description: str


#: dataset name → :class:`DatasetEntry`
DATASETS: dict[str, DatasetEntry] = {
    "coco": DatasetEntry(CocoKeypoints, "AP", "COCO keypoints: OKS AP by pycocotools' COCOeval"),
    "mpii": DatasetEntry(MpiiKeypoints, "Mean", "MPII human pose: PCKh@0.5 (official protocol)"),
}


def dataset_names() -> list[str]:
    """Registered dataset names."""
    return list(DATASETS)


def primary_metric(dataset: str) -> str:
    """The number that ranks checkpoints and candidates: COCO ``AP``, MPII ``Mean`` (PCKh@0.5)."""
    return DATASETS[dataset].metric


def build_dataset(cfg: Config, split: str, train: bool | None = None,
                  use_gt_bbox: bool | None = None) -> TopDownDataset:
    """The dataset ``cfg.dataset.name`` for ``split`` ("train" or "val").

    Args:
        train: augment (default: ``split == "train"``).
        use_gt_bbox: validation boxes from the ground truth or from person detections
            (default ``cfg.test.use_gt_bbox``); only COCO has detections.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    return DATASETS[cfg.dataset.name].reader(cfg, split, train=train, use_gt_bbox=use_gt_bbox)
