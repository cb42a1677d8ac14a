"""Geometry of top-down pose estimation: boxes as center/scale, affine warps, flips, half body.

Conventions follow HRNet (Sun et al., CVPR 2019, leoxiaobin/deep-high-resolution-net.pytorch):
a person box is a ``center`` (x, y) in pixels and a ``scale`` (sw, sh) in units of
``PIXEL_STD = 200`` pixels; sizes passed to OpenCV are (width, height).

Shape legend: K joints; points arrays are (..., 2) as (x, y).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "PIXEL_STD", "box_to_center_scale", "get_affine_transform", "affine_points", "warp_image",
    "person_crops", "fliplr_joints", "half_body_center_scale", "random_scale_rotation",
]

PIXEL_STD = 200.0


def box_to_center_scale(box: np.ndarray | list[float], aspect_ratio: float,
                        margin: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Turn an ``[x, y, w, h]`` box into HRNet's (center, scale).

    The box is grown to ``aspect_ratio`` (= width / height of the network input) and then
    enlarged by ``margin`` (1.25 in HRNet; PNFS's ``--margin``).
    """
    x, y, w, h = (float(v) for v in box[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32)
    if center[0] != -1:
        scale = scale * margin
    return center, scale


def get_affine_transform(center: np.ndarray, scale: np.ndarray, rotation: float,
                         output_size: tuple[int, int], inverse: bool = False) -> np.ndarray:
    """The 2×3 matrix that maps the box (center, scale, rotation) onto ``output_size``.

    Same map as HRNet's three-point construction, written in closed form: the box width
    ``scale[0] * 200`` maps to the output width, the box center to the output center, and the
    content is rotated by ``rotation`` degrees (counter-clockwise in the output for positive
    angles). ``output_size`` is (width, height). ``inverse`` gives output → image.
    """
    src_w = float(scale[0]) * PIXEL_STD
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    k = dst_w / src_w
    rad = math.radians(rotation)
    cs, sn = math.cos(rad), math.sin(rad)
    cx, cy = float(center[0]), float(center[1])
    if not inverse:
        # y = dst_c + k * R(-rot) (x - center)
        a, b, c, d = k * cs, k * sn, -k * sn, k * cs
        tx = dst_w * 0.5 - (a * cx + b * cy)
        ty = dst_h * 0.5 - (c * cx + d * cy)
    else:
        # x = center + (1/k) * R(rot) (y - dst_c)
        a, b, c, d = cs / k, -sn / k, sn / k, cs / k
        tx = cx - (a * dst_w * 0.5 + b * dst_h * 0.5)
        ty = cy - (c * dst_w * 0.5 + d * dst_h * 0.5)
    return np.array([[a, b, tx], [c, d, ty]], dtype=np.float64)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine ``matrix`` to points of shape (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    out = pts @ matrix[:, :2].T + matrix[:, 2]
    return out.astype(np.float32)


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` (H, W, 3) with ``matrix`` to ``output_size`` (width, height), bilinear."""
    return cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])),
                          flags=cv2.INTER_LINEAR)


def person_crops(image_bgr: np.ndarray, boxes: list[list[float]], input_size: tuple[int, int],
                 margin: float, color_rgb: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test-time crops of ``test.py`` for person boxes ``[x, y, w, h]`` of one BGR image:
    uint8 (P, 3, H, W) in the network's channel order (RGB if ``color_rgb``), with each box's
    centre and scale (P, 2) for decoding."""
    h, w = input_size
    image = np.ascontiguousarray(image_bgr[:, :, ::-1] if color_rgb else image_bgr)
    crops, centers, scales = [], [], []
    for box in boxes:
        c, s = box_to_center_scale(box, w / h, margin)
        crops.append(warp_image(image, get_affine_transform(c, s, 0.0, (w, h)), (w, h)))
        centers.append(c)
        scales.append(s)
    return (np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)), np.stack(centers),
            np.stack(scales))


def fliplr_joints(joints: np.ndarray, visible: np.ndarray, width: int,
                  flip_pairs: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mirror joints (K, 2+) of an image ``width`` pixels wide and swap left/right labels."""
    perm = np.arange(len(joints))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    joints = joints[perm]  # fancy indexing copies
    visible = visible[perm]
    joints[:, 0] = width - joints[:, 0] - 1
    joints[:, :2] *= (visible.reshape(len(visible), -1)[:, :1] > 0)
    return joints, visible


def half_body_center_scale(joints: np.ndarray, visible: np.ndarray, upper_body: tuple[int, ...],
                           aspect_ratio: float, rng: np.random.Generator
                           ) -> tuple[np.ndarray, np.ndarray] | None:
    """HRNet's half-body crop: a box around the visible upper or lower body, ×1.5.

    Returns None when fewer than two joints of the chosen half are visible.
    """
    vis = visible.reshape(len(visible), -1)[:, 0] > 0
    upper = [j for j in range(len(joints)) if vis[j] and j in upper_body]
    lower = [j for j in range(len(joints)) if vis[j] and j not in upper_body]
    chosen = upper if (rng.random() < 0.5 and len(upper) > 2) else lower
    if len(chosen) < 2:
        chosen = upper
    if len(chosen) < 2:
        return None
    pts = joints[chosen, :2].astype(np.float32)
    center = pts.mean(axis=0)
    left_top, right_bottom = pts.min(axis=0), pts.max(axis=0)
    w, h = float(right_bottom[0] - left_top[0]), float(right_bottom[1] - left_top[1])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * 1.5
    return center, scale


def random_scale_rotation(rng: np.random.Generator, scale_factor: float, rotation_factor: float,
                          rotation_prob: float) -> tuple[float, float]:
    """HRNet's jitter: scale ×clip(N(1, sf), 1-sf, 1+sf); rotation clip(N(0, rf), ±2rf) w.p. p."""
    s = min(max(float(rng.standard_normal()) * scale_factor + 1, 1 - scale_factor), 1 + scale_factor)
    r = 0.0
    if rng.random() <= rotation_prob:
        r = min(max(float(rng.standard_normal()) * rotation_factor, -2 * rotation_factor),
                2 * rotation_factor)
    return s, r
