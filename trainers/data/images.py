"""Reading images safely, and counting the ones that could not be read.

A corrupted or missing image must never crash an epoch half-way nor silently change numbers:
the dataset returns a :class:`SkippedSample`, :func:`trainers.data.loader.collate_pose_batch`
drops it from the batch and records its path, and :class:`SkipCounter` logs the count at the end
of the epoch. NumPy and OpenCV only: torch-free inference reads images with it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["read_image", "ImageReadError", "SkippedSample", "SkipCounter"]

logger = logging.getLogger(__name__)


class ImageReadError(Exception):
    """An image file that cannot be used (missing, empty, truncated, undecodable): ``path`` and
    ``reason``, shown as ``PATH: REASON``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def read_image(path: str | Path, color_rgb: bool = True) -> np.ndarray:
    """Read an image as an (H, W, 3) uint8 array, RGB if ``color_rgb`` else BGR, in its stored
    pixel frame (EXIF orientation tags are not applied, as COCO's annotations assume).

    Raises:
        ImageReadError: missing, empty, truncated JPEG (no end-of-image marker) or undecodable.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageReadError(path, f"cannot read ({err.strerror or err})") from None
    if data.size == 0:
        raise ImageReadError(path, "empty file")
    if data.size > 2 and data[0] == 0xFF and data[1] == 0xD8:
        # A JPEG cut short still half-decodes in OpenCV (grey bottom); refuse it instead.
        tail = data[-64:].tobytes().rstrip(b"\x00")
        if b"\xff\xd9" not in tail[-16:]:
            raise ImageReadError(path, "truncated JPEG (no end-of-image marker)")
    # the stored pixel frame: COCO's annotations (and HRNet's reader) ignore EXIF orientation,
    # which IMREAD_COLOR alone would apply (a tagged photo would be cropped rotated)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ImageReadError(path, "not a decodable image")
    if color_rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


@dataclass(frozen=True)
class SkippedSample:
    """What a dataset returns in place of a sample whose image could not be read."""

    path: str
    reason: str


class SkipCounter:
    """Accumulate skipped images over an epoch and log one warning with the count."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def update(self, batch: dict[str, Any]) -> None:
        self.reasons.extend(batch.get("skipped", []))

    @property
    def count(self) -> int:
        return len(self.reasons)

    def report(self, what: str) -> int:
        """Log the count for ``what`` (e.g. ``"epoch 3 train"``), reset, and return the count."""
        count = self.count
        if count:
            shown = "; ".join(self.reasons[:3]) + (" ..." if count > 3 else "")
            logger.warning("%s: skipped %d unreadable image(s): %s", what, count, shown)
        self.reasons = []
        return count
