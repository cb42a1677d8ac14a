"""Keypoint evaluation through xtcocotools (https://github.com/jin-s13/xtcocoapi), the COCOeval
the field uses for the datasets pycocotools cannot score:

- **CrowdPose**: ``iouType="keypoints_crowd"``, areas from the box (``use_area=False``), the six
  AP/AR stats at 20 detections and AP for easy / medium / hard images by their crowd index
  (< 0.2, < 0.8, the rest), as the official CrowdPose evaluation reports them;
- **AI Challenger**: OKS with its own sigmas and areas from the box (``use_area=False``);
- **COCO-WholeBody**: ``keypoints_body`` / ``_foot`` / ``_face`` / ``_lefthand`` /
  ``_righthand`` / ``_wholebody`` with each part's sigmas (the official
  ``myeval_wholebody.py`` protocol), the annotation's separate keypoint fields.

As for COCO (:mod:`trainers.evaluation.coco`), this module feeds the library validated data in
memory and returns its stats by name; it computes nothing itself.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Sequence

import numpy as np

from search_space.errors import UserInputError
from search_space.joints import WHOLEBODY_PARTS
from trainers.evaluation.coco import COCO_STAT_NAMES

__all__ = ["CROWD_STAT_NAMES", "WHOLEBODY_FIELDS", "xtcocotools_api", "evaluate_xtcoco",
           "evaluate_crowd", "evaluate_wholebody", "crowd_levels"]

logger = logging.getLogger(__name__)

#: CrowdPose's stats, in xtcocotools' ``keypoints_crowd`` order
CROWD_STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
#: crowd-index bounds of CrowdPose's easy / medium / hard images (the official evaluation)
CROWD_LEVELS = (0.2, 0.8)
#: COCO-WholeBody's annotation field of each evaluated part (``body`` is ``keypoints``)
WHOLEBODY_FIELDS = {"body": "keypoints", "foot": "foot_kpts", "face": "face_kpts",
                    "lefthand": "lefthand_kpts", "righthand": "righthand_kpts"}


def _xtcocotools():
    try:
        from xtcocotools.coco import COCO as XtCoco
        from xtcocotools.cocoeval import COCOeval as XtCocoEval
    except ImportError as err:  # a wheel built against another NumPy fails here too
        raise UserInputError("xtcocotools", f"cannot be imported ({err}); install it from source "
                             "against this NumPy: pip install --no-build-isolation --no-binary "
                             "xtcocotools xtcocotools") from None
    return XtCoco, XtCocoEval


def xtcocotools_api(data: dict[str, Any]):
    """An xtcocotools ``COCO`` over already-validated annotation ``data`` (quiet)."""
    XtCoco, _ = _xtcocotools()
    with contextlib.redirect_stdout(io.StringIO()):
        api = XtCoco()
        api.dataset = data
        api.createIndex()
    return api


def _run(gt: dict[str, Any], results: Sequence[dict[str, Any]], iou_type: str,
         sigmas: Sequence[float], use_area: bool, crowd_index: dict | None = None) -> np.ndarray:
    _, XtCocoEval = _xtcocotools()
    api = xtcocotools_api(gt)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*not found, use 'score' instead.*")
        dets = api.loadRes([dict(r) for r in results])
        ev = XtCocoEval(api, dets, iou_type, np.asarray(sigmas, np.float64), use_area=use_area)
        ev.params.useSegm = None
        if crowd_index is not None:
            # the official split reads the annotation file again; ours are in memory
            ev.split = lambda _file, first, second: crowd_levels(crowd_index, first, second)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, np.float64)


def evaluate_xtcoco(gt: dict[str, Any], results: Sequence[dict[str, Any]],
                    sigmas: Sequence[float], use_area: bool = True) -> dict[str, float]:
    """The 10 COCO keypoint stats by xtcocotools (``use_area False``: the GT area is its box's
    w·h·0.53, for datasets without segmentation areas such as AI Challenger)."""
    if not results:
        logger.warning("no keypoint results to evaluate: every stat is 0")
        return {name: 0.0 for name in COCO_STAT_NAMES}
    stats = _run(gt, results, "keypoints", sigmas, use_area)
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, stats)}


def crowd_levels(crowd_index: dict[Any, float], first: float = CROWD_LEVELS[0],
                 second: float = CROWD_LEVELS[1]) -> tuple[list, list, list]:
    """Image ids split by crowd index: (easy < first, medium < second, hard)."""
    easy = [i for i, c in crowd_index.items() if c < first]
    medium = [i for i, c in crowd_index.items() if first <= c < second]
    hard = [i for i, c in crowd_index.items() if c >= second]
    return easy, medium, hard


def evaluate_crowd(gt: dict[str, Any], results: Sequence[dict[str, Any]],
                   sigmas: Sequence[float]) -> dict[str, float]:
    """CrowdPose's 9 stats (:data:`CROWD_STAT_NAMES`); every image needs its ``crowdIndex``."""
    if not results:
        logger.warning("no keypoint results to evaluate: every stat is 0")
        return {name: 0.0 for name in CROWD_STAT_NAMES}
    crowd_index = {img["id"]: float(img["crowdIndex"]) for img in gt["images"]}
    stats = _run(gt, results, "keypoints_crowd", sigmas, use_area=False, crowd_index=crowd_index)
    return {name: float(v) for name, v in zip(CROWD_STAT_NAMES, stats)}


def evaluate_wholebody(gt: dict[str, Any], results: Sequence[dict[str, Any]],
                       sigmas: Sequence[float]) -> dict[str, float]:
    """COCO-WholeBody's stats: ``{part}_{stat}`` for body, foot, face, lefthand, righthand and
    wholebody (the 10 COCO stats each), and ``AP``/``AR`` = the whole body's.

    ``results`` carry the official separate fields (``keypoints`` 17 body, ``foot_kpts``,
    ``face_kpts``, ``lefthand_kpts``, ``righthand_kpts``); ``sigmas`` are the 133 in that order.
    """
    names = [name for name, _, _ in WHOLEBODY_PARTS] + ["wholebody"]
    if not results:
        logger.warning("no keypoint results to evaluate: every stat is 0")
        out = {f"{part}_{s}": 0.0 for part in names for s in COCO_STAT_NAMES}
        return {"AP": 0.0, "AR": 0.0, **out}
    sigmas = np.asarray(sigmas, np.float64)
    out: dict[str, float] = {}
    for part, start, count in (*WHOLEBODY_PARTS, ("wholebody", 0, len(sigmas))):
        stats = _run(gt, results, f"keypoints_{part}", sigmas[start:start + count], use_area=True)
        out.update({f"{part}_{s}": float(v) for s, v in zip(COCO_STAT_NAMES, stats)})
    return {"AP": out["wholebody_AP"], "AR": out["wholebody_AR"], **out}
