"""The vectorised epoch geometry against HRNet's per-sample procedure.

The reference below is ``JointsDataset.__getitem__``'s augmentation as HRNet writes it, built
from the per-sample helpers of :mod:`trainers.data.transforms` (each tested against HRNet's own
construction in tests/test_transforms.py): half body, scale/rotation jitter, flip of the joints
with the image width, the box's matrix around the mirrored centre, the image mirrored before
the warp. It consumes the same random draws, from the end of each sample's row.
"""
import cv2
import numpy as np
import pytest
import torch

from search_space.joints import COCO
from tests.conftest import tiny_config
from trainers.data.codec import HeatmapCodec
from trainers.data.epoch_geometry import (NORMAL_DRAWS, UNIFORM_DRAWS, Augmentation, RecordArrays,
                                          epoch_geometry)
from trainers.data.heatmap_targets import BatchTargets
from trainers.data.registry import build_dataset
from trainers.data.transforms import (affine_points, fliplr_joints, get_affine_transform,
                                      half_body_center_scale, random_scale_rotation)


class PopDraws:
    """A sample's row of draws, handed out from the end (the order the dataset consumes)."""

    def __init__(self, uniform, normal):
        self.u, self.z = list(uniform), list(normal)

    def random(self):
        return self.u.pop()

    def standard_normal(self):
        return self.z.pop()


def hrnet_sample(center, scale, joints, visible, aug, aspect, width, out_w_h, rng):
    """One sample as HRNet computes it: (center, scale, rotation, flipped, joints in the crop,
    visible, matrix of the mirrored image)."""
    joints, visible = joints.copy(), visible.copy()
    center, scale = center.copy(), scale.copy()
    if (aug.prob_half_body > 0 and np.sum(visible > 0) > aug.num_joints_half_body
            and rng.random() < aug.prob_half_body):
        half = half_body_center_scale(joints, visible, aug.upper_body, aspect, rng)
        if half is not None:
            center, scale = half
    s, rotation = random_scale_rotation(rng, aug.scale_factor, aug.rotation_factor,
                                        aug.rotation_prob)
    scale = scale * s
    flipped = aug.flip and rng.random() <= 0.5
    if flipped:
        pairs = tuple((a, b) for a, b in enumerate(aug.flip_permutation) if a < b)
        joints, visible = fliplr_joints(joints, visible, width, pairs)
        center[0] = width - center[0] - 1
    matrix = get_affine_transform(center, scale, rotation, out_w_h)
    joints_in = affine_points(joints, matrix) * (visible[:, None] > 0)
    return center, scale, rotation, flipped, joints_in, visible, matrix


def coco_augmentation(**changes):
    knobs = dict(prob_half_body=0.3, num_joints_half_body=8, upper_body=COCO.upper_body,
                 lower_body=COCO.lower_body, scale_factor=0.35, rotation_factor=45.0,
                 rotation_prob=0.6, flip=True, flip_permutation=COCO.flip_permutation())
    knobs.update(changes)
    return Augmentation(**knobs)


def random_records(n, k, seed):
    rng = np.random.default_rng(seed)
    center = rng.uniform(40, 260, (n, 2)).astype(np.float32)
    scale = rng.uniform(0.3, 1.5, (n, 2)).astype(np.float32)
    joints = (center[:, None] + rng.normal(0, 40, (n, k, 2))).astype(np.float32)
    visible = (rng.random((n, k)) < rng.uniform(0.2, 1.0, (n, 1))).astype(np.float32)
    joints *= visible[..., None]
    return RecordArrays(center, scale, joints, visible)


@pytest.mark.parametrize("aug", [coco_augmentation(), coco_augmentation(prob_half_body=1.0),
                                 coco_augmentation(flip=False, rotation_prob=1.0)])
