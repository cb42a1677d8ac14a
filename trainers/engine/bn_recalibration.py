"""Batch-norm recalibration: statistics re-estimated for a network whose weights came from
somewhere else (a supernet's shared weights, a pruned network).

A single path of a weight-sharing supernet inherits BN running statistics that were averaged
over every path the supernet trained; SPOS (Guo et al. 2020) recomputes them on training batches
before scoring the path. :func:`recalibrate_bn` does that: running statistics reset, then the
plain average (``momentum=None``) over ``batches`` training batches in train mode, no gradient.
"""
from __future__ import annotations

import torch
from torch import nn

from trainers.config.schema import Config
from trainers.data.registry import build_dataset
from trainers.data.loader import build_loader
from trainers.data.topdown import normalize_images

__all__ = ["recalibrate_bn"]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, cfg: Config, batches: int = 8) -> int:
    """Re-estimate the BN running statistics of ``model`` on ``batches`` training batches of
    ``cfg`` (``train.batch_size``, augmented as in training, seeded by ``cfg.seed``); leave the
    model in eval mode. Returns the number of batches used (0: no BN layer, nothing done)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    device = next(model.parameters()).device
    loader = build_loader(build_dataset(cfg, "train"), cfg.train.batch_size, shuffle=True,
                          num_workers=0, seed=cfg.seed)
    model.train()
    seen = 0
    for batch in loader:
        if seen >= batches:
            break
        if not batch["size"]:
            continue
        model(normalize_images(batch["image"], cfg.dataset.color_rgb).to(device))
        seen += 1
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    return seen
