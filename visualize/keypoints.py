"""Drawing keypoints and skeletons (COCO or MPII) on images with OpenCV.

Shape legend: K joints; keypoints (K, 3) as x, y, confidence in image pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from trainers.data.joints import KeypointSpec

__all__ = ["draw_skeleton", "side_colors"]

_LEFT, _RIGHT, _CENTER = (255, 128, 0), (0, 128, 255), (0, 220, 0)  # BGR


def side_colors(spec: KeypointSpec) -> list[tuple[int, int, int]]:
    """A BGR colour per joint: left joints orange, right joints blue, others green."""
    colors = []
    for name in spec.names:
        if name.startswith(("left", "l_")):
            colors.append(_LEFT)
        elif name.startswith(("right", "r_")):
            colors.append(_RIGHT)
        else:
            colors.append(_CENTER)
    return colors


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, spec: KeypointSpec,
                  threshold: float = 0.3, radius: int | None = None) -> np.ndarray:
    """Draw limbs and joints whose confidence exceeds ``threshold`` on a BGR ``image`` (in place).

    Returns the image, for chaining.
    """
    h, w = image.shape[:2]
    radius = radius or max(2, int(round(min(h, w) / 150)))
    thickness = max(1, radius // 2 + 1)
    colors = side_colors(spec)
    pts = np.asarray(keypoints, dtype=np.float64)
    ok = pts[:, 2] > threshold
    for a, b in spec.skeleton:
        if ok[a] and ok[b]:
            color = colors[a] if colors[a] == colors[b] else _CENTER
            cv2.line(image, (int(pts[a, 0]), int(pts[a, 1])), (int(pts[b, 0]), int(pts[b, 1])),
                     color, thickness, cv2.LINE_AA)
    for j in np.nonzero(ok)[0]:
        cv2.circle(image, (int(pts[j, 0]), int(pts[j, 1])), radius, colors[j], -1, cv2.LINE_AA)
    return image
