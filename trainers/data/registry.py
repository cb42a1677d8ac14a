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
predictions, then the same. README "Extending" shows a 14-joint dataset. Without code, a
config describes a COCO-format dataset itself (``dataset.name: custom``, or a new name with
``dataset.keypoints``; :mod:`trainers.data.custom`): :func:`register_config_dataset` completes
and registers it when the config is loaded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from search_space.joints import register_keypoint_spec
from trainers.config.loader import value_source
from trainers.data.aic import AicKeypoints
from trainers.data.coco import CocoKeypoints
from trainers.data.coco_wholebody import CocoWholeBodyKeypoints
from trainers.data.crowdpose import CrowdPoseKeypoints
from trainers.data.custom import CustomKeypoints, complete_layout, layout_spec
from trainers.data.mpii import MpiiKeypoints
from trainers.data.ochuman import OCHumanKeypoints
from trainers.data.topdown import TopDownDataset
from trainers.config.schema import Config
from trainers.evaluation.coco import COCO_STAT_NAMES
from trainers.evaluation.keypoint_metrics import DISTANCE_METRICS
from trainers.evaluation.mpii import PCKH_NAMES
from trainers.evaluation.xtcoco import CROWD_STAT_NAMES, WHOLEBODY_FIELDS
from search_space.errors import UserInputError


__all__ = ["DatasetEntry", "DATASETS", "BUILT_IN", "dataset_names", "build_dataset", "image_set",
           "primary_metric", "register_config_dataset"]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset.

    Attributes:
        reader: reads the official layout and evaluates predictions (``evaluate``).
        metric: the number that ranks checkpoints and candidates (a key of the evaluation).
        description: one line for ``--help`` and the README.
        evaluation: the file evaluator of ``python -m trainers.evaluate``: ``"coco"``
            (pycocotools' COCOeval with the layout's OKS sigmas), ``"mpii"`` (PCKh),
            ``"crowdpose"``, ``"aic"`` or ``"coco_wholebody"`` (xtcocotools).
        metrics: every number its evaluation reports (``test.metric`` picks one); with
            ground-truth boxes COCO-format datasets add PCK, AUC and EPE.
    """

    reader: type[TopDownDataset]
    metric: str
    description: str
    evaluation: Literal["coco", "mpii", "crowdpose", "aic", "coco_wholebody"] = "coco"
    metrics: tuple[str, ...] = COCO_STAT_NAMES + DISTANCE_METRICS


_WHOLEBODY_METRICS = ("AP", "AR") + tuple(f"{part}_{stat}" for part in (*WHOLEBODY_FIELDS, "wholebody")
                                           for stat in COCO_STAT_NAMES) + DISTANCE_METRICS

#: dataset name → :class:`DatasetEntry`
DATASETS: dict[str, DatasetEntry] = {
    "coco": DatasetEntry(CocoKeypoints, "AP", "COCO keypoints: OKS AP by pycocotools' COCOeval"),
    "mpii": DatasetEntry(MpiiKeypoints, "Mean", "MPII human pose: PCKh@0.5 (official protocol)",
                         evaluation="mpii", metrics=PCKH_NAMES),
    "crowdpose": DatasetEntry(CrowdPoseKeypoints, "AP", "CrowdPose: 14 joints, AP and AP "
                              "easy/medium/hard by crowd index (xtcocotools)",
                              evaluation="crowdpose", metrics=CROWD_STAT_NAMES + DISTANCE_METRICS),
    "ochuman": DatasetEntry(OCHumanKeypoints, "AP", "OCHuman: occluded people, COCO joints, "
                            "val/test on ground-truth boxes (pycocotools)"),
    "aic": DatasetEntry(AicKeypoints, "AP", "AI Challenger: 14 joints, OKS AP with its sigmas "
                        "(xtcocotools, box areas)", evaluation="aic"),
    "coco_wholebody": DatasetEntry(CocoWholeBodyKeypoints, "AP", "COCO-WholeBody: 133 keypoints, "
                                   "AP of body, foot, face, hands and whole body (xtcocotools)",
                                   evaluation="coco_wholebody", metrics=_WHOLEBODY_METRICS),
    "custom": DatasetEntry(CustomKeypoints, "AP", "your COCO-format keypoints: layout from the "
                           "annotation file's categories and dataset.sigmas / flip_pairs / parts"),
}
#: the datasets that come with posenas (the others are described by their configs)
BUILT_IN = frozenset(DATASETS)


def dataset_names() -> list[str]:
    """Registered dataset names."""
    return list(DATASETS)


def primary_metric(cfg: Config) -> str:
    """The number that ranks checkpoints and candidates: ``test.metric``, else the dataset's
    own (COCO-format ``AP``, MPII ``Mean``, i.e. PCKh@0.5)."""
    return cfg.test.metric or DATASETS[cfg.dataset.name].metric


def _custom_fields_set(cfg: Config) -> list[str]:
    ds = cfg.dataset
    return [key for key in ("keypoints", "skeleton", "flip_pairs", "sigmas", "upper_body",
                            "joints_weight", "parts") if getattr(ds, key)]


def register_config_dataset(cfg: Config, source: str) -> Config:
    """Check ``dataset.name`` and ``test.metric`` against the registry; for a dataset the config
    describes (``custom``, or a new name with ``dataset.keypoints``), complete its layout
    (:func:`trainers.data.custom.complete_layout`), register it, and return the config with the
    layout filled in.

    Raises:
        UserInputError: naming the file (or override) and the field.
    """
    name = cfg.dataset.name
    described = name == "custom" or (name not in BUILT_IN and cfg.dataset.keypoints)
    if not described and name not in DATASETS:
        raise UserInputError(value_source(cfg, "dataset.name", source), f"unknown dataset "
                             f"{name!r}; known: {', '.join(sorted(BUILT_IN))} (or describe "
                             "your own: dataset.name custom, README \"Data layouts\")",
                             field="dataset.name")
    if not described and name in BUILT_IN and _custom_fields_set(cfg):
        key = _custom_fields_set(cfg)[0]
        raise UserInputError(value_source(cfg, f"dataset.{key}", source), f"{name} has its own "
                             "keypoint layout: this field is for a custom dataset "
                             "(dataset.name custom)", field=f"dataset.{key}")
    if described:
        ds = complete_layout(cfg, source)
        cfg = dataclasses.replace(cfg, dataset=ds)
        register_keypoint_spec(name, layout_spec(name, ds))
        if name not in BUILT_IN:
            DATASETS[name] = DatasetEntry(CustomKeypoints, "AP", f"{name}: COCO-format keypoints "
                                          "described in its config")
    metric = cfg.test.metric
    if metric and metric not in DATASETS[name].metrics:
        raise UserInputError(value_source(cfg, "test.metric", source), f"{name} reports "
                             f"{', '.join(DATASETS[name].metrics)}; not {metric!r}",
                             field="test.metric")
    return cfg


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
