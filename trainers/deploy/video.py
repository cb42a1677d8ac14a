"""Keypoints on a video, frame by frame, with OpenCV's reader and writer; torch-free.

Person boxes per frame come from a boxes file (COCO detection-results format, ``image_id`` = the
0-based frame index), or from OpenCV's built-in HOG people detector (Dalal & Triggs, CVPR 2005;
``cv2.HOGDescriptor_getDefaultPeopleDetector``; OpenCV 5 keeps it in the contrib build,
opencv-contrib-python-headless, which posenas installs: nothing to download), whose
boxes are merged by non-maximum suppression. The pose network is any callable
``predict(image_bgr, boxes) -> (P, K, 3)``: a torch model (``visualize.demo --video``) or an
exported ONNX model under onnxruntime (``trainers.infer --video``). The output video is written to
a temporary file beside ``--out`` and renamed into place when every frame is written, so a
failure never leaves a half-written file under the output name.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from tqdm import tqdm

from search_space.errors import UserInputError
from search_space.joints import KeypointSpec
from trainers.atomic import publish
from trainers.deploy.drawing import draw_skeleton
from trainers.report import format_table

__all__ = ["VIDEO_SUFFIXES", "HogPeopleDetector", "read_frame_boxes", "VideoSummary", "pose_video"]

logger = logging.getLogger(__name__)

#: containers the video commands write, with the FourCC OpenCV encodes them with
VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".mkv": "mp4v"}

Predict = Callable[[np.ndarray, list[list[float]]], np.ndarray]


class HogPeopleDetector:
    """OpenCV's HOG + linear SVM people detector, boxes ``[x, y, w, h]`` merged by NMS.

    Args:
        score_thr: the smallest SVM score kept (OpenCV's detection weights; 0 keeps every hit).
        nms_thr: IoU above which a lower-scored box is dropped.
        win_stride: the detection window's step (pixels); larger is faster and misses more.
    """

    def __init__(self, score_thr: float = 0.0, nms_thr: float = 0.45, win_stride: int = 8) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.score_thr, self.nms_thr, self.win_stride = score_thr, nms_thr, win_stride

    def __call__(self, image_bgr: np.ndarray) -> list[list[float]]:
        rects, weights = self.hog.detectMultiScale(image_bgr, winStride=(self.win_stride,) * 2,
                                                   padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        boxes = [[float(v) for v in r] for r in rects]
        scores = [float(w) for w in np.asarray(weights).reshape(-1)]
        keep = cv2.dnn.NMSBoxes(boxes, scores, self.score_thr, self.nms_thr)
        return [boxes[i] for i in np.asarray(keep).reshape(-1)]


def read_frame_boxes(path: str | Path, score_thr: float = 0.5) -> dict[int, list[list[float]]]:
    """Frame index → boxes ``[x, y, w, h]`` scoring at least ``score_thr``, from a JSON list of
    ``{image_id: frame, bbox, score}`` (COCO detection results, frames numbered from 0).

    Raises:
        UserInputError: an unreadable file or an entry without ``image_id`` and a 4-number box.
    """
    try:
        with open(path) as f:
            dets = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserInputError(str(path), f"cannot read the boxes ({err})", field="--boxes") from None
    if not isinstance(dets, list):
        raise UserInputError(str(path), "expected a JSON list of {image_id: frame, bbox, score}",
                             field="--boxes")
    frames: dict[int, list[list[float]]] = defaultdict(list)
    for i, d in enumerate(dets):
        box = d.get("bbox") if isinstance(d, dict) else None
        frame = d.get("image_id") if isinstance(d, dict) else None
        if (not isinstance(frame, int) or frame < 0 or not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) for v in box)):
            raise UserInputError(str(path), "needs image_id (the frame, from 0) and bbox [x, y, "
                                 "w, h]", field=f"[{i}]")
        if float(d.get("score", 1.0)) >= score_thr and box[2] > 0 and box[3] > 0:
            frames[frame].append([float(v) for v in box])
    return dict(frames)


@dataclass
class VideoSummary:
    """What :func:`pose_video` did."""

    frames: int
    people: int
    detector: str
    pose_ms_per_frame: float
    frames_per_second: float
    out: str

    def table(self) -> str:
        return format_table(["frames", "people", "boxes from", "pose ms/frame", "frames/s (all)"],
                            [[self.frames, self.people, self.detector,
                              round(self.pose_ms_per_frame, 1), round(self.frames_per_second, 2)]])


def pose_video(video_in: str | Path, video_out: str | Path, predict: Predict, spec: KeypointSpec,
               boxes: dict[int, list[list[float]]] | None = None, kpt_thr: float = 0.3,
               detector: HogPeopleDetector | None = None, progress: bool = True) -> VideoSummary:
    """Read ``video_in``, draw each frame's people's keypoints, write ``video_out`` (same size
    and frame rate), and return counts and speeds.

    Args:
        boxes: frame → person boxes; None: ``detector`` (HOG by default) finds them.

    Raises:
        UserInputError: a video OpenCV cannot open or decode, or an output it cannot encode.
    """
    cap = cv2.VideoCapture(str(video_in))
    if not cap.isOpened():
        raise UserInputError(str(video_in), "OpenCV cannot open this video", field="--video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    ok, frame = cap.read()
    if not ok:
        cap.release()
        raise UserInputError(str(video_in), "no frame could be decoded", field="--video")
    out = Path(video_out)
    suffix = out.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        cap.release()
        raise UserInputError(str(out), f"unsupported video extension (use {', '.join(VIDEO_SUFFIXES)})",
                             field="--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix, dir=out.parent)
    os.close(fd)
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[suffix]), fps, (width, height))
    if detector is None and boxes is None:
        detector = HogPeopleDetector()
    frames = people = 0
    pose_s, start = 0.0, time.perf_counter()
    try:
        if not writer.isOpened():
            raise UserInputError(str(out), f"OpenCV cannot encode {suffix} here", field="--out")
        with tqdm(total=total, desc="video", unit="frame", disable=not progress) as bar:
            while ok:
                frame_boxes = boxes.get(frames, []) if boxes is not None else detector(frame)
                t0 = time.perf_counter()
                kpts = predict(frame, frame_boxes) if frame_boxes else np.zeros((0, spec.num_joints, 3))
                pose_s += time.perf_counter() - t0
                for person in kpts:
                    draw_skeleton(frame, person, spec, kpt_thr)
                writer.write(frame)
                frames += 1
                people += len(frame_boxes)
                bar.update(1)
                ok, frame = cap.read()
        writer.release()
        publish(Path(tmp), out)
    finally:
        cap.release()
        writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)
    elapsed = time.perf_counter() - start
    return VideoSummary(frames, people, "boxes file" if boxes is not None else "OpenCV HOG",
                        1000 * pose_s / max(frames, 1), frames / max(elapsed, 1e-9), str(out))
