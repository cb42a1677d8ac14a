"""Throughput of the training data pipeline, per worker, against decode+warp alone.

    python -m benchmarks.data_pipeline [--images 200] [--input-size 256x192] [--repeat 3]
                                       [--upscale 2.0]

Writes a synthetic COCO set to a temporary folder, then times on one process (= one loader
worker): (1) the bound, reading each image and warping it with the sample's (augmented) affine
matrix to the input size, and (2) the full training sample: decode, the epoch's augmentation
geometry (half body, scale, rotation, flip; computed for the whole epoch at the epoch's first
sample, and that cost is in the timing: each repetition is a new epoch), warp, the joints in
the crop, the uint8 crop as warped (normalisation and the Gaussian targets run on the device).
Prints samples/s for both and the ratio, and what the device pays per batch of 32 for the
targets. ``--upscale`` enlarges the synthetic images (and their annotations) first, e.g. 2.0
for COCO-like 450-640 px images, where decoding weighs as it does on the real data.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import torch

from trainers.config.experiment import load_config
from trainers.data.heatmap_targets import BatchTargets
from trainers.data.images import read_image
from trainers.data.loader import build_loader
from trainers.data.registry import build_dataset
from trainers.data.synthetic import write_coco
from trainers.report import format_table

REPO = Path(__file__).resolve().parent.parent


def upscale_dataset(root: Path, factor: float) -> None:
    """Resize every training image by ``factor`` and scale its annotations to match."""
    ann_file = root / "annotations" / "person_keypoints_train2017.json"
    data = json.loads(ann_file.read_text())
    for img in data["images"]:
        path = root / "images" / "train2017" / img["file_name"]
        image = cv2.imread(str(path))
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        img["height"], img["width"] = image.shape[:2]
    for ann in data["annotations"]:
        ann["bbox"] = [v * factor for v in ann["bbox"]]
        ann["area"] *= factor ** 2
        ann["keypoints"] = [v * factor if i % 3 != 2 else v for i, v in enumerate(ann["keypoints"])]
    ann_file.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--input-size", default="256x192")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--upscale", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the rates")
    args = parser.parse_args()
    cv2.setNumThreads(0)  # as in a loader worker
    with tempfile.TemporaryDirectory() as tmp:
        write_coco(tmp, num_train=args.images, num_val=1, seed=0)
        if args.upscale != 1.0:
            upscale_dataset(Path(tmp), args.upscale)
        cfg = load_config(REPO / "configs" / "datasets" / "synthetic_coco.yaml",
                          ["dataset.root", tmp, "model.input_size", args.input_size])
        ds = build_dataset(cfg, "train")
        h, w = cfg.model.input_size
        n = len(ds)

        widths = [read_image(r.image).shape[1] for r in ds.records]
        # the bound warps with the very matrices the augmented samples use, epoch by epoch
        matrices = []
        for epoch in range(args.repeat):
            ds.set_epoch(epoch)
            matrices.append([ds.sample_geometry(i, widths[i]).image_matrix for i in range(n)])
        ds.set_epoch(args.repeat)  # leave an epoch the timing does not use in the cache
        ds.sample_geometry(0, widths[0])

        def best_rate(fn) -> float:
            best = float("inf")
            for epoch in range(args.repeat):
                t0 = time.perf_counter()
                fn(epoch)
                best = min(best, time.perf_counter() - t0)
            return n / best

        def bound(epoch: int) -> None:
            for rec, m in zip(ds.records, matrices[epoch]):
                image = read_image(rec.image, color_rgb=False)
                cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)

        def pipeline(epoch: int) -> None:
            # (epoch, index) keys: the first sample computes the epoch's geometry table (the
            # dataset holds another epoch's)
            for i in range(n):
                ds[(epoch, i)]

        rate_bound = best_rate(bound)
        rate_full = best_rate(pipeline)
        batch = next(iter(build_loader(ds, 32, shuffle=False, num_workers=0)))
        encode = BatchTargets(ds.codec)

        def per_batch_ms(fn) -> float:
            fn()
            t0 = time.perf_counter()
            for _ in range(50):
                fn()
            return (time.perf_counter() - t0) / 50 * 1000

        separable_ms = per_batch_ms(lambda: encode.separable(batch["joints"], batch["visible"]))
        targets_ms = per_batch_ms(lambda: encode(batch))
    print(format_table(
        ["stage (1 worker)", "samples/s", "ms/sample"],
        [["decode + warp (bound)", f"{rate_bound:.0f}", f"{1000 / rate_bound:.2f}"],
         ["full training sample", f"{rate_full:.0f}", f"{1000 / rate_full:.2f}"]]))
    print(f"input {args.input_size}, images x{args.upscale:g}, {n} person boxes: pipeline at {100 * rate_full / rate_bound:.0f}% "
          "of the decode+warp bound (target >= 90%)")
    print(f"targets on the device ({torch.get_num_threads()} threads), per batch of 32: encoding "
          f"{separable_ms:.2f} ms (was the worker's), heatmaps in all {targets_ms:.2f} ms")
    if args.json:
        print(json.dumps({"bound_samples_per_s": rate_bound, "samples_per_s": rate_full,
                          "encode_ms_per_batch_32": separable_ms,
                          "targets_ms_per_batch_32": targets_ms}))


if __name__ == "__main__":
    main()
