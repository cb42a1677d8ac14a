import numpy as np
import pytest
import torch

from trainers.data.codec import HeatmapCodec, flip_back, get_max_preds
from search_space.joints import COCO

CODEC = HeatmapCodec(input_size=(256, 192), heatmap_size=(64, 48), sigma=2.0)


def test_encode_peak_and_weights():
    joints = np.array([[100.0, 60.0], [4.0, 4.0], [-40.0, 10.0], [50.0, 50.0]])
    vis = np.array([1, 1, 1, 0])
    hm, w = CODEC.encode(joints, vis)
    assert hm.shape == (4, 64, 48) and w.shape == (4, 1)
    assert hm[0, 15, 25] == pytest.approx(1.0)  # round(60/4)=15, round(100/4)=25
    assert hm[0].sum() == pytest.approx(2 * np.pi * 4, rel=0.02)  # full Gaussian mass
    assert w[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]  # outside and invisible get weight 0
    assert hm[1, 1, 1] == pytest.approx(1.0) and hm[2].max() == 0 and hm[3].max() == 0


def test_decode_known_heatmaps_with_quarter_shift():
    hm = np.zeros((1, 2, 64, 48), np.float32)
    hm[0, 0, 20, 10] = 1.0
    hm[0, 0, 20, 11] = 0.5  # right neighbour higher → +0.25 in x
    hm[0, 0, 19, 10] = 0.5  # upper neighbour higher → -0.25 in y
    hm[0, 1, 0, 47] = 0.7  # border: no shift
    coords, maxvals = CODEC.decode(hm)
    np.testing.assert_allclose(coords[0, 0], [10.25, 19.75])
    np.testing.assert_allclose(coords[0, 1], [47, 0])
    np.testing.assert_allclose(maxvals[0, :, 0], [1.0, 0.7])
    coords, _ = CODEC.decode(hm, post_process=False)
    np.testing.assert_allclose(coords[0, 0], [10, 20])


def test_non_positive_heatmap_gives_zero_coords():
    hm = -np.ones((1, 1, 8, 8), np.float32)
    hm[0, 0, 3, 5] = -0.5
    coords, maxvals = get_max_preds(hm)
    assert coords.tolist() == [[[0.0, 0.0]]] and maxvals[0, 0, 0] == -0.5


def test_round_trip_to_image_within_quantisation():
    rng = np.random.default_rng(0)
    center, scale = np.array([[300.0, 200.0]]), np.array([[1.2, 1.6]])
    from trainers.data.transforms import affine_points, get_affine_transform

    image_pts = center[0] + rng.uniform(-100, 100, (17, 2))
    m = get_affine_transform(center[0], scale[0], 0, (192, 256))
    hm, _ = CODEC.encode(affine_points(image_pts, m), np.ones(17))
    back, conf = CODEC.decode_to_image(hm[None], center, scale)
    # one heatmap pixel = 4 input px = 4 * 240 / 192 image px; rounding error ≤ half of it per axis
    assert np.abs(back[0] - image_pts).max() <= 0.5 * 4 * 240 / 192 + 1e-3
    assert np.all(conf > 0.99)


def test_flip_back_matches_encoding_of_flipped_joints():
    codec = HeatmapCodec((64, 48), (16, 12), sigma=1.0)
    rng = np.random.default_rng(2)
    joints = rng.uniform(8, 40, (17, 2))
    hm, _ = codec.encode(joints, np.ones(17))
    # what a perfect model outputs on the mirrored input
    mirrored = joints.copy()
    mirrored[:, 0] = 48 - 1 - mirrored[:, 0]
    # channel j of the mirrored image shows the mirror of joint perm[j] (left ↔ right)
    hm_flipped, _ = codec.encode(mirrored[COCO.flip_permutation()], np.ones(17))
    restored = flip_back(torch.from_numpy(hm_flipped)[None], COCO.flip_pairs, shift=True)[0]
    c0, _ = get_max_preds(hm[None])
    c1, _ = get_max_preds(restored.numpy()[None])
    assert np.abs(c0 - c1).max() <= 1.0
    # unshifted flip lands further off on average: the shift is what HRNet uses it for
    unshifted = flip_back(torch.from_numpy(hm_flipped)[None], COCO.flip_pairs, shift=False)[0]
    c2, _ = get_max_preds(unshifted.numpy()[None])
    assert np.abs(c0 - c1)[..., 0].mean() <= np.abs(c0 - c2)[..., 0].mean()


def test_flip_back_swaps_pairs():
    hm = torch.zeros(1, 17, 4, 4)
    hm[0, 5, 1, 0] = 1.0  # left shoulder at x=0
    out = flip_back(hm, COCO.flip_pairs, shift=False)
    assert out[0, 6, 1, 3] == 1.0 and out[0, 5].sum() == 0


def windowed_reference(joints, hm_size, stride, sigma):
    """HRNet's per-joint windowed Gaussian, written as a plain loop."""
    h, w = hm_size
    r = int(3 * sigma)
    out = np.zeros((len(joints), h, w), np.float32)
    for k, (x, y) in enumerate(joints):
        mx, my = int(x / stride + 0.5), int(y / stride + 0.5)
        for yy in range(max(0, my - r), min(h, my + r + 1)):
            for xx in range(max(0, mx - r), min(w, mx + r + 1)):
                out[k, yy, xx] = np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sigma ** 2))
    return out


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_encode_matches_windowed_reference(sigma):
    rng = np.random.default_rng(4)
    joints = rng.uniform(-10, 200, (17, 2))
    codec = HeatmapCodec((256, 192), (64, 48), sigma)
    hm, w = codec.encode(joints, np.ones(17))
    ref = windowed_reference(joints, (64, 48), 4, sigma)
    np.testing.assert_allclose(hm, ref, atol=1e-6)
    assert np.all((w[:, 0] == 0) == (ref.reshape(17, -1).max(1) == 0))
