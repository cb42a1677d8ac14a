"""MPII PCKh, computed exactly as the official MPII / HRNet evaluation does.

The ground truth is the official ``gt_valid.mat`` (``dataset_joints``, ``jnt_missing``,
``pos_gt_src``, ``headboxes_src``); predictions are ``pred.mat`` with ``preds`` (N, 16, 2) in
MPII's 1-based pixel convention. A joint is correct when its error is at most
``threshold × 0.6 × ‖head box diagonal‖``. Pelvis and thorax are left out of the means, which
are weighted by each joint's count. ``Mean@0.1`` is, as in the official code, the value at index
11 of ``arange(0, 0.51, 0.01)`` (i.e. a threshold of 0.11), so our numbers compare with
published ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from trainers.atomic import atomic_path
from search_space.errors import UserInputError

__all__ = ["PCKH_NAMES", "MPII_JOINT_CODES", "MpiiGroundTruth", "load_gt_valid", "load_preds",
           "save_preds", "pckh"]

PCKH_NAMES = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1")
#: ``dataset_joints`` of the official gt_valid.mat, in MPII joint order.
MPII_JOINT_CODES = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
                    "rwri", "relb", "rsho", "lsho", "lelb", "lwri")
SC_BIAS = 0.6


@dataclass(frozen=True)
class MpiiGroundTruth:
    """Arrays of gt_valid.mat: names (16,), jnt_missing (16, N), pos_gt_src (16, 2, N),
    headboxes_src (2, 2, N)."""

    joint_names: tuple[str, ...]
    jnt_missing: np.ndarray
    pos_gt_src: np.ndarray
    headboxes_src: np.ndarray

    @property
    def num_persons(self) -> int:
        return self.pos_gt_src.shape[2]


def _loadmat(path: str | Path, what: str) -> dict:
    try:
        return scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise UserInputError(str(path), f"{what} not found") from None
    except Exception as err:  # scipy raises several types for corrupt files
        raise UserInputError(str(path), f"not a readable MATLAB file ({type(err).__name__}: {err})") from None


def _joint_names(raw: np.ndarray, src: str) -> tuple[str, ...]:
    names = []
    for item in np.asarray(raw, dtype=object).reshape(-1):
        while isinstance(item, np.ndarray):
            if item.size != 1:
                break
            item = item.reshape(-1)[0]
        names.append(str(item).strip())
    if len(names) != 16:
        raise UserInputError(src, f"expected 16 joint names, got {len(names)}", field="dataset_joints")
    return tuple(names)


def load_gt_valid(path: str | Path) -> MpiiGroundTruth:
    """Read and check the official ``gt_valid.mat``."""
    src = str(path)
    mat = _loadmat(path, "ground-truth file")
    for key in ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src"):
        if key not in mat:
            raise UserInputError(src, "missing field", field=key)
    names = _joint_names(mat["dataset_joints"], src)
    missing = np.asarray(mat["jnt_missing"], dtype=np.float64)
    pos = np.asarray(mat["pos_gt_src"], dtype=np.float64)
    heads = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if pos.ndim != 3 or pos.shape[:2] != (16, 2):
        raise UserInputError(src, f"expected shape (16, 2, N), got {pos.shape}", field="pos_gt_src")
    n = pos.shape[2]
    if missing.shape != (16, n):
        raise UserInputError(src, f"expected shape (16, {n}), got {missing.shape}", field="jnt_missing")
    if heads.shape != (2, 2, n):
        raise UserInputError(src, f"expected shape (2, 2, {n}), got {heads.shape}", field="headboxes_src")
    return MpiiGroundTruth(names, missing, pos, heads)


def load_preds(path: str | Path) -> np.ndarray:
    """Read ``preds`` (N, 16, 2), 1-based pixels, from a pred.mat."""
    src = str(path)
    mat = _loadmat(path, "predictions file")
    if "preds" not in mat:
        raise UserInputError(src, "missing field", field="preds")
    preds = np.asarray(mat["preds"], dtype=np.float64)
    if preds.ndim != 3 or preds.shape[1] != 16 or preds.shape[2] < 2:
        raise UserInputError(src, f"expected shape (N, 16, 2), got {preds.shape}", field="preds")
    bad = np.argwhere(~np.isfinite(preds[:, :, :2]).all(axis=-1))
    if len(bad):
        raise UserInputError(src, f"{len(bad)} non-finite joint(s), first at person {bad[0][0]} "
                             f"joint {bad[0][1]}: a missing joint is a prediction too (it would "
                             "silently count as a miss)", field="preds")
    return preds[:, :, :2]


def save_preds(path: str | Path, preds: np.ndarray) -> None:
    """Write ``preds`` (N, 16, 2), already 1-based, as pred.mat atomically."""
    with atomic_path(path, suffix=".mat") as tmp:
        scipy.io.savemat(str(tmp), {"preds": np.asarray(preds, dtype=np.float64)})


def pckh(preds: np.ndarray, gt: MpiiGroundTruth, threshold: float = 0.5,
         source: str = "preds") -> dict[str, float]:
    """PCKh per joint group, Mean and Mean@0.1, in percent.

    Args:
        preds: (N, 16, 2) predictions, 1-based pixels, in the order of the ground truth.
    """
    if preds.shape[0] != gt.num_persons:
        raise UserInputError(source, f"{preds.shape[0]} predictions for {gt.num_persons} "
                             "ground-truth persons", field="preds")
    idx = {name: gt.joint_names.index(name) for name in MPII_JOINT_CODES
           if name in gt.joint_names}
    if len(idx) != 16:
        raise UserInputError("gt", "dataset_joints must name the 16 MPII joints "
                             f"{MPII_JOINT_CODES}", field="dataset_joints")
    pos_pred = np.transpose(preds, [1, 2, 0])  # (16, 2, N)
    visible = 1 - gt.jnt_missing
    err = np.linalg.norm(pos_pred - gt.pos_gt_src, axis=1)  # (16, N)
    head_sizes = np.linalg.norm(gt.headboxes_src[1] - gt.headboxes_src[0], axis=0) * SC_BIAS
    scaled = err / (head_sizes[None, :] * np.ones((16, 1)))
    scaled = scaled * visible
    count = visible.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = (scaled <= threshold) * visible
        per_joint = 100.0 * within.sum(axis=1) / count
        thresholds = np.arange(0, 0.5 + 0.01, 0.01)
        pck_all = np.stack([100.0 * ((scaled <= r) * visible).sum(axis=1) / count
                            for r in thresholds])
    per_joint = np.ma.array(per_joint, mask=False)
    per_joint.mask[6:8] = True  # pelvis and thorax, as the official code does
    count_m = np.ma.array(count, mask=False)
    count_m.mask[6:8] = True
    ratio = count_m / np.sum(count_m).astype(np.float64)

    def pair(a: str, b: str) -> float:
        return float(0.5 * (per_joint[idx[a]] + per_joint[idx[b]]))

    return {
        "Head": float(per_joint[idx["head"]]),
        "Shoulder": pair("lsho", "rsho"),
        "Elbow": pair("lelb", "relb"),
        "Wrist": pair("lwri", "rwri"),
        "Hip": pair("lhip", "rhip"),
        "Knee": pair("lkne", "rkne"),
        "Ankle": pair("lank", "rank"),
        "Mean": float(np.sum(per_joint * ratio)),
        "Mean@0.1": float(np.sum(pck_all[11, :] * ratio)),
    }
