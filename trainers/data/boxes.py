"""Person boxes for the single-image commands (``visualize.demo``, ``trainers.deploy.infer``): a COCO
detection-results JSON, or the whole image. NumPy-free and torch-free."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from search_space.errors import UserInputError

__all__ = ["read_person_boxes"]

logger = logging.getLogger(__name__)


def read_person_boxes(path: str | Path | None, image_shape: tuple[int, ...],
                      image_id: int | None = None, score_thr: float = 0.5) -> list[list[float]]:
    """``[x, y, w, h]`` boxes from a COCO results-format JSON (a list of ``{bbox, score}``,
    optionally ``image_id``: with ``image_id`` given only that image's boxes), those scoring at
    least ``score_thr``; without ``path`` the whole image (``image_shape`` = (H, W, ...)).

    Boxes of zero or negative width or height are skipped, counted in a warning.

    Raises:
        UserInputError: an unreadable file, an entry without a 4-number ``bbox``, or an
            ``image_id`` that no entry has.
    """
    if not path:
        return [[0.0, 0.0, float(image_shape[1]), float(image_shape[0])]]
    try:
        with open(path) as f:
            dets = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise UserInputError(str(path), f"cannot read detections ({err})") from None
    if not isinstance(dets, list):
        raise UserInputError(str(path), "expected a JSON list of {bbox, score}")
    out, empty, matched = [], [], 0
    for i, d in enumerate(dets):
        box = d.get("bbox") if isinstance(d, dict) else None
        if not isinstance(box, list) or len(box) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in box):
            raise UserInputError(str(path), "needs bbox: [x, y, w, h] (finite numbers)", field=f"[{i}]")
        score = d.get("score", 1.0)
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise UserInputError(str(path), f"score must be a finite number, got {score!r}",
                                 field=f"[{i}]")
        if image_id is not None and d.get("image_id") != image_id:
            continue
        matched += 1
        if box[2] <= 0 or box[3] <= 0:
            empty.append(i)
            continue
        if score >= score_thr:
            out.append([float(v) for v in box])
    if image_id is not None and not matched:
        ids = sorted({d.get("image_id") for d in dets if isinstance(d, dict)}, key=str)
        raise UserInputError(str(path), f"no box has image_id {image_id} (the file has "
                             f"{', '.join(map(str, ids[:8]))}{', …' if len(ids) > 8 else ''})",
                             field="--image-id")
    if empty:
        logger.warning("%s: %d box(es) of zero or negative width or height skipped (first: [%d])",
                       path, len(empty), empty[0])
    return out
