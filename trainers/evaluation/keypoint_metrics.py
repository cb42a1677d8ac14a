"""Distance metrics of keypoint predictions against ground-truth joints: PCK@α, AUC and EPE.

These are the numbers hand, animal and custom-keypoint papers report beside (or instead of) OKS
AP; they follow mmpose's ``keypoint_pck_accuracy``, ``keypoint_auc`` and ``keypoint_epe``
(https://github.com/open-mmlab/mmpose, ``mmpose/evaluation/functional/keypoint_eval.py``):

- **PCK@α** (bounding-box normalised): a labelled joint is correct when its error is below
  ``α × max(box width, box height)``; the accuracy of each joint over the persons where it is
  labelled, averaged over the joints labelled at least once.
- **AUC**: the mean of PCK@α over ``num_thrs`` thresholds ``α_i = i / num_thrs × max_alpha``,
  i = 0 … num_thrs-1 (mmpose's rule, with the box size as the normaliser instead of a fixed
  pixel count so that it applies to people of any size).
- **EPE**: the mean end-point error in pixels over every labelled joint of every person.

Shape legend: N persons, K joints.
"""
from __future__ import annotations

import numpy as np

__all__ = ["DISTANCE_METRICS", "LOWER_IS_BETTER", "normalized_distances", "pck_accuracy",
           "keypoint_auc", "keypoint_epe", "distance_metrics"]

#: the metrics of :func:`distance_metrics`, in report order
DISTANCE_METRICS = ("PCK", "AUC", "EPE")
#: metrics where a smaller value is better (checkpoint selection minimises them)
LOWER_IS_BETTER = frozenset({"EPE", "loss"})


def normalized_distances(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray,
                         norm: np.ndarray) -> np.ndarray:
    """(N, K) distances ``‖pred - gt‖ / norm``; -1 where the joint is unlabelled or the
    normaliser is not positive (those never count).

    Args:
        pred, gt: (N, K, 2) pixels. mask: (N, K) labelled joints. norm: (N,) normalisers.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    norm = np.asarray(norm, np.float64).reshape(-1, 1)
    valid = np.asarray(mask, bool) & (norm > 0)
    dist = np.linalg.norm(pred - gt, axis=-1) / np.where(norm > 0, norm, 1.0)
    return np.where(valid, dist, -1.0)


def pck_accuracy(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: np.ndarray,
                 alpha: float) -> tuple[np.ndarray, float, int]:
    """PCK@``alpha``: (per-joint accuracy (K,) with -1 for joints never labelled, their mean
    over the joints labelled at least once, that joint count)."""
    dist = normalized_distances(pred, gt, mask, norm)
    valid = dist != -1
    counts = valid.sum(axis=0)
    correct = ((dist < alpha) & valid).sum(axis=0)
    per_joint = np.where(counts > 0, correct / np.maximum(counts, 1), -1.0)
    labelled = counts > 0
    mean = float(per_joint[labelled].mean()) if labelled.any() else 0.0
    return per_joint, mean, int(labelled.sum())


def keypoint_auc(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: np.ndarray,
                 max_alpha: float = 0.5, num_thrs: int = 20) -> float:
    """Area under the PCK@α curve for α in [0, ``max_alpha``), as the mean of ``num_thrs`` PCKs
    (the rectangle rule of mmpose's ``keypoint_auc``), normalised to [0, 1]."""
    alphas = [max_alpha * i / num_thrs for i in range(num_thrs)]
    return float(np.mean([pck_accuracy(pred, gt, mask, norm, a)[1] for a in alphas]))


def keypoint_epe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean end-point error (pixels) over every labelled joint; 0 when none is labelled."""
    dist = normalized_distances(pred, gt, mask, np.ones(len(pred)))
    valid = dist != -1
    return float(dist[valid].mean()) if valid.any() else 0.0


def distance_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, boxes: np.ndarray,
                     pck_alpha: float = 0.05, auc_max_alpha: float = 0.5) -> dict[str, float]:
    """``{"PCK", "AUC", "EPE"}`` of predictions against ground-truth joints.

    Args:
        pred, gt: (N, K, 2) pixels. mask: (N, K) labelled joints.
        boxes: (N, 4) ground-truth person boxes [x, y, w, h]; the normaliser is max(w, h).
    """
    norm = np.max(np.asarray(boxes, np.float64).reshape(-1, 4)[:, 2:], axis=1)
    return {"PCK": pck_accuracy(pred, gt, mask, norm, pck_alpha)[1],
            "AUC": keypoint_auc(pred, gt, mask, norm, auc_max_alpha),
            "EPE": keypoint_epe(pred, gt, mask)}
