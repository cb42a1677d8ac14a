"""Training and evaluating a frozen network: what ``train_derived.py`` and ``test.py`` call."""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch
from torch import nn

from trainers.weights.checkpoint import load_checkpoint

from trainers.engine.checkpointing import AtomicCheckpoint
from trainers.config.schema import Config
from trainers.data.registry import build_dataset, primary_metric
from trainers.data.loader import build_loader
from search_space.errors import UserInputError
from trainers.engine.module import PoseModule

__all__ = ["fit", "make_trainer", "resume_kwargs", "recipe_record", "evaluate_model", "trainer_kwargs",
           "torchrun_layout"]

logger = logging.getLogger(__name__)


def torchrun_layout() -> tuple[int, int] | None:
    """``(processes per node, nodes)`` when ``torchrun`` started this process, else ``None``.

    torchrun (torch.distributed.elastic) sets ``RANK``, ``GROUP_RANK``, ``LOCAL_RANK`` and
    ``LOCAL_WORLD_SIZE`` in every worker; Lightning's own launcher (``--devices N``) does not set
    ``GROUP_RANK``, so its workers are not mistaken for torchrun's.
    """
    env = os.environ
    if not all(k in env for k in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                  "WORLD_SIZE")):
        return None
    local, world = int(env["LOCAL_WORLD_SIZE"]), int(env["WORLD_SIZE"])
    if local < 1 or world % local:
        raise UserInputError("torchrun", f"WORLD_SIZE {world} is not a multiple of "
                             f"LOCAL_WORLD_SIZE {local}: give every node the same "
                             "--nproc_per_node", field="--nproc_per_node")
    return local, world // local


def trainer_kwargs(cfg: Config) -> dict[str, Any]:
    """Lightning ``Trainer`` arguments of ``cfg``: devices, nodes, precision, DDP, batch limits.

    Under ``torchrun`` the processes per node and the node count come from its environment
    (``train.devices`` / ``train.num_nodes`` must agree or stay at their defaults); otherwise
    from ``train.devices`` and ``train.num_nodes`` (a multi-node run that Lightning or SLURM
    launches: the same command on every node, with ``MASTER_ADDR``/``NODE_RANK`` set).
    """
    cuda = torch.cuda.is_available()
    precision = cfg.train.precision
    if precision == "auto":
        precision = "16-mixed" if cuda else "32-true"
    devices: Any = cfg.train.devices
    if devices != "auto":
        devices = int(devices) if str(devices).isdigit() else devices
    num_nodes = cfg.train.num_nodes
    launched = torchrun_layout()
    if launched is not None:
        per_node, nodes = launched
        if devices not in ("auto", per_node):
            raise UserInputError("train.devices", f"{devices} disagrees with torchrun's "
                                 f"--nproc_per_node {per_node}: leave it out under torchrun",
                                 field="train.devices")
        if num_nodes not in (1, nodes):
            raise UserInputError("train.num_nodes", f"{num_nodes} disagrees with torchrun's "
                                 f"--nnodes {nodes}: leave it out under torchrun",
                                 field="train.num_nodes")
        devices, num_nodes = per_node, nodes
    limit: Any = cfg.train.limit_train_batches
    if limit > 1:
        limit = int(limit)
    # more than one process: DDP — NCCL on GPUs, gloo over CPU processes without CUDA
    multi = num_nodes > 1 or (isinstance(devices, int) and devices > 1) or (
        cuda and devices == "auto" and torch.cuda.device_count() > 1)
    return dict(accelerator="auto", devices=devices, num_nodes=num_nodes, precision=precision,
                strategy="ddp" if multi else "auto", limit_train_batches=limit,
                use_distributed_sampler=False)  # EpochSampler shards itself


def recipe_record(cfg: Config, train_images: int) -> dict[str, Any]:
    """What ``metrics.json`` records of the recipe a run trained with (to check that runs meant
    to be compared trained alike)."""
    t = cfg.train
    return {"epochs": t.epochs, "batch_size": t.batch_size, "optimizer": t.optimizer,
            "lr": t.lr, "lr_steps": list(t.lr_steps), "lr_factor": t.lr_factor,
            "weight_decay": t.weight_decay, "input_size": list(cfg.model.input_size),
            "sigma": cfg.model.sigma, "seed": cfg.seed, "train_images": train_images,
            "pretrained": cfg.model.pretrained or None}


