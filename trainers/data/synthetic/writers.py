"""Writing synthetic datasets in the official layouts: COCO (annotations, images, person
detections) and MPII (HRNet's JSON annotations, images, ``gt_valid.mat``)."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from search_space.joints import COCO, MPII
from trainers.atomic import atomic_path, write_json_atomic
from trainers.data.synthetic.figure import MPII_TO_POINT
from trainers.data.synthetic.render import render_image
from trainers.evaluation.mpii import MPII_JOINT_CODES

__all__ = ["write_coco", "write_mpii", "write_jpeg", "image_rng"]

logger = logging.getLogger(__name__)

def write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    with atomic_path(path, suffix=".jpg") as tmp:
        tmp.write_bytes(data.tobytes())


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, {"train": 1, "val": 2}[split], index])


# ------------------------------------------------------------------------------------ COCO
def write_coco(out: str | Path, num_train: int, num_val: int, seed: int = 0) -> dict[str, int]:
    """Write a synthetic COCO keypoints dataset under ``out``; return counts."""
    out = Path(out)
    counts: dict[str, int] = {}
    for split, image_set, n in (("train", "train2017", num_train), ("val", "val2017", num_val)):
        images, annotations, dets = [], [], []
        det_rng = np.random.default_rng([seed, 3])
        id_base = 0 if split == "train" else 1_000_000
        ann_id = id_base
        for index in range(n):
            rng = image_rng(seed, split, index)
            image, persons = render_image(rng)
            image_id = id_base + index + 1
            file_name = f"{image_id:012d}.jpg"
            write_jpeg(out / "images" / image_set / file_name, image)
            images.append({"id": image_id, "file_name": file_name, "width": image.shape[1],
                           "height": image.shape[0]})
            for person in persons:
                kpts = []
                for name in COCO.names:
                    x, y = person.points[name]
                    v = person.visibility[name]
                    kpts += [round(float(x), 2), round(float(y), 2), v] if v else [0, 0, 0]
                ann_id += 1
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                    "bbox": [round(v, 2) for v in person.bbox], "area": person.area,
                    "keypoints": kpts, "num_keypoints": int(sum(1 for v in kpts[2::3] if v > 0)),
                    "segmentation": [],
                })
                if split == "val" and person.area > 0 and det_rng.random() > 0.05:
                    x, y, w, h = person.bbox
                    jitter = det_rng.normal(0, 0.05, 4) * np.array([w, h, w, h])
                    box = [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]
                    dets.append({"image_id": image_id, "category_id": 1,
                                 "bbox": [round(float(v), 2) for v in box],
                                 "score": round(float(np.clip(det_rng.normal(0.9, 0.08), 0.3, 1.0)), 4)})
            if split == "val" and det_rng.random() < 0.3:
                w, h = det_rng.uniform(20, 80, 2)
                dets.append({"image_id": image_id, "category_id": 1,
                             "bbox": [round(float(det_rng.uniform(0, image.shape[1] - w)), 2),
                                      round(float(det_rng.uniform(0, image.shape[0] - h)), 2),
                                      round(float(w), 2), round(float(h), 2)],
                             "score": round(float(det_rng.uniform(0.05, 0.5)), 4)})
        data = {
            "info": {"description": "posenas synthetic COCO-format keypoints", "seed": seed},
            "licenses": [],
            "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(COCO.names),
                            "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton]}],
        }
        write_json_atomic(out / "annotations" / f"person_keypoints_{image_set}.json", data)
        if split == "val":
            write_json_atomic(out / "person_detection_results" /
                              "COCO_val2017_detections_AP_H_56_person.json", dets)
            counts["val_detections"] = len(dets)
        counts[f"{split}_images"] = len(images)
        counts[f"{split}_persons"] = len(annotations)
    return counts


# ------------------------------------------------------------------------------------ MPII
def write_mpii(out: str | Path, num_train: int, num_val: int, seed: int = 0) -> dict[str, int]:
    """Write a synthetic MPII dataset (HRNet's JSON + official gt_valid.mat) under ``out``."""
    out = Path(out)
    counts: dict[str, int] = {}
    for split, image_set, n in (("train", "train", num_train), ("val", "valid", num_val)):
        entries, pos, missing, heads = [], [], [], []
        for index in range(n):
            rng = image_rng(seed, split, index)
            image, persons = render_image(rng, max_persons=2)
            name = f"{split}_{index:06d}.jpg"
            write_jpeg(out / "images" / name, image)
            for person in persons:
                joints = np.zeros((16, 2))
                vis = np.zeros(16, dtype=int)
                for j, mpii_name in enumerate(MPII.names):
                    point = MPII_TO_POINT[mpii_name]
                    if person.visibility[point] > 0:
                        joints[j] = person.points[point] + 1.0  # MATLAB 1-based
                        vis[j] = 1
                if vis.sum() < 4 or person.area == 0:
                    continue  # MPII annotates people whose body is mostly in view
                joints = np.round(joints, 2)  # the JSON and gt_valid.mat hold the same values
                x, y, w, h = person.bbox
                scale = max(h, w) / 200.0
                center = [x + w / 2 + 1.0, y + h / 2 + 1.0 - 15 * scale]
                entries.append({"image": name, "center": [round(c, 2) for c in center],
                                "scale": round(scale, 4),
                                "joints": joints.tolist(),
                                "joints_vis": vis.tolist()})
                pos.append(joints)
                missing.append(1 - vis)
                heads.append(np.stack(person.head_box) + 1.0)
        write_json_atomic(out / "annot" / f"{image_set}.json", entries)
        if split == "val":
            _write_gt_mat(out / "annot" / "gt_valid.mat", pos, missing, heads)
        counts[f"{split}_images"] = n
        counts[f"{split}_persons"] = len(entries)
    return counts


def _write_gt_mat(path: Path, pos: list, missing: list, heads: list) -> None:
    names = np.empty((1, 16), dtype=object)
    for i, code in enumerate(MPII_JOINT_CODES):
        names[0, i] = code
    mat = {
        "dataset_joints": names,
        "jnt_missing": np.stack(missing, axis=1).astype(np.float64),  # (16, N)
        "pos_gt_src": np.stack(pos, axis=2).astype(np.float64),  # (16, 2, N)
        "headboxes_src": np.stack(heads, axis=2).astype(np.float64),  # (2, 2, N)
    }
    with atomic_path(path, suffix=".mat") as tmp:
        scipy.io.savemat(str(tmp), mat)
