"""The strategy registry: every name ``strategies.search --strategy`` accepts, in one table.

Each entry says what kind of search it is (how :mod:`strategies.search` runs it), what it is
(``--help`` and the README take these lines), which NNI strategy class does the work and the
keyword arguments it is built with from the config, and the hooks of its phases: a check that
what it needs is installed, the space it can search (a strategy that cannot search widths drops
them), and a phase after the supernet has trained (SPOS ranks paths). Runner code never tests a
strategy's name.

To add a strategy: one entry here. Any NNI 3.0 multi-trial strategy is one entry naming its
class and its keyword arguments (``nni_kwargs``); a new one-shot algorithm also needs its
Lightning module (:mod:`strategies.oneshot_modules`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

from nni.nas.oneshot.pytorch.sampling import has_tianshou
from nni.nas.strategy import (DARTS, ENAS, GridSearch, GumbelDARTS, Proxyless, Random,
                              RandomOneShot, RegularizedEvolution)

from strategies.oneshot_modules import (FrozenArchModule, PoseDartsModule, PoseEnasModule,
                                        PoseGumbelModule, PoseRandomSamplingModule, SyncModule,
                                        UnrolledDartsModule)
from strategies.spos import pick_best_path
from strategies.tuners import PoseTPE
from trainers.config.schema import Config
from search_space.errors import UserInputError

__all__ = ["StrategyEntry", "STRATEGIES", "strategy_names", "describe"]

logger = logging.getLogger(__name__)


def seed_only(cfg: Config) -> dict[str, Any]:
    """NNI keyword arguments of a sampler that takes only a seed (Random, GridSearch)."""
    return {"seed": cfg.seed}


def evolution_kwargs(cfg: Config) -> dict[str, Any]:
    """Regularized evolution sized to the budget: a population of min(20, trials/2)."""
    population = max(2, min(20, cfg.search.num_trials // 2))
    return {"population_size": population, "sample_size": max(2, population // 2),
            "mutation_prob": 0.1, "seed": cfg.seed}


def tpe_kwargs(cfg: Config) -> dict[str, Any]:
    """NNI's TPE tuner maximising the trial's reported objective."""
    return {"optimize_mode": "maximize", "seed": cfg.seed}


def needs_tianshou() -> None:
    """ENAS's controller: tianshou 0.4.11 and gym."""
    if not has_tianshou:
        raise UserInputError("--strategy enas", "ENAS needs tianshou 0.4.11 and gym: make setup "
                             "installs them (pip install --no-deps tianshou==0.4.11 && pip "
                             "install gym numba h5py)")


def without_widths(cfg: Config) -> Config:
    """The space with the base widths only (NNI 3.0's Proxyless has no one-shot width choices)."""
    if not cfg.space.backbone.width_multipliers:
        return cfg
    logger.info("proxyless: NNI 3.0's Proxyless has no one-shot width choices; searching operations "
                "and inputs with the base widths (space.backbone.width_multipliers ignored)")
    backbone = replace(cfg.space.backbone, width_multipliers=())
    return replace(cfg, space=replace(cfg.space, backbone=backbone))


@dataclass(frozen=True)
class StrategyEntry:
    """One registered strategy.

    Attributes:
        kind: ``"oneshot"`` (a supernet trained once), ``"multitrial"`` (candidates trained one
            by one), or ``"prune_rate"`` (channel pruning of a trained network).
        description: one line for ``--help`` and the README.
        nni_strategy: the NNI strategy class that does the work (none for ``prune_rate``).
        module: one-shot: our Lightning module, handed to the NNI strategy.
        loaders: one-shot: ``"single"`` (the whole training set), ``"bilevel"`` (NNI's
            ``{"train", "val"}`` halves) or ``"tagged"`` (ENAS: the halves one after the other).
        nni_kwargs: the NNI strategy's keyword arguments from the config (multi-trial).
        requires: raises :class:`~search_space.errors.UserInputError` when something the
            strategy needs is not installed.
        adapt_config: the config the strategy searches (e.g. without the width choices it
            cannot search).
        after_search: one-shot: a phase run on the trained supernet, ``(cfg, oneshot_module,
            trainer, data, out)``, that may rewrite ``arch.json`` (SPOS: the best of sampled
            paths).
    """

    kind: Literal["oneshot", "multitrial", "prune_rate"]
    description: str
    nni_strategy: type | None = None
    module: type | None = None
    loaders: Literal["single", "bilevel", "tagged"] = "single"
    nni_kwargs: Callable[[Config], dict[str, Any]] = seed_only
    requires: Callable[[], None] | None = None
    adapt_config: Callable[[Config], Config] | None = None
    after_search: Callable[..., None] | None = None

    def make_nni_strategy(self, cfg: Config, wrapped: type | None = None) -> Any:
        """NNI's strategy object for ``cfg``: the registered class built with
        ``nni_kwargs(cfg)``, or (one-shot) ``wrapped``, that class wired to our Lightning
        module, built with the config alone."""
        if self.requires is not None:
            self.requires()
        if wrapped is not None:
            return wrapped(cfg)
        return self.nni_strategy(**self.nni_kwargs(cfg))


