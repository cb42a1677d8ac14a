"""A sampler that tells the dataset which epoch it is, and shards itself across ranks."""
from __future__ import annotations

from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = ["EpochSampler"]


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs; with ``shuffle`` a permutation seeded by (seed, epoch).

    Passing the epoch with every index makes augmentation depend only on (seed, epoch, index),
    whatever the worker processes live through, so a resumed run sees exactly the samples the
    uninterrupted one would. Under ``torch.distributed`` each rank takes every world-size-th
    index (padded by wrapping so all ranks have the same count), like ``DistributedSampler``.
    """

    def __init__(self, length: int, shuffle: bool, seed: int = 0) -> None:
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before every epoch."""
        self.epoch = epoch

    @staticmethod
    def _rank_world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        rank, world = self._rank_world()
        if world > 1:
            total = -(-self.length // world) * world
            order = (order * (total // max(1, self.length) + 1))[:total]
            order = order[rank::world]
        return order

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in self._indices()])

    def __len__(self) -> int:
        _, world = self._rank_world()
        return -(-self.length // world) if world > 1 else self.length