def test_epoch_geometry_is_hrnets_per_sample_augmentation(aug):
    n, width, out_w_h = 400, 320, (48, 64)
    arrays = random_records(n, 17, seed=3)
    gen = np.random.default_rng(11)
    uniform, normal = gen.random((n, UNIFORM_DRAWS)), gen.standard_normal((n, NORMAL_DRAWS))
    geo = epoch_geometry(arrays, (64, 48), 0.75, aug, uniform, normal)
    seen = {"half": 0, "flip": 0, "rotated": 0}
    for i in range(n):
        c, s, r, f, j, v, m = hrnet_sample(arrays.center[i], arrays.scale[i], arrays.joints[i],
                                           arrays.visible[i], aug, 0.75, width, out_w_h,
                                           PopDraws(uniform[i], normal[i]))
        seen["half"] += not np.array_equal(c, arrays.center[i]) and not f
        seen["flip"] += f
        seen["rotated"] += r != 0.0
        assert geo.flipped[i] == f and geo.rotation[i] == r  # the same draws, the same decisions
        assert np.array_equal(geo.scale[i], s)  # float32 as HRNet computes it, bit for bit
        crop = geo.crop(i, width)
        assert np.array_equal(crop.center, c) and np.array_equal(crop.visible, v)
        mirror = np.array([[-1.0, 0, width - 1], [0, 1, 0], [0, 0, 1]])
        assert np.array_equal(crop.image_matrix, m @ mirror if f else m)
        assert np.array_equal(crop.joints, j)
    assert seen["flip"] > 0 if aug.flip else seen["flip"] == 0
    assert seen["rotated"] > 0
    assert seen["half"] > (n // 4 if aug.prob_half_body == 1.0 else 0)


def test_evaluation_geometry_is_the_plain_box():
    arrays = random_records(30, 16, seed=5)
    geo = epoch_geometry(arrays, (64, 64), 1.0)
    for i in range(30):
        m = get_affine_transform(arrays.center[i], arrays.scale[i], 0.0, (64, 64))
        crop = geo.crop(i, 300)
        assert np.array_equal(crop.image_matrix, m) and not geo.flipped[i]
        assert np.array_equal(crop.joints, affine_points(arrays.joints[i], m)
                              * (arrays.visible[i][:, None] > 0))


def test_dataset_crops_equal_hrnets_mirrored_warp(coco_root):
    """The served crop is HRNet's: the image mirrored (``image[:, ::-1]``), then warped with the
    box around the mirrored centre; joints and targets as HRNet encodes them."""
    cfg = tiny_config("coco", coco_root)
    ds = build_dataset(cfg, "train")
    codec = HeatmapCodec((64, 48), (16, 12), cfg.model.sigma)
    flips = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            sample = ds[i]
            image = cv2.imread(ds.records[i].image)
            geo = ds.sample_geometry(i, image.shape[1])
            if geo.flipped:
                flips += 1
                image = np.ascontiguousarray(image[:, ::-1])
            m = get_affine_transform(sample["center"], sample["scale"], sample["rotation"], (48, 64))
            ref = cv2.warpAffine(image, m, (48, 64), flags=cv2.INTER_LINEAR)
            # the mirror composed into one warp: OpenCV rounds the source coordinates to 1/32 px,
            # so a pixel may land one sub-pixel step from the two-pass crop
            diff = np.abs(ref.astype(int) - sample["image"].astype(int))
            assert (diff > 0).mean() < 0.01 and diff.max() <= 8
            rec = ds.records[i]
            joints = rec.joints.copy()
            vis = rec.visible.copy()
            if geo.flipped:
                joints, vis = fliplr_joints(joints, vis, image.shape[1], COCO.flip_pairs)
            ref_joints = affine_points(joints, m) * (vis[:, None] > 0)
            assert np.array_equal(sample["joints"], ref_joints)
            heatmaps, weights = BatchTargets(codec)(sample)
            ref_heatmaps, ref_weights = codec.encode(ref_joints, vis)
            assert np.array_equal(weights, ref_weights) and np.array_equal(heatmaps, ref_heatmaps)
    assert flips > 0


def test_batch_targets_equal_the_per_sample_encoder():
    """The device encoder gives HRNet's targets (the numpy per-sample encoder, itself tested
    against the windowed original in tests/test_codec.py) bit for bit, joints off the map,
    unlabelled and on the border included."""
    codec = HeatmapCodec((64, 48), (16, 12), 2.0)
    rng = np.random.default_rng(0)
    joints = rng.uniform(-40, 90, (6, 17, 2)).astype(np.float32)
    joints[0, :4] = [[0, 0], [47.9, 63.9], [-26.1, 5], [71.9, 30]]  # corners, just off the map
    visible = (rng.random((6, 17)) < 0.7).astype(np.float32)
    heatmaps, weights = BatchTargets(codec)({"joints": torch.from_numpy(joints),
                                             "visible": torch.from_numpy(visible)})
    assert heatmaps.shape == (6, 17, 16, 12) and weights.shape == (6, 17, 1)
    for i in range(6):
        ref_h, ref_w = codec.encode(joints[i], visible[i])
        assert np.array_equal(heatmaps[i].numpy(), ref_h) and np.array_equal(weights[i].numpy(), ref_w)
    assert 0 < float(weights.mean()) < 0.7  # some weighted, some cut by the border


def test_the_table_follows_the_train_flag_and_the_epoch(coco_root):
    """The cached table is the current epoch's and mode's: switching ``train`` off serves the
    plain boxes, and a new epoch new crops."""
    cfg = tiny_config("coco", coco_root)
    ds, plain = build_dataset(cfg, "train"), build_dataset(cfg, "train", train=False)
    augmented = [ds[i]["image"] for i in range(len(ds))]
    ds.train = False
    assert all(np.array_equal(ds[i]["image"], plain[i]["image"]) for i in range(len(ds)))
    ds.train = True
    assert all(np.array_equal(ds[i]["image"], augmented[i]) for i in range(len(ds)))
    ds.set_epoch(1)
    assert not all(np.array_equal(ds[i]["image"], augmented[i]) for i in range(len(ds)))