def make_trainer(cfg: Config, *, max_epochs: int | None = None,
                 callbacks: Sequence[pl.Callback] = (), loggers: Any = False,
                 progress: bool = True, trainer_cls: type = pl.Trainer) -> pl.Trainer:
    """The one Lightning ``Trainer`` construction, for training, evaluation and one-shot search
    (``trainer_cls``: NNI's ``Trainer`` for its evaluator): devices, precision and DDP from
    :func:`trainer_kwargs`; checkpoints by our callback only; no sanity steps."""
    return trainer_cls(max_epochs=max_epochs, callbacks=list(callbacks), logger=loggers,
                       enable_checkpointing=False, num_sanity_val_steps=0,
                       enable_progress_bar=progress, log_every_n_steps=10,
                       enable_model_summary=False, **trainer_kwargs(cfg))


def resume_kwargs(out_dir: Path, resume: bool) -> dict[str, Any]:
    """``Trainer.fit`` arguments that continue from ``out_dir/last.ckpt`` (checked first: one
    clear line for a missing or foreign file, before Lightning touches it), or none."""
    if not resume:
        return {}
    last = out_dir / "last.ckpt"
    if not last.is_file():
        raise UserInputError(str(last), "no checkpoint to resume from (--resume)")
    ckpt = load_checkpoint(last)
    logger.info(f"resuming from {last} (finished epoch {ckpt['epoch']}, "
                f"global step {ckpt['global_step']})")
    return {"ckpt_path": str(last), "weights_only": True}


def fit(cfg: Config, model: nn.Module, model_info: dict[str, Any], out_dir: str | Path,
        resume: bool = False, progress: bool = True,
        callbacks: list[pl.Callback] | None = None,
        teacher: nn.Module | None = None) -> dict[str, Any]:
    """Train ``model`` with the recipe of ``cfg``, evaluating each epoch; return a summary.

    Writes ``out_dir/last.ckpt`` (every epoch), ``best.ckpt`` (by AP / PCKh), ``metrics.json``
    and CSV logs. ``resume`` continues from ``out_dir/last.ckpt``. ``teacher``: distil from its
    heatmaps too (``cfg.distill``; :func:`trainers.engine.distill.build_teacher`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    train_set = build_dataset(cfg, "train")
    val_set = build_dataset(cfg, "val")
    train_loader = build_loader(train_set, cfg.train.batch_size, shuffle=True,
                                num_workers=cfg.train.num_workers, drop_last=False, seed=cfg.seed)
    val_loader = build_loader(val_set, cfg.test.batch_size, shuffle=False,
                              num_workers=cfg.train.num_workers)
    module = PoseModule(model, cfg, val_set, out_dir, model_info, teacher=teacher)
    metric = primary_metric(cfg)
    ckpt_cb = AtomicCheckpoint(out_dir, metric, recipe=recipe_record(cfg, len(train_set)))
    loggers: list[Any] = [pl.loggers.CSVLogger(str(out_dir), name="logs"),
                          pl.loggers.TensorBoardLogger(str(out_dir), name="tb")]
    trainer = make_trainer(cfg, max_epochs=cfg.train.epochs,
                           callbacks=[*(callbacks or []), ckpt_cb], loggers=loggers,
                           progress=progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Checkpoint directory.*exists and is not empty.*")
        trainer.fit(module, train_loader, val_loader, **resume_kwargs(out_dir, resume))
    return {"metric": metric, "best": ckpt_cb.best, "history": ckpt_cb.history,
            "last": str(out_dir / "last.ckpt"), "best_ckpt": str(out_dir / "best.ckpt"),
            "world_size": trainer.world_size, "global_zero": trainer.is_global_zero}


def evaluate_model(cfg: Config, model: nn.Module, out_dir: str | Path,
                   use_gt_bbox: bool | None = None, progress: bool = True,
                   devices: int = 1) -> dict[str, Any]:
    """Evaluate ``model`` on the validation set: COCO results JSON + stats, or pred.mat + PCKh.

    One path for every case, the one training validates with: :class:`PoseModule` under
    Lightning's ``Trainer.validate``. With ``devices`` N > 1 (a command's ``--devices``; the entry
    script is re-run once per extra process) the persons are shared out over N DDP processes —
    GPUs, or gloo CPU processes without CUDA — and the predictions gathered on rank 0, each
    person once; ``global_zero`` in the result says whether this process is the one that
    reports.
    """
    ds = build_dataset(cfg, "val", use_gt_bbox=use_gt_bbox)
    loader = build_loader(ds, cfg.test.batch_size, shuffle=False, num_workers=cfg.train.num_workers)
    launched = torchrun_layout() is not None
    train = replace(cfg.train, devices=str(devices) if devices > 1 else
                    ("auto" if launched else "1"))
    module = PoseModule(model, cfg, ds, out_dir, eval_dir=out_dir)
    trainer = make_trainer(replace(cfg, train=train), progress=progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.validate(module, loader, verbose=False)
    return {"metrics": module.last_metrics, "persons": len(ds),
            "predicted": module.last_predicted, "skipped": module.last_skipped,
            "world_size": trainer.world_size, "global_zero": trainer.is_global_zero}
