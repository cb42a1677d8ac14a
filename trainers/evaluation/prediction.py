"""Running a heatmap model over a dataset: flip test, decoding, back-projection.

Shape legend: N samples, K joints, H×W heatmap.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from trainers.data.codec import HeatmapCodec, flip_back
from trainers.data.images import SkipCounter
from trainers.data.topdown import TopDownDataset, normalize_images
from trainers.data.transforms import person_crops
from search_space.joints import keypoint_spec

__all__ = ["flip_test_predictor", "predict_dataset", "predict_image"]

logger = logging.getLogger(__name__)

HeatmapFn = Callable[[dict], torch.Tensor]


def flip_test_predictor(model: Callable[[torch.Tensor], torch.Tensor],
                        flip_pairs: tuple[tuple[int, int], ...], flip_test: bool = True,
                        shift_heatmap: bool = True, color_rgb: bool = True,
                        device: torch.device | str = "cpu") -> HeatmapFn:
    """Heatmaps of a batch from ``model``; with ``flip_test`` averaged with the flipped input's.

    The batch's uint8 images are moved to ``device`` and normalised there.
    """

    @torch.no_grad()
    def predict(batch: dict) -> torch.Tensor:
        images = normalize_images(batch["image"].to(device), color_rgb)
        heatmaps = model(images)
        if flip_test:
            flipped = model(images.flip(-1))
            heatmaps = (heatmaps + flip_back(flipped, flip_pairs, shift_heatmap)) * 0.5
        return heatmaps

    return predict


def predict_dataset(dataset: TopDownDataset, loader, heatmap_fn: HeatmapFn,
                    post_process: bool = True, progress: bool = True
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode ``heatmap_fn`` over every batch of ``loader`` into image-space predictions.

    Returns:
        preds (N, K, 3) as x, y, confidence in image pixels; indices (N,) of the dataset
        records; the number of samples skipped because their image could not be read.
    """
    codec = dataset.codec
    all_preds, all_idx = [], []
    skipped = SkipCounter()
    for batch in tqdm(loader, desc="predict", disable=not progress, leave=False):
        skipped.update(batch)
        if batch["size"] == 0:
            continue
        heatmaps = heatmap_fn(batch).detach().float().cpu().numpy()
        coords, maxvals = codec.decode_to_image(heatmaps, batch["center"].numpy(),
                                                batch["scale"].numpy(), post_process)
        all_preds.append(np.concatenate([coords, maxvals], axis=2))
        all_idx.append(batch["index"].numpy())
    n_skipped = skipped.report("evaluation")
    if not all_preds:
        return np.zeros((0, dataset.num_joints, 3), np.float32), np.zeros(0, np.int64), n_skipped
    return np.concatenate(all_preds), np.concatenate(all_idx), n_skipped


def predict_image(model: torch.nn.Module, cfg, image_bgr: np.ndarray, boxes: list[list[float]],
                  flip: bool = True, device: torch.device | str = "cpu") -> np.ndarray:
    """Keypoints (P, K, 3) in image pixels for the person boxes ``[x, y, w, h]`` of one BGR
    image: ``test.py``'s crop (``cfg.test.margin``), flip test and decoding.

    ``model`` is in eval mode on ``device``.
    """
    spec = keypoint_spec(cfg.dataset.name)
    if not boxes:
        return np.zeros((0, spec.num_joints, 3), np.float32)
    h, w = cfg.model.input_size
    codec = HeatmapCodec.for_model(cfg.model)
    crops, centers, scales = person_crops(image_bgr, boxes, (h, w), cfg.test.margin,
                                          color_rgb=False)
    # as the loader gives crops: (P, H, W, 3) BGR; normalize_images orders the channels
    batch = {"image": torch.from_numpy(crops).permute(0, 2, 3, 1)}
    predict = flip_test_predictor(model.eval(), spec.flip_pairs, flip, cfg.test.shift_heatmap,
                                  cfg.dataset.color_rgb, device)
    heatmaps = predict(batch).float().cpu().numpy()
    coords, conf = codec.decode_to_image(heatmaps, centers, scales, cfg.test.post_process)
    return np.concatenate([coords, conf], axis=2)
