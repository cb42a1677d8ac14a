"""What a candidate scores: the hardware-aware objective of a search (``search.goal.objective``), and
the one trial path that trains and scores a candidate."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl

from search_space.counting import param_flop_report
from search_space.inherit import inherit_overlapping
from strategies.budget import frozen_gflops, hard_gflops_target
from strategies.latency import latency_table_path, space_latency_table
from trainers.network.build import build_network, spec_from_choices
from trainers.config.schema import Config, GoalConfig
from trainers.data.registry import primary_metric
from trainers.engine.distill import build_teacher
from trainers.engine.fit import fit
from trainers.weights.checkpoint import read_state_dict

__all__ = ["objective", "trial_config", "run_trial", "COST_KEY"]

#: search.goal.cost → the record key holding a candidate's cost
COST_KEY = {"gflops": "gflops", "latency": "latency_ms"}


def objective(metric: float, cost: float | None, s: GoalConfig) -> float:
    """What trials and rankings maximise; ``cost``: the candidate's GFLOPs, or its latency (ms)
    with ``search.goal.cost latency``; T: ``search.goal.target_gflops`` or ``search.goal.target_ms``.

    - ``metric``: AP (COCO) or PCKh (MPII) alone;
    - ``flops_penalty``: ``metric × (cost / T) ** -penalty_weight`` when above the target, the
      metric otherwise (MnasNet's soft constraint);
    - ``flops_constraint``: the metric when ``cost ≤ T``, else 0.
    """
    if s.objective == "metric" or not math.isfinite(metric):
        return metric
    if cost is None or s.target <= 0:
        target = "target_ms" if s.cost == "latency" else "target_gflops"
        raise ValueError(f"search.goal.objective needs search.goal.{target} > 0 and the "
                         f"candidate's {s.cost}")
    if cost <= s.target:
        return metric
    if s.objective == "flops_constraint":
        return 0.0
    return metric * (cost / s.target) ** (-s.penalty_weight)


def trial_config(cfg: Config, inherited: bool = False) -> Config:
    """The recipe of a trial: the config's training recipe for ``search.trial_epochs`` epochs at
    ``search.batch_size`` (a search's budget, whoever runs the trial); a trial that ``inherited``
    a trained neighbour's weights trains ``search.inheritance.epochs`` epochs when set."""
    epochs = cfg.search.trial_epochs
    if inherited and cfg.search.inheritance.epochs:
        epochs = cfg.search.inheritance.epochs
    return replace(cfg, train=replace(cfg.train, epochs=epochs, batch_size=cfg.search.batch_size))


def run_trial(cfg: Config, choices: Mapping[str, Any], out: Path, *,
              channels: Mapping[str, list[int]] | None = None,
              callbacks: Sequence[Any] = (),
              latency_table: str | Path | None = None,
              donor: str | Path | None = None) -> dict[str, Any]:
    """Train and score one candidate: the one trial path of ``nnictl`` trials
    (``trainers/trial.py``) and the in-process multi-trial strategies (``random``,
    ``evolution``), so both are the same experiment.

    Seeds with ``cfg.seed``, freezes ``choices``, starts from ``search.inherit_from`` (a one-shot
    supernet's weights) when set — or, for a channel-pruned candidate (``channels``), from the
    kept channels of ``search.prune_rate.weights``, else from the backbone of ``model.pretrained`` if
    set — trains with :func:`trial_config` and evaluates.

    ``donor``: a trained trial's checkpoint (weight inheritance, ``search.inheritance``): the
    network starts from its overlapping weights
    (:func:`search_space.inherit.inherit_overlapping`) and trains
    ``search.inheritance.epochs`` epochs (:func:`trial_config`).

    With ``search.goal.cost latency`` the candidate's latency is the table's prediction
    (:mod:`strategies.latency`; ``latency_table``: its file, by default beside ``out``).

    Under a hard GFLOPs budget (:func:`strategies.budget.hard_gflops_target`) a candidate above
    ``target_gflops`` is not trained: it scores the objective's 0 at once (counted on the meta
    device) and nothing is written to ``out``.

    Returns:
        ``{"objective", <metric>, "params", "gflops", "train_loss", "epochs"}`` (+
        ``"latency_ms"``; with a ``donor``, ``"inherited"``: tensors copied whole / in part /
        left initial); over the budget ``{"objective": 0.0, "gflops", "over_budget": True}``.
    """
    budget = hard_gflops_target(cfg)
    if budget is not None:
        gflops = frozen_gflops(cfg, choices, channels)
        if gflops > budget:
            return {"objective": 0.0, "gflops": round(gflops, 5), "over_budget": True}
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    spec = spec_from_choices(cfg, choices, channels)
    if channels:
        weights, source = cfg.search.prune_rate.weights, "search.prune_rate.weights"
    else:
        weights, source = cfg.search.inherit_from, "search.inherit_from"
    if weights:
        model = build_network(spec, weights, inherit=True, field=source)
    else:  # a pretrained backbone (ImageNet), as PNFS initialises its candidates
        model = build_network(spec, cfg.model.pretrained or None, scope="backbone")
    inherited = None
    if donor is not None:
        inherited = inherit_overlapping(model, read_state_dict(donor, "search.inheritance"))
    metric = primary_metric(cfg)
    report = param_flop_report(model, cfg.model.input_size)  # the architecture's cost
    teacher = build_teacher(cfg) if cfg.search.distill else None
    recipe = trial_config(cfg, inherited=donor is not None)
    summary = fit(recipe, model, spec.record(), out, progress=False,
                  callbacks=list(callbacks), teacher=teacher)
    value = summary["best"] if summary["best"] is not None else float("nan")
    cost: dict[str, float] = {"gflops": round(report["gflops"], 5)}
    if cfg.search.goal.cost == "latency":
        table = space_latency_table(cfg, latency_table or latency_table_path(cfg, out.parent))
        cost["latency_ms"] = round(table.predict(model), 5)
        table.save()
    return {"objective": objective(value, cost[COST_KEY[cfg.search.goal.cost]], cfg.search.goal),
            metric: value, "params": report["params"], **cost,
            "train_loss": summary["history"][-1]["train_loss"] if summary["history"] else None,
            "epochs": recipe.train.epochs,
            **({"inherited": inherited} if inherited is not None else {})}
