"""COCO keypoint evaluation: annotation/result validation, rescoring, OKS-NMS, COCOeval.

The metric itself is pycocotools' ``COCOeval(..., "keypoints")``; this module only feeds it
validated inputs and HRNet's post-processing (box re-scoring by keypoint confidence, then
OKS-NMS per image).
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trainers.atomic import write_json_atomic
from search_space.joints import COCO
from search_space.errors import UserInputError

__all__ = [
    "COCO_STAT_NAMES", "is_number", "load_json", "load_coco_annotations", "coco_api",
    "load_coco_results", "evaluate_keypoints", "COCO_EVALUATORS", "oks_iou", "oks_nms",
    "rescore_and_nms", "write_results",
]

logger = logging.getLogger(__name__)

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def load_json(path: str | Path, what: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserInputError(str(path), f"{what} not found") from None
    except OSError as err:
        raise UserInputError(str(path), f"cannot read {what} ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserInputError(str(path), f"{what} is not valid JSON ({err})") from None


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: implausible but readable annotations: what each is called in the warning
IMPLAUSIBLE = {
    "outside": "labelled keypoint(s) outside the image",
    "visibility": "visibility flag(s) other than 0, 1, 2",
    "box": "person box(es) of zero width or height (skipped)",
    "duplicate": "duplicate annotation id(s)",
}


def load_coco_annotations(path: str | Path, num_joints: int = COCO.num_joints,
                          strict: bool = False, data: Any = None) -> dict[str, Any]:
    """Read and validate a COCO-format keypoints annotation file (``num_joints`` per person:
    COCO's 17, or the keypoint layout of another COCO-format dataset).

    Malformed entries are errors. Implausible ones (:data:`IMPLAUSIBLE`: a labelled keypoint
    outside its image, a visibility flag other than 0/1/2, a zero-size box, an annotation id used
    twice) are counted and logged as one warning, or with ``strict``
    (``dataset.strict_annotations``) an error naming the first.

    Args:
        data: the file's content already read (or converted from another format); ``path``
            then only names it in messages.

    Raises:
        UserInputError: naming the file and the image/annotation id that is malformed
            (missing fields, wrong keypoint count, negative box sizes, unknown image id).
    """
    if data is None:
        data = load_json(path, "annotation file")
    src = str(path)
    values = 3 * num_joints
    if not isinstance(data, dict):
        raise UserInputError(src, "expected a JSON object with 'images' and 'annotations'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise UserInputError(src, "missing or not a list", field=key)
    image_ids = set()
    sizes: dict[Any, tuple[float, float]] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise UserInputError(src, "not an object", field=f"images[{i}]")
        for key in ("id", "file_name", "width", "height"):
            if key not in img:
                raise UserInputError(src, f"missing '{key}'", field=f"images[{i}] (id={img.get('id')})")
        if not (is_number(img["width"]) and is_number(img["height"])
                and img["width"] > 0 and img["height"] > 0):
            raise UserInputError(src, "width/height must be positive numbers",
                                 field=f"image id={img['id']}")
        image_ids.add(img["id"])
        sizes[img["id"]] = (img["width"], img["height"])
    implausible: dict[str, list[str]] = {kind: [] for kind in IMPLAUSIBLE}
    seen_ids: set = set()
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise UserInputError(src, "not an object", field=f"annotations[{i}]")
        where = f"annotation id={ann.get('id', f'#{i}')}"
        for key in ("id", "image_id", "category_id", "bbox", "area", "iscrowd"):
            if key not in ann:
                raise UserInputError(src, f"missing '{key}'", field=where)
        if ann["image_id"] not in image_ids:
            raise UserInputError(src, f"image_id {ann['image_id']!r} is not in 'images'", field=where)
        if ann["id"] in seen_ids:
            implausible["duplicate"].append(where)
        seen_ids.add(ann["id"])
        if ann["category_id"] != 1:
            continue
        kpts = ann.get("keypoints")
        if not isinstance(kpts, list) or len(kpts) != values:
            count = len(kpts) if isinstance(kpts, list) else "no"
            raise UserInputError(src, f"expected {values} keypoint values "
                                 f"({num_joints} × x, y, v), got {count}", field=where)
        if not all(is_number(v) for v in kpts):
            raise UserInputError(src, "keypoints must be finite numbers", field=where)
        bbox = ann["bbox"]
        if (not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox)):
            raise UserInputError(src, "bbox must be [x, y, w, h] numbers", field=where)
        if bbox[2] < 0 or bbox[3] < 0:
            raise UserInputError(src, f"negative box size w={bbox[2]}, h={bbox[3]}", field=where)
        if not is_number(ann["area"]) or ann["area"] < 0:
            raise UserInputError(src, f"area must be a non-negative number, got {ann['area']!r}",
                                 field=where)
        if "num_keypoints" not in ann:
            ann["num_keypoints"] = int(sum(1 for v in kpts[2::3] if v > 0))
        width, height = sizes[ann["image_id"]]
        if any(v > 0 and not (0 <= x <= width and 0 <= y <= height)
               for x, y, v in zip(kpts[0::3], kpts[1::3], kpts[2::3])):
            implausible["outside"].append(where)
        if any(v not in (0, 1, 2) for v in kpts[2::3]):
            implausible["visibility"].append(where)
        if not ann["iscrowd"] and (bbox[2] == 0 or bbox[3] == 0):
            implausible["box"].append(where)
    _report_implausible(src, implausible, strict)
    return data


def _report_implausible(src: str, implausible: dict[str, list[str]], strict: bool) -> None:
    found = {kind: where for kind, where in implausible.items() if where}
    if not found:
        return
    if strict:
        kind, where = next(iter(found.items()))
        raise UserInputError(src, f"{IMPLAUSIBLE[kind].replace('(s)', '').replace(' (skipped)', '')}"
                             " (dataset.strict_annotations is on)", field=where[0])
    counts = ", ".join(f"{len(where)} {IMPLAUSIBLE[kind]} (first: {where[0]})"
                       for kind, where in found.items())
    logger.warning("%s: %s; kept as they are unless noted (set dataset.strict_annotations true "
                   "to stop on them)", src, counts)


def coco_api(data: dict[str, Any]):
    """A pycocotools ``COCO`` object over already-validated annotation ``data`` (quiet)."""
    from pycocotools.coco import COCO as CocoApi

    with contextlib.redirect_stdout(io.StringIO()):
        api = CocoApi()
        api.dataset = data
        api.createIndex()
    return api


def load_coco_results(path: str | Path, image_ids: set | None = None,
                      num_joints: int = COCO.num_joints) -> list[dict[str, Any]]:
    """Read and validate a COCO keypoint results file (a list of detections)."""
    data = load_json(path, "results file")
    values = 3 * num_joints
    src = str(path)
    if not isinstance(data, list):
        raise UserInputError(src, "a results file is a JSON list of "
                             "{image_id, category_id, keypoints, score}")
    if not data:
        raise UserInputError(src, "no results in it: every stat would be 0")
    for i, res in enumerate(data):
        where = f"[{i}]"
        if not isinstance(res, dict):
            raise UserInputError(src, "not an object", field=where)
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in res:
                raise UserInputError(src, f"missing '{key}'", field=where)
        if res["category_id"] != 1:
            raise UserInputError(src, f"category_id must be 1 (person), got {res['category_id']!r}: "
                                 "COCOeval would match it to no ground truth and score 0",
                                 field=f"{where}.category_id")
        kpts = res["keypoints"]
        if not isinstance(kpts, list) or len(kpts) != values:
            raise UserInputError(src, f"expected {values} keypoint values", field=where)
        if not all(is_number(v) for v in kpts) or not is_number(res["score"]):
            raise UserInputError(src, "keypoints and score must be finite numbers", field=where)
        if image_ids is not None and res["image_id"] not in image_ids:
            raise UserInputError(src, f"image_id {res['image_id']!r} is not in the ground truth",
                                 field=f"{where}.image_id")
    return data


#: the COCOeval implementations ``test.coco_evaluator`` chooses from
COCO_EVALUATORS = ("pycocotools", "faster_coco_eval")


def evaluate_keypoints(gt: dict[str, Any], results: Sequence[dict[str, Any]],
                       sigmas: Sequence[float] = COCO.sigmas,
                       evaluator: str = "pycocotools") -> dict[str, float]:
    """The 10 COCOeval keypoint stats of ``results`` against validated annotations ``gt``,
    with the OKS ``sigmas`` of the keypoint layout (COCO's by default).

    ``evaluator``: pycocotools' COCOeval (the reference), or faster-coco-eval's C++
    ``COCOeval_faster`` (https://github.com/MiXaiLL76/faster_coco_eval), whose 10 stats equal
    pycocotools' on every case the tests and ``benchmarks/coco_eval_speed.py`` try (0 difference)
    and which evaluates a COCO-val-sized file several times faster.
    """
    if not results:
        logger.warning("no keypoint results to evaluate: every stat is 0")
        return {name: 0.0 for name in COCO_STAT_NAMES}
    if evaluator == "faster_coco_eval":
        return _faster_coco_eval(gt, results, sigmas)
    if evaluator != "pycocotools":
        raise ValueError(f"evaluator must be one of {COCO_EVALUATORS}, got {evaluator!r}")
    from pycocotools.cocoeval import COCOeval

    api = coco_api(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        dets = api.loadRes([dict(r) for r in results])
        ev = COCOeval(api, dets, "keypoints")
        ev.params.useSegm = None
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, ev.stats)}


def _faster_coco_eval(gt: dict[str, Any], results: Sequence[dict[str, Any]],
                      sigmas: Sequence[float]) -> dict[str, float]:
    try:
        from faster_coco_eval import COCO as FastCoco, COCOeval_faster
    except ImportError:
        raise UserInputError("test.coco_evaluator", "faster_coco_eval is not installed (pip "
                             "install faster-coco-eval), or choose pycocotools") from None
    with contextlib.redirect_stdout(io.StringIO()):
        api = FastCoco(copy.deepcopy(gt))
        dets = api.loadRes([dict(r) for r in results])
        ev = COCOeval_faster(api, dets, "keypoints", print_function=lambda *a, **k: None,
                             kpt_oks_sigmas=np.asarray(sigmas, dtype=np.float64))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, ev.stats[:10])}


def oks_iou(g: np.ndarray, d: np.ndarray, area_g: float, area_d: np.ndarray,
            sigmas: np.ndarray, in_vis_thre: float | None = None) -> np.ndarray:
    """OKS between one pose ``g`` (K·3,) and poses ``d`` (M, K·3), as in HRNet's NMS."""
    variances = (sigmas * 2) ** 2
    xg, yg, vg = g[0::3], g[1::3], g[2::3]
    ious = np.zeros(len(d), dtype=np.float64)
    for i in range(len(d)):
        xd, yd, vd = d[i, 0::3], d[i, 1::3], d[i, 2::3]
        e = ((xd - xg) ** 2 + (yd - yg) ** 2) / variances / ((area_g + area_d[i]) / 2 + np.spacing(1)) / 2
        if in_vis_thre is not None:
            e = e[(vg > in_vis_thre) & (vd > in_vis_thre)]
        ious[i] = np.sum(np.exp(-e)) / e.shape[0] if e.shape[0] else 0.0
    return ious


def oks_nms(poses: np.ndarray, scores: np.ndarray, areas: np.ndarray, threshold: float,
            sigmas: np.ndarray, in_vis_thre: float | None = None) -> list[int]:
    """Greedy OKS non-maximum suppression; returns indices kept, best first.

    Args:
        poses: (M, K, 3) keypoints with confidences. scores, areas: (M,).
    """
    if len(poses) == 0:
        return []
    flat = poses.reshape(len(poses), -1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        overlap = oks_iou(flat[i], flat[order[1:]], areas[i], areas[order[1:]], sigmas, in_vis_thre)
        order = order[1:][overlap <= threshold]
    return keep


def rescore_and_nms(preds: np.ndarray, box_scores: np.ndarray, areas: np.ndarray,
                    image_ids: np.ndarray, in_vis_thre: float, oks_thre: float,
                    sigmas: Sequence[float] = COCO.sigmas) -> list[dict[str, Any]]:
    """HRNet's COCO post-processing, returning COCO keypoint results.

    Each person's score becomes box score × mean confidence of its joints above
    ``in_vis_thre``; then OKS-NMS at ``oks_thre`` runs per image.

    Args:
        preds: (N, K, 3) x, y, confidence in image pixels.
        box_scores, areas, image_ids: (N,).
    """
    conf = preds[..., 2]
    above = conf > in_vis_thre
    counts = above.sum(axis=1)
    kpt_score = np.where(counts > 0, (conf * above).sum(axis=1) / np.maximum(counts, 1), 0.0)
    scores = kpt_score * box_scores
    by_image: dict[Any, list[int]] = defaultdict(list)
    for i, image_id in enumerate(image_ids.tolist()):
        by_image[image_id].append(i)
    sig = np.asarray(sigmas, dtype=np.float64)
    results = []
    for image_id, idx in by_image.items():
        idx_arr = np.asarray(idx)
        keep = oks_nms(preds[idx_arr], scores[idx_arr], areas[idx_arr], oks_thre, sig)
        for k in keep:
            i = idx_arr[k]
            results.append({
                "image_id": image_id,
                "category_id": 1,
                "keypoints": [round(float(v), 3) for v in preds[i].reshape(-1)],
                "score": float(scores[i]),
            })
    return results


def write_results(path: str | Path, results: list[dict[str, Any]]) -> None:
    """Write COCO keypoint results JSON atomically."""
    write_json_atomic(path, results)
