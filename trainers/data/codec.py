"""Keypoints ↔ heatmaps: the Gaussian (MSRA) codec shared by targets and decoding.

Encoding follows Xiao et al. "Simple Baselines" / HRNet: an unnormalised Gaussian of std
``sigma`` (heatmap pixels) at the rounded joint position, target weight 0 for invisible joints
or joints whose Gaussian lies outside the heatmap. Decoding takes the argmax, shifts it a quarter
pixel toward the higher neighbour, and maps it back to the image through the inverse affine.

Shape legend: N samples, K joints, H×W heatmap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trainers.data.transforms import affine_points, get_affine_transform

__all__ = ["HeatmapCodec", "get_max_preds", "flip_back", "expand_targets"]


def expand_targets(target_x: Any, target_y: Any) -> Any:
    """Heatmaps (..., K, H, W) from their separable factors (..., K, W) and (..., K, H).

    The MSRA Gaussian is a product of a row and a column profile, so the heatmaps are one
    broadcast multiply of the two (on the training device, for a whole batch, in
    :mod:`trainers.data.heatmap_targets`). Works on numpy arrays and torch tensors alike.
    """
    return target_y[..., :, None] * target_x[..., None, :]


@dataclass(frozen=True)
class HeatmapCodec:
    """Gaussian heatmap codec.

    Args:
        input_size: (height, width) of the network input.
        heatmap_size: (height, width) of the heatmaps.
        sigma: Gaussian std in heatmap pixels.
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float = 2.0

    @classmethod
    def for_model(cls, model: Any) -> "HeatmapCodec":
        """The codec of a network: a config's ``model`` section, or deployment metadata (anything
        with ``input_size``, ``heatmap_size`` and ``sigma``)."""
        return cls(tuple(model.input_size), tuple(model.heatmap_size), model.sigma)

    def __post_init__(self) -> None:
        # the Gaussian profile at integer offsets -(r+1)..r+1 (zero beyond r), computed once:
        # exp(d² · -1/(2σ²)) in float32, the very values a per-sample evaluation gives
        radius = int(self.sigma * 3)
        d = np.arange(-radius - 1, radius + 2).astype(np.float32)
        inv = np.float32(-1.0 / (2 * self.sigma ** 2))
        profile = np.exp(d * d * inv) * (np.abs(d) <= radius)
        hm_h, hm_w = self.heatmap_size
        tables = (radius, profile, np.arange(hm_w)[None, :], np.arange(hm_h)[None, :])
        object.__setattr__(self, "_tables", tables)  # frozen dataclass: set once here
        object.__setattr__(self, "_stride", np.array([self.input_size[1] / hm_w,
                                                      self.input_size[0] / hm_h]))
        object.__setattr__(self, "_extent", np.array([hm_w, hm_h]))

    @property
    def gaussian_profile(self) -> tuple[int, np.ndarray]:
        """The window radius ``r`` and the float32 profile at offsets -(r+1)..r+1 (zero at the
        two ends): what :meth:`encode_separable` looks the Gaussian up in."""
        return self._tables[0], self._tables[1]

    @property
    def stride(self) -> np.ndarray:
        """Input pixels per heatmap pixel, (x, y)."""
        return self._stride

    def encode(self, joints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets for one sample.

        Args:
            joints: (K, 2) joint positions in input-image pixels.
            visible: (K,) visibility (>0 means labelled).

        Returns:
            heatmaps (K, H, W) float32 and target weights (K, 1) float32.
        """
        target_x, target_y, weights = self.encode_separable(joints, visible)
        return expand_targets(target_x, target_y), weights

    def encode_separable(self, joints: np.ndarray, visible: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Targets for one sample as separable factors (see :func:`expand_targets`).

        Returns:
            the row profiles (K, W), the column profiles (K, H) — zero for joints of weight 0 —
            and the target weights (K, 1), all float32.
        """
        num_joints = len(joints)
        radius, profile, cols, rows = self._tables
        weights = (np.asarray(visible, dtype=np.float32).reshape(num_joints, -1)[:, :1] > 0)
        weights = weights.astype(np.float32)
        # integer centre as in HRNet: int(x / stride + 0.5)
        mu = (np.asarray(joints[:, :2], dtype=np.float64) / self._stride + 0.5).astype(np.int64)
        # a joint whose (2r+1)² window misses the heatmap entirely gets weight 0
        outside = ((mu - radius >= self._extent) | (mu + radius + 1 < 0)).any(axis=1)
        weights[outside, 0] = 0.0
        # separable Gaussian, truncated to the window |x - mu| <= r like the windowed original:
        # looked up by offset (take's clip mode sends every offset beyond r to a zero end)
        gx = profile.take(cols - mu[:, :1] + (radius + 1), mode="clip")
        gy = profile.take(rows - mu[:, 1:] + (radius + 1), mode="clip")
        gy *= weights  # zero rows for unlabelled joints
        return gx, gy, weights

    def decode(self, heatmaps: np.ndarray, post_process: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions in heatmap pixels.

        Args:
            heatmaps: (N, K, H, W).
            post_process: apply the quarter-pixel shift toward the higher neighbour.

        Returns:
            coords (N, K, 2) in heatmap pixels and maxvals (N, K, 1).
        """
        heatmaps = np.asarray(heatmaps, dtype=np.float32)
        coords, maxvals = get_max_preds(heatmaps)
        if post_process:
            n, k, h, w = heatmaps.shape
            px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
            py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
            inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
            ni, ki = np.nonzero(inside)
            x, y = px[ni, ki], py[ni, ki]
            dx = heatmaps[ni, ki, y, x + 1] - heatmaps[ni, ki, y, x - 1]
            dy = heatmaps[ni, ki, y + 1, x] - heatmaps[ni, ki, y - 1, x]
            coords[ni, ki, 0] += np.sign(dx) * 0.25
            coords[ni, ki, 1] += np.sign(dy) * 0.25
        return coords, maxvals

    def to_image(self, coords: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Map heatmap coords (N, K, 2) back to image pixels through each box (N, 2), (N, 2)."""
        out = np.zeros_like(coords, dtype=np.float32)
        hm_h, hm_w = self.heatmap_size
        for i in range(len(coords)):
            inv = get_affine_transform(center[i], scale[i], 0.0, (hm_w, hm_h), inverse=True)
            out[i] = affine_points(coords[i], inv)
        return out

    def decode_to_image(self, heatmaps: np.ndarray, center: np.ndarray, scale: np.ndarray,
                        post_process: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Decode (N, K, H, W) heatmaps to (N, K, 2) image coords and (N, K, 1) confidences."""
        coords, maxvals = self.decode(heatmaps, post_process)
        return self.to_image(coords, center, scale), maxvals


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax of each heatmap (N, K, H, W) → coords (N, K, 2) as (x, y), maxvals (N, K, 1).

    Joints whose maximum is not positive get coordinates (0, 0).
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2).astype(np.float32)
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    coords *= (maxvals > 0.0)
    return coords, maxvals


def flip_back(heatmaps: Any, flip_pairs: tuple[tuple[int, int], ...], shift: bool = True) -> Any:
    """Undo a horizontal input flip on predicted heatmaps (N, K, H, W): a NumPy array or a
    torch tensor (indexing only, so this module needs no torch).

    Mirrors the width axis, swaps left/right joints and, with ``shift``, moves the result one
    pixel right (HRNet's ``SHIFT_HEATMAP``: the flipped argmax lands one pixel left of the
    unflipped one because ``x' = W - 1 - x`` at input resolution is not integral at 1/4).
    """
    width = heatmaps.shape[-1]
    # output column j reads mirrored column j (j - 1 with the shift; column 0 repeats)
    cols = [width - 1 - (max(j - 1, 0) if shift else j) for j in range(width)]
    perm = list(range(heatmaps.shape[1]))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return heatmaps[:, perm][..., cols]
