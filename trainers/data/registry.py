"""The dataset registry: one entry per dataset — its reader, keypoint layout (and with it the
part groupings), evaluator and the metric that ranks checkpoints.

``dataset.name`` in a config is validated against :data:`DATASETS`
(:mod:`trainers.config.experiment`); :func:`build_dataset` is the one place that turns a config
into a dataset. The keypoint layout (:class:`~search_space.joints.KeypointSpec`: joint names,
flip pairs, skeleton, OKS sigmas, part groupings) is registered under the same name in
:data:`search_space.joints.KEYPOINT_SPECS`, because the networks' heads are built for it.

To add a dataset in COCO's format (any keypoint count): its keypoint layout and one entry here
with the COCO reader and evaluator. Another format: a
:class:`~trainers.data.topdown.TopDownDataset` subclass that reads it and evaluates
predictions, then the same. README "Extending" shows a 14-joint dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainers.data.coco import CocoKeypoints
from trainers.data.mpii import MpiiKeypoints
from trainers.data.topdown import TopDownDataset
from trainers.config.schema import Config
from search_space.errors import UserInputError


__all__ = ["DatasetEntry", "DATASETS", "dataset_names", "build_dataset", "image_set", "primary_metric"]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset.

    Attributes:
        reader: reads the official layout and evaluates predictions (``evaluate``).
        metric: the number that ranks checkpoints and candidates (a key of the evaluation).
        description: one line for ``--help`` and the README.
        evaluation: the file evaluator of ``python -m trainers.evaluate``: ``"coco"``
            (pycocotools' COCOeval with the layout's OKS sigmas) or ``"mpii"`` (PCKh).
    """

    reader: type[TopDownDataset]
    metric: str
    description: str
    evaluation: Literal["coco", "mpii"] = "coco"


#: dataset name → :class:`DatasetEntry`
DATASETS: dict[str, DatasetEntry] = {
    "coco": DatasetEntry(CocoKeypoints, "AP", "COCO keypoints: OKS AP by pycocotools' COCOeval"),
    "mpii": DatasetEntry(MpiiKeypoints, "Mean", "MPII human pose: PCKh@0.5 (official protocol)",
                         evaluation="mpii"),
}


def dataset_names() -> list[str]:
    """Registered dataset names."""
    return list(DATASETS)


def primary_metric(dataset: str) -> str:
    """The number that ranks checkpoints and candidates: COCO ``AP``, MPII ``Mean`` (PCKh@0.5)."""
    return DATASETS[dataset].metric


def image_set(cfg: Config, split: str) -> str:
    """The image set ``split`` ("train"/"val") reads: ``dataset.train_set``/``val_set``, else
    the dataset's own (COCO ``train2017``/``val2017``, MPII ``train``/``valid``)."""
    return DATASETS[cfg.dataset.name].reader.image_set_of(cfg, split)


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
    dataset = DATASETS[cfg.dataset.name].reader(cfg, split, train=train, use_gt_bbox=use_gt_bbox)
    if not len(dataset):
        raise UserInputError(str(dataset.source), f"no person to {'train on' if split == 'train' else 'evaluate'}"
                             f" in {dataset.image_set} (every annotation empty, crowd, skipped or "
                             "filtered out)",
                             field="annotations" if dataset.source == getattr(dataset, "ann_file", None) else None)
    return dataset
