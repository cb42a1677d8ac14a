import numpy as np
import pytest
import scipy.io

from search_space.errors import UserInputError
from trainers.evaluation.mpii import (MPII_JOINT_CODES, MpiiGroundTruth, load_gt_valid, load_preds,
                                      pckh, save_preds)


def hand_case() -> tuple[np.ndarray, MpiiGroundTruth]:
    """Two persons, head boxes 10×10 px: head size = 0.6·√200 ≈ 8.485 px, so PCKh@0.5 accepts
    errors ≤ 4.243 px and the 0.11 threshold (Mean@0.1) errors ≤ 0.933 px."""
    n = 2
    gt_pos = np.zeros((16, 2, n))
    gt_pos[:, 0, :] = np.arange(16)[:, None] * 10.0
    missing = np.zeros((16, n))
    missing[0, 1] = 1  # r_ankle of person 2 not annotated
    heads = np.zeros((2, 2, n))
    heads[1] = 10.0
    preds = np.transpose(gt_pos, [2, 0, 1]).copy()  # (N, 16, 2)
    preds[0, 9, 0] += 4.0  # head, person 1: 4 px → within 0.5, not within 0.11
    preds[1, 9, 0] += 5.0  # head, person 2: 5 px → miss
    preds[0, 12, 1] += 0.5  # r_sho person 1: 0.5 px → within both
    preds[0, 10, 0] += 100  # r_wri person 1: miss
    preds[1, 0, 0] += 100  # r_ank person 2: missing in gt → not counted
    preds[0, 6, 0] += 100  # pelvis: excluded from the means
    gt = MpiiGroundTruth(MPII_JOINT_CODES, missing, gt_pos, heads)
    return preds, gt


def test_pckh_hand_worked_case():
    preds, gt = hand_case()
    m = pckh(preds, gt)
    assert m["Head"] == pytest.approx(50.0)
    assert m["Shoulder"] == pytest.approx(100.0)
    assert m["Wrist"] == pytest.approx(75.0)  # r_wri 1/2, l_wri 2/2
    assert m["Ankle"] == pytest.approx(100.0)  # r_ank 1/1 counted, l_ank 2/2
    # Mean: 14 joints without pelvis/thorax, 27 visible joint instances, 2 misses
    assert m["Mean"] == pytest.approx(100.0 * 25 / 27)
    # Mean@0.1 (threshold 0.11 ≈ 0.933 px): additionally head of person 1 misses
    assert m["Mean@0.1"] == pytest.approx(100.0 * 24 / 27)


def test_mat_round_trip_and_errors(tmp_path):
    preds, gt = hand_case()
    names = np.empty((1, 16), dtype=object)
    names[0, :] = list(MPII_JOINT_CODES)
    scipy.io.savemat(tmp_path / "gt_valid.mat", {"dataset_joints": names,
                                                "jnt_missing": gt.jnt_missing,
                                                "pos_gt_src": gt.pos_gt_src,
                                                "headboxes_src": gt.headboxes_src})
    save_preds(tmp_path / "pred.mat", preds)
    loaded = load_gt_valid(tmp_path / "gt_valid.mat")
    assert loaded.joint_names == MPII_JOINT_CODES
    assert pckh(load_preds(tmp_path / "pred.mat"), loaded) == pckh(preds, gt)
    scipy.io.savemat(tmp_path / "bad.mat", {"preds": np.zeros((2, 15, 2))})
    with pytest.raises(UserInputError, match=r"expected shape \(N, 16, 2\)"):
        load_preds(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(UserInputError, match="not a readable MATLAB file"):
        load_gt_valid(tmp_path / "junk.mat")
    with pytest.raises(UserInputError, match="3 predictions for 2"):
        pckh(np.zeros((3, 16, 2)), gt)
