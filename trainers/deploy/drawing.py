"""Drawing on images with OpenCV: keypoints and skeletons (COCO or MPII), heatmap grids.

Used by the training callbacks (``--visualize``/``--debug``), ``test.py --visualize`` and the
demos of :mod:`visualize`.

Shape legend: K joints; keypoints (K, 3) as x, y, confidence in image pixels; heatmaps (K, h, w);
crops uint8 (3, H, W) as the loaders give them.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from pathlib import Path

from search_space.joints import KeypointSpec
from trainers.atomic import atomic_path
from search_space.errors import UserInputError
from trainers.cli import existing_file, finite_float, output_file
from trainers.report import format_table

__all__ = ["draw_skeleton", "side_colors", "heatmap_grid", "crop_to_bgr", "save_image",
           "draw_people", "add_image_arguments", "check_image_arguments", "IMAGE_SUFFIXES",
           "VIDEO_OUT_SUFFIXES"]

#: the image files the single-image commands write (OpenCV's encoders)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

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


def crop_to_bgr(crop: np.ndarray) -> np.ndarray:
    """A loader crop (uint8 H×W×3, OpenCV's BGR order) as an image to draw on (a copy)."""
    if crop.ndim != 3 or crop.shape[-1] != 3:
        raise ValueError(f"expected a loader crop (H, W, 3), got shape {crop.shape}")
    return np.ascontiguousarray(crop).copy()


def _peaks(heatmaps: np.ndarray, stride: float) -> np.ndarray:
    """(K, h, w) → (K, 3) crop-pixel argmax positions and peak values."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1)
    idx = flat.argmax(1)
    return np.stack([(idx % w + 0.5) * stride - 0.5, (idx // w + 0.5) * stride - 0.5,
                     flat.max(1)], axis=1)


def heatmap_grid(image_bgr: np.ndarray, heatmaps: np.ndarray, spec: KeypointSpec,
                 columns: int = 6, threshold: float = 0.2) -> np.ndarray:
    """The crop with the skeleton decoded from ``heatmaps`` (K, h, w), then a tile per joint."""
    h, w = image_bgr.shape[:2]
    stride = w / heatmaps.shape[-1]
    first = draw_skeleton(image_bgr.copy(), _peaks(heatmaps, stride), spec, threshold)
    tiles = [first]
    for j in range(heatmaps.shape[0]):
        hm = np.clip(heatmaps[j], 0, 1)
        hm = cv2.resize((hm * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        tile = cv2.addWeighted(image_bgr, 0.5, cv2.applyColorMap(hm, cv2.COLORMAP_JET), 0.5, 0)
        cv2.putText(tile, spec.names[j][:12], (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(image_bgr))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def save_image(path: Path, image: np.ndarray) -> None:
    """Write an image atomically."""
    ok, data = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise OSError(f"cannot encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


def draw_people(image: np.ndarray, boxes: list[list[float]], people: np.ndarray,
                spec: KeypointSpec, threshold: float, out: str, what: str = "") -> str:
    """Draw each person's keypoints (P, K, 3) above ``threshold`` on the BGR ``image``, write it
    to ``out`` atomically (.jpg or .png), and return the report the single-image commands
    print: a row per person, "``what``drew N person(s) on OUT", and a note when no joint passed
    the threshold (with the highest score seen).

    Raises:
        UserInputError: an extension OpenCV cannot encode.
    """
    rows = []
    for i, (box, kpts) in enumerate(zip(boxes, people)):
        draw_skeleton(image, kpts, spec, threshold)
        rows.append([i, [round(v) for v in box], int((kpts[:, 2] > threshold).sum()),
                     float(kpts[:, 2].mean())])
    suffix = "." + out.rsplit(".", 1)[-1] if "." in out else ".png"
    ok, data = cv2.imencode(suffix, image)
    if not ok:
        raise UserInputError(out, "unsupported image extension (use .jpg or .png)")
    with atomic_path(out, suffix=suffix) as tmp:
        tmp.write_bytes(data.tobytes())
    lines = [format_table(["person", "box", f"joints > {threshold}", "mean confidence"], rows),
             f"{what}drew {len(rows)} person(s) on {out}"]
    if rows and not any(r[2] for r in rows):
        best = max(float(k[:, 2].max()) for k in people)
        lines.append(f"note: no joint passed --kpt-thr {threshold} (the highest score was "
                     f"{best:.3f}): nothing was drawn; lower --kpt-thr to see the predictions")
    return "\n".join(lines)


#: the video files the commands write (``trainers.deploy.video.VIDEO_SUFFIXES``)
VIDEO_OUT_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments the image and video commands share (``trainers.infer``,
    ``visualize.demo``): the image or video, the output, person boxes and the thresholds, the
    flip test."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image")
    source.add_argument("--video", help="a video (OpenCV reads it); person boxes from --boxes "
                        "(image_id = frame index from 0) or OpenCV's HOG people detector")
    p.add_argument("--out", required=True, help="output image (" + ", ".join(IMAGE_SUFFIXES) +
                   ") or, with --video, video (" + ", ".join(VIDEO_OUT_SUFFIXES) + ")")
    p.add_argument("--boxes", help="detection JSON (COCO results format)")
    p.add_argument("--image-id", type=int, help="use only the boxes of this image_id")
    p.add_argument("--score-thr", type=finite_float, default=0.5, help="minimum box score")
    p.add_argument("--kpt-thr", type=finite_float, default=0.3,
                   help="minimum keypoint confidence drawn")
    p.add_argument("--no-flip", action="store_true", help="no flip test")


def check_image_arguments(args: argparse.Namespace) -> None:
    """Before any work: the input image (or video) exists and ``--out`` can be written as one."""
    if getattr(args, "video", None):
        existing_file(args.video, "--video")
        output_file(args.out, "--out", VIDEO_OUT_SUFFIXES)
        if args.image_id is not None:
            raise UserInputError("argument", "--image-id is for an image; a video's boxes file "
                                 "gives each frame's boxes by image_id", field="--image-id")
        return
    existing_file(args.image, "--image")
    output_file(args.out, "--out", IMAGE_SUFFIXES)
