"""The strategy registry: every name ``strategies.search --strategy`` accepts, in one table.

Each entry says what kind of search it is (how :mod:`strategies.search` runs it), what it is
(``--help`` and the README take these lines), and for NNI-backed strategies which NNI strategy
class does the work — for one-shot strategies also the Lightning module we give it
(:mod:`strategies.oneshot_modules`) and the loaders it trains on.

To add a strategy: one entry here (and, for a new one-shot algorithm, its Lightning module).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nni.nas.strategy import (DARTS, ENAS, GumbelDARTS, Proxyless, Random, RandomOneShot,
                              RegularizedEvolution)

from strategies.oneshot_modules import (FrozenArchModule, PoseDartsModule, PoseEnasModule,
                                        PoseGumbelModule, PoseRandomSamplingModule, SyncModule,
                                        UnrolledDartsModule)

__all__ = ["StrategyEntry", "STRATEGIES", "strategy_names", "describe"]


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
    """

    kind: Literal["oneshot", "multitrial", "prune_rate"]
    description: str
    nni_strategy: type | None = None
    module: type | None = None
    loaders: Literal["single", "bilevel", "tagged"] = "single"


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
                               Proxyless, PoseDartsModule, "bilevel"),
    "spos": StrategyEntry("oneshot", "single-path one-shot (NNI RandomOneShot), then the best "
                          "of search.num_trials sampled paths on the validation set",
                          RandomOneShot, PoseRandomSamplingModule),
    "enas": StrategyEntry("oneshot", "ENAS (NNI): an RL controller samples paths, rewarded by "
                          "the negative loss on the second half (needs tianshou 0.4.11 and "
                          "gym, installed by make setup)", ENAS, PoseEnasModule, "tagged"),
    "random": StrategyEntry("multitrial", "search.num_trials random architectures (NNI's "
                            "Random), each trained search.trial_epochs epochs and evaluated",
                            Random),
    "evolution": StrategyEntry("multitrial", "regularized evolution (NNI) over "
                               "search.num_trials trials", RegularizedEvolution),
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