#: strategy name → :class:`StrategyEntry`
STRATEGIES: dict[str, StrategyEntry] = {
    "none": StrategyEntry("oneshot", "PNFS baseline: alpha/beta frozen uniform, only the "
                          "weights train", DARTS, FrozenArchModule),
    "sync": StrategyEntry("oneshot", "PNFS: alpha/beta trained jointly with the weights on the "
                          "training loss", DARTS, SyncModule),
    "darts": StrategyEntry("oneshot", "first-order DARTS (NNI): weights and alpha/beta on the "
                           "two halves of the training set, warm-up epochs with alpha/beta "
                           "frozen", DARTS, PoseDartsModule, "bilevel"),
    "darts2": StrategyEntry("oneshot", "second-order (unrolled) DARTS, finite-difference "
                            "Hessian-vector product", DARTS, UnrolledDartsModule, "bilevel"),
    "gumbel": StrategyEntry("oneshot", "GumbelDARTS (NNI), temperature 1 -> 0.33", GumbelDARTS,
                            PoseGumbelModule, "bilevel"),
    "proxyless": StrategyEntry("oneshot", "ProxylessNAS (NNI) over operations and inputs (NNI "
                               "3.0 has no one-shot width choices for it: widths fixed)",
                               Proxyless, PoseDartsModule, "bilevel", adapt_config=without_widths),
    "spos": StrategyEntry("oneshot", "single-path one-shot (NNI RandomOneShot), then the best "
                          "of search.num_trials sampled paths on the validation set",
                          RandomOneShot, PoseRandomSamplingModule, after_search=pick_best_path),
    "enas": StrategyEntry("oneshot", "ENAS (NNI): an RL controller samples paths, rewarded by "
                          "the negative loss on the second half (needs tianshou 0.4.11 and "
                          "gym, installed by make setup)", ENAS, PoseEnasModule, "tagged",
                          requires=needs_tianshou),
    "random": StrategyEntry("multitrial", "search.num_trials random architectures (NNI's "
                            "Random), each trained search.trial_epochs epochs and evaluated",
                            Random),
    "evolution": StrategyEntry("multitrial", "regularized evolution (NNI) over "
                               "search.num_trials trials", RegularizedEvolution,
                               nni_kwargs=evolution_kwargs),
    "tpe": StrategyEntry("multitrial", "tree-structured Parzen estimator (NNI's TPE tuner) over "
                         "search.num_trials trials", PoseTPE, nni_kwargs=tpe_kwargs),
    "grid": StrategyEntry("multitrial", "grid search (NNI's GridSearch, shuffled by the seed): "
                          "the first search.num_trials grid points", GridSearch),
    "prune_rate": StrategyEntry("prune_rate", "adaptive pruning-rate channel pruning of the "
                                "HRNet widths (APRCP): importance criterion, global threshold, "
                                "rate search"),
}


def strategy_names() -> list[str]:
    """Registered strategy names, in registry order."""
    return list(STRATEGIES)


def describe() -> str:
    """One line per strategy, for ``--help``."""
    return "\n".join(f"  {name:<11} {e.description}" for name, e in STRATEGIES.items())
