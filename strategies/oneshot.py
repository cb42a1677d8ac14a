"""One-shot search: NNI's one-shot strategies wired to ``PoseSpace``, ``PoseModule`` and our
Lightning modules (:mod:`strategies.oneshot_modules`), and :func:`run_oneshot`, which trains the
supernet and records the architecture each epoch.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
from nni.nas.evaluator.pytorch import Lightning, Trainer
from nni.nas.evaluator.pytorch import LightningModule as NasLightningModule

from search_space.supernet import build
from strategies.channel_masks import WIDTH_HOOKS
from strategies.data import build_search_data
from strategies.records import ArchRecorder
from strategies.registry import STRATEGIES
from trainers.network.build import init_backbone
from trainers.engine.checkpointing import AtomicCheckpoint
from trainers.config.schema import Config
from trainers.data.registry import primary_metric
from trainers.engine.distill import build_teacher
from trainers.engine.fit import make_trainer, resume_kwargs
from search_space.errors import UserInputError
from trainers.engine.module import PoseModule

__all__ = ["run_oneshot", "make_oneshot_strategy", "TaggedLoader", "NasPoseModule"]

logger = logging.getLogger(__name__)


class NasPoseModule(PoseModule, NasLightningModule):
    """:class:`~trainers.engine.module.PoseModule` as the NNI ``LightningModule`` that NNI's one-shot
    evaluator (``nni.nas.evaluator.pytorch.Lightning``) requires; the same training module."""


class TaggedLoader:
    """NNI's ENAS with Lightning ≥ 2.1: one loader yielding ``(batch, "train")`` for the
    weight half, then ``(batch, "val")`` for the controller half, each epoch."""

    def __init__(self, train: Any, val: Any) -> None:
        self.train, self.val = train, val
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.train) + len(self.val)

    def __iter__(self):
        for loader in (self.train, self.val):
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(self.epoch)
        self.epoch += 1
        for batch in self.train:
            yield batch, "train"
        for batch in self.val:
            yield batch, "val"


def _with_module(base: type, module_cls: type, loaders: str) -> type:
    """An NNI strategy class whose one-shot module is ``module_cls``; ``loaders``: "bilevel"
    (NNI's {"train", "val"} pair) or "single" (the training loader alone)."""

    class Strategy(base):  # type: ignore[misc, valid-type]
        def __init__(self, cfg: Config, **kwargs: Any) -> None:
            # ahead of NNI's hooks: width choices as vector channel masks
            super().__init__(mutation_hooks=list(WIDTH_HOOKS), **kwargs)
            self.cfg = cfg
            self.val_loader: Any = None

        def configure_oneshot_module(self, training_module):
            return module_cls(training_module, self.cfg)

        def train_dataloader(self, train_fn, val_fn):
            if loaders == "bilevel":
                return {"train": train_fn(), "val": val_fn()}
            if loaders == "tagged":
                return TaggedLoader(train_fn(), val_fn())
            return train_fn()

        def val_dataloader(self, train_fn, val_fn):
            return self.val_loader

    Strategy.__name__ = Strategy.__qualname__ = f"Pose{base.__name__}"
    return Strategy


def make_oneshot_strategy(name: str, cfg: Config) -> Any:
    """The NNI strategy object of the one-shot strategy ``name`` for ``cfg``, wired to our
    Lightning module (see :data:`~strategies.registry.STRATEGIES`)."""
    entry = STRATEGIES[name]
    return entry.make_nni_strategy(cfg, _with_module(entry.nni_strategy, entry.module,
                                                     entry.loaders))


def run_oneshot(cfg: Config, strategy_name: str, out: Path, resume: bool = False,
                progress: bool = True, show_arch_value: bool = False,
                callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    """Train a supernet with the one-shot strategy ``strategy_name``; write arch.json,
    history.jsonl and checkpoints into ``out``; return the summary. ``callbacks``: more
    Lightning callbacks (e.g. the step timer of ``benchmarks/supernet_step.py``)."""
    entry = STRATEGIES[strategy_name]
    if entry.adapt_config is not None:
        cfg = entry.adapt_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    space = build(cfg.space, cfg.dataset.name)
    if not space.simplify():
        raise UserInputError("config", "the space has no decisions to search (search_alpha, "
                             "search_beta and width_multipliers are all off)", field="space")
    strategy = make_oneshot_strategy(strategy_name, cfg)
    supernet = strategy.mutate_model(space)
    if cfg.model.pretrained and not resume:  # PNFS: the backbone from ImageNet weights
        init_backbone(supernet, cfg.model.pretrained)
    data = build_search_data(cfg)
    strategy.val_loader = data.val
    metric = primary_metric(cfg)
    teacher = build_teacher(cfg) if cfg.search.distill else None  # a teacher-guided supernet
    module = NasPoseModule(supernet, cfg, data.val_set, out,
                        {"name": f"supernet:{strategy_name}"}, teacher=teacher)
    recorder = ArchRecorder(cfg, strategy_name, out, show_arch_value)
    ckpt_cb = AtomicCheckpoint(out, metric, verbose=False)  # the recorder prints the epochs
    trainer = make_trainer(cfg, max_epochs=cfg.search.epochs,
                           callbacks=[recorder, ckpt_cb, *callbacks],
                           loggers=[pl.loggers.CSVLogger(str(out), name="logs")],
                           progress=progress, trainer_cls=Trainer)
    fit_kwargs = resume_kwargs(out, resume)
    loaders = entry.loaders
    train_loader = data.weights if loaders == "bilevel" else data.full
    # in process: NNI's advice to trace loaders for remote trials does not apply
    warnings.filterwarnings("ignore", ".*When using training service to spawn trials.*")
    evaluator = Lightning(module, trainer, train_dataloaders=train_loader,
                          val_dataloaders=data.arch if loaders == "bilevel" else data.val,
                          fit_kwargs=fit_kwargs)
    evaluator = strategy.mutate_evaluator(evaluator)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Checkpoint directory.*exists and is not empty.*")
        evaluator.evaluate(supernet)
    oneshot_module = evaluator.module
    if entry.after_search is not None:
        entry.after_search(cfg, oneshot_module, trainer, data, out)
    return {"metric": metric, "history": recorder.records, "arch": str(out / "arch.json")}
