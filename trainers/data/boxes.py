"""Person boxes for the single-image commands (``visualize.demo``, ``trainers.deploy.infer``): a COCO
detection-results JSON, or the whole image. NumPy-free and torch-free."""
from __future__ import annotations

import json
from pathlib import Path

from search_space.errors import UserInputError

__all__ = ["read_person_boxes"]


def read_person_boxes(path: str | Path | None, image_shape: tuple[int, ...],
                      image_id: int | None = None, score_thr: float = 0.5) -> list[list[float]]:
    """``[x, y, w, h]`` boxes from a COCO results-format JSON (a list of ``{bbox, score}``,
    optionally ``image_id``: with ``image_id`` given only that image's boxes), those scoring at
    least ``score_thr``; without ``path`` the whole image (``image_shape`` = (H, W, ...)).

    Raises:
        UserInputError: an unreadable file, or an entry without a 4-number ``bbox``.
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
    out = []
    for i, d in enumerate(dets):
        box = d.get("bbox") if isinstance(d, dict) else None
        if not isinstance(box, list) or len(box) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
            raise UserInputError(str(path), "needs bbox: [x, y, w, h]", field=f"[{i}]")
        if image_id is not None and d.get("image_id") != image_id:
            continue
        if d.get("score", 1.0) >= score_thr:
            out.append([float(v) for v in box])
    return out
