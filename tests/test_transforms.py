import cv2
import numpy as np
import pytest

from search_space.joints import COCO, MPII
from trainers.data.transforms import (affine_points, box_to_center_scale, fliplr_joints,
                                      get_affine_transform, half_body_center_scale)


def three_point_affine(center, scale, rot, output_size):
    """HRNet's original construction (three point pairs), as an independent reference."""
    src_w = scale[0] * 200
    dst_w, dst_h = output_size
    rad = np.deg2rad(rot)
    src_dir = np.array([-np.sin(rad) * (-0.5 * src_w), np.cos(rad) * (-0.5 * src_w)])
    dst_dir = np.array([0, -0.5 * dst_w])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0], dst[1] = [dst_w * 0.5, dst_h * 0.5], np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]])
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0, 180.0])
def test_affine_matches_three_point_construction(rot):
    center, scale = np.array([120.0, 80.0]), np.array([0.9, 1.2])
    ours = get_affine_transform(center, scale, rot, (48, 64))
    ref = three_point_affine(center, scale, rot, (48, 64))
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("rot", [0.0, 17.0, -45.0])
def test_affine_round_trip_within_half_pixel(rot):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 300, (50, 2))
    center, scale = np.array([150.0, 140.0]), np.array([1.1, 1.1 * 4 / 3])
    fwd = get_affine_transform(center, scale, rot, (192, 256))
    inv = get_affine_transform(center, scale, rot, (192, 256), inverse=True)
    back = affine_points(affine_points(pts, fwd), inv)
    assert np.abs(back - pts).max() < 0.5
    np.testing.assert_allclose(back, pts, atol=1e-3)


def test_warp_puts_box_center_at_output_center():
    image = np.zeros((200, 300, 3), np.uint8)
    cv2.circle(image, (210, 90), 3, (255, 255, 255), -1)
    center, scale = np.array([210.0, 90.0]), np.array([0.5, 0.5 * 4 / 3])
    m = get_affine_transform(center, scale, 25.0, (48, 64))
    crop = cv2.warpAffine(image, m, (48, 64))
    ys, xs = np.nonzero(crop[..., 0] > 100)
    assert abs(xs.mean() - 24) < 1 and abs(ys.mean() - 32) < 1


def test_box_to_center_scale_aspect_fix_and_margin():
    center, scale = box_to_center_scale([10, 20, 30, 120], aspect_ratio=0.75, margin=1.25)
    np.testing.assert_allclose(center, [25, 80])
    # width grown to 0.75 × 120 = 90 px; then ×1.25
    np.testing.assert_allclose(scale, [90 / 200 * 1.25, 120 / 200 * 1.25], rtol=1e-6)
    _, scale = box_to_center_scale([0, 0, 300, 100], aspect_ratio=0.75, margin=1.0)
    np.testing.assert_allclose(scale, [1.5, 2.0])


@pytest.mark.parametrize("spec", [COCO, MPII])
def test_flip_twice_is_identity_and_swaps_pairs(spec):
    rng = np.random.default_rng(1)
    joints = rng.uniform(0, 100, (spec.num_joints, 2)).astype(np.float32)
    vis = np.ones(spec.num_joints, np.float32)
    flipped, fvis = fliplr_joints(joints, vis, 101, spec.flip_pairs)
    for a, b in spec.flip_pairs:
        assert flipped[a, 0] == pytest.approx(100 - joints[b, 0])
        assert flipped[b, 1] == pytest.approx(joints[a, 1])
    back, _ = fliplr_joints(flipped, fvis, 101, spec.flip_pairs)
    np.testing.assert_allclose(back, joints, atol=1e-5)


def test_flip_pairs_are_left_right_names():
    for a, b in COCO.flip_pairs:
        assert COCO.names[a].replace("left", "") == COCO.names[b].replace("right", "")
    for a, b in MPII.flip_pairs:
        assert MPII.names[a][0] == "r" and MPII.names[b][0] == "l"
        assert MPII.names[a][1:] == MPII.names[b][1:]
    perm = COCO.flip_permutation()
    assert perm[5] == 6 and perm[0] == 0 and sorted(perm) == list(range(17))


def test_half_body_selects_a_half():
    joints = np.array([[50 + 2 * j, 10 + 10 * j] for j in range(17)], np.float32)
    vis = np.ones(17, np.float32)
    rng = np.random.default_rng(3)
    for _ in range(10):
        center, scale = half_body_center_scale(joints, vis, COCO.upper_body, 0.75, rng)
        assert center[1] < 110 or center[1] > 120  # upper (0..10) or lower (11..16) mean
        assert scale[1] * 200 >= (joints[:, 1].max() - joints[:, 1].min()) * 0.3
    vis[:] = 0
    vis[0] = 1
    assert half_body_center_scale(joints, vis, COCO.upper_body, 0.75, rng) is None
