"""Data for a search: the training set split in two halves (weights / architecture), and the
validation set for reporting."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch.utils.data import DataLoader, Dataset

from trainers.config.schema import Config
from trainers.data.registry import build_dataset
from trainers.data.loader import build_loader
from trainers.data.topdown import TopDownDataset

__all__ = ["IndexSubset", "SearchData", "build_search_data"]


class IndexSubset(Dataset):
    """The samples ``indices`` of ``dataset``; accepts the ``(epoch, index)`` keys of
    :class:`~trainers.data.sampler.EpochSampler` like the dataset itself."""

    def __init__(self, dataset: TopDownDataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            epoch, i = key
            return self.dataset[(epoch, self.indices[i])]
        return self.dataset[self.indices[key]]

    def __getattr__(self, name: str) -> Any:  # num_joints, spec, codec, ...
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


@dataclass
class SearchData:
    """Loaders of a search."""

    weights: DataLoader  #: trains the network weights (even samples of the training set)
    arch: DataLoader  #: trains α/β, or ranks candidates (odd samples)
    full: DataLoader  #: the whole training set (strategies without a bi-level split)
    val: DataLoader  #: the validation set (reported AP / PCKh)
    val_set: TopDownDataset


def build_search_data(cfg: Config, batch_size: int | None = None) -> SearchData:
    """Split the training set in two halves by sample parity (as PNFS splits it for the bi-level
    optimisation), and build every loader a strategy needs."""
    bs = batch_size or cfg.search.batch_size
    train = build_dataset(cfg, "train")
    val = build_dataset(cfg, "val")
    even = IndexSubset(train, range(0, len(train), 2))
    odd = IndexSubset(train, range(1, len(train), 2))
    workers = cfg.train.num_workers

    def loader(ds: Any, shuffle: bool, size: int = bs, seed: int = cfg.seed) -> DataLoader:
        return build_loader(ds, size, shuffle=shuffle, num_workers=workers, seed=seed)

    return SearchData(weights=loader(even, True), arch=loader(odd, True, seed=cfg.seed + 1),
                      full=loader(train, True), val=loader(val, False, cfg.test.batch_size),
                      val_set=val)
