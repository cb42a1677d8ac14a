"""The strategies ``strategies.search`` knows: name → (kind, what it is)."""
from __future__ import annotations

__all__ = ["STRATEGIES", "describe"]

#: name → (kind: "oneshot" | "multitrial" | "prune_rate", description)
STRATEGIES: dict[str, tuple[str, str]] = {
    "none": ("oneshot", "PNFS baseline: alpha/beta frozen uniform, only the weights train"),
    "sync": ("oneshot", "PNFS: alpha/beta trained jointly with the weights on the training loss"),
    "darts": ("oneshot", "first-order DARTS (NNI): weights and alpha/beta on the two halves of "
                         "the training set, warm-up epochs with alpha/beta frozen"),
    "darts2": ("oneshot", "second-order (unrolled) DARTS, finite-difference Hessian-vector "
                          "product"),
    "gumbel": ("oneshot", "GumbelDARTS (NNI)"),
    "proxyless": ("oneshot", "ProxylessNAS (NNI) over operations and inputs (widths fixed)"),
    "spos": ("oneshot", "single-path one-shot (NNI RandomOneShot), then the best of "
                        "search.num_trials sampled paths on the validation set"),
    "enas": ("oneshot", "ENAS (NNI): an RL controller samples paths, rewarded by the negative "
                        "loss on the second half (needs tianshou 0.4.11: make enas)"),
    "random": ("multitrial", "search.num_trials random architectures (NNI's random sampling), "
                             "each trained search.trial_epochs epochs and evaluated"),
    "evolution": ("multitrial", "regularized evolution (NNI) over search.num_trials trials"),
    "prune_rate": ("prune_rate", "adaptive pruning-rate channel pruning of the HRNet widths "
                                 "(APRCP): importance criterion, global threshold, rate search"),
}


def describe() -> str:
    """One line per strategy, for ``--help``."""
    return "\n".join(f"  {name:<11} {text}" for name, (_, text) in STRATEGIES.items())
