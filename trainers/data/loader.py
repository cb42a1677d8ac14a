"""Data loaders: reproducible per-epoch sampling, sharded across ranks, unreadable images skipped."""
from __future__ import annotations

from typing import Any, Sequence

import cv2
from torch.utils.data import DataLoader, default_collate

from trainers.data.images import SkippedSample
from trainers.data.topdown import TopDownDataset
from trainers.data.sampler import EpochSampler


__all__ = ["build_loader", "collate_pose_batch"]


def collate_pose_batch(samples: Sequence[Any]) -> dict[str, Any]:
    """Collate dict samples, leaving out :class:`SkippedSample` entries.

    The batch gets ``skipped``: the list of ``"path: reason"`` strings that were left out, and
    ``size``: the number of samples kept (0 if every sample was skipped, in which case the
    batch holds nothing else).
    """
    kept = [s for s in samples if not isinstance(s, SkippedSample)]
    skipped = [s.reason for s in samples if isinstance(s, SkippedSample)]
    batch: dict[str, Any] = default_collate(kept) if kept else {}
    batch["skipped"] = skipped
    batch["size"] = len(kept)
    return batch



def _worker_init(_: int) -> None:
    # OpenCV's own thread pool inside every loader worker oversubscribes the CPU.
    cv2.setNumThreads(0)


def build_loader(dataset: TopDownDataset, batch_size: int, shuffle: bool, num_workers: int,
                 drop_last: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader that skips unreadable images (see :func:`collate_pose_batch`).

    Sampling goes through :class:`~trainers.data.sampler.EpochSampler`: reproducible per (seed,
    epoch), sharded across ranks under torch.distributed.
    """
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_pose_batch, drop_last=drop_last,
                      worker_init_fn=_worker_init if num_workers > 0 else None,
                      persistent_workers=num_workers > 0, pin_memory=False)
