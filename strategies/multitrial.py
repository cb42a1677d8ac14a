"""Multi-trial strategies in process: NNI's ``Random`` and ``RegularizedEvolution`` on a
``SequentialExecutionEngine``. Each sampled architecture goes through the one trial path
(:func:`strategies.trials.run_trial`, also what an ``nnictl`` trial runs): frozen, trained
``search.trial_epochs`` epochs at ``search.batch_size``, scored by the objective, reported to NNI
(``nni.report_final_result``).

Under a hard GFLOPs budget (``search.goal.objective: flops_constraint``, ``search.goal.hard``)
a sampled architecture above ``target_gflops`` is not trained (:func:`strategies.trials.run_trial`
counts its frozen network on the meta device first, in milliseconds): it is recorded as
``over budget`` and reported to NNI with the objective it would have scored, 0. The search's
time and trials go to architectures that can win; when none fits, the cheapest sampled one is
kept, with a warning (as the Prune step's budget does).

With ``search.inheritance.enabled`` (EvoPose2D's weight inheritance) a trial starts from the
last weights of the nearest trial trained before it (:func:`nearest_trained`) and trains
``search.inheritance.epochs`` epochs; its record names that trial (``inherited_from``), how many
choices differ (``changes``) and how many tensors it took (``inherited``).

A trial that crashes is logged, recorded as failed in ``history.jsonl`` and skipped. ``--resume``
replays the recorded trials (NNI's samplers are seeded with ``seed``, so they propose the same
architectures) without training them again.
"""
from __future__ import annotations

import json
import logging
import math
import time
import traceback
from pathlib import Path
from typing import Any

import nni
import torch
from nni.nas.evaluator import FunctionalEvaluator
from nni.nas.execution import SequentialExecutionEngine
from nni.nas.space import RawFormatModelSpace

from search_space.supernet import build
from strategies.budget import hard_gflops_target
from strategies.records import HistoryWriter
from strategies.registry import STRATEGIES
from strategies.latency import latency_table_path
from strategies.trials import run_trial
from trainers.network.arch_file import ArchFile, save_arch
from trainers.config.schema import Config
from trainers.data.registry import primary_metric
from search_space.errors import UserInputError
from trainers.report import format_table

__all__ = ["run_multitrial", "make_nni_strategy", "nearest_trained", "choice_changes"]

logger = logging.getLogger(__name__)


def make_nni_strategy(name: str, cfg: Config) -> Any:
    """NNI's strategy object for the multi-trial strategy ``name``, built as its registry entry
    says (:data:`~strategies.registry.STRATEGIES`)."""
    return STRATEGIES[name].make_nni_strategy(cfg)


def _key(choices: dict) -> str:
    return json.dumps(choices, sort_keys=True)


def choice_changes(a: dict[str, Any], b: dict[str, Any]) -> int:
    """How many architecture choices differ between two candidates (a label one lacks counts)."""
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def nearest_trained(choices: dict[str, Any], trained: list[dict[str, Any]],
                    max_changes: int = 0) -> dict[str, Any] | None:
    """The donor of weight inheritance: of the ``trained`` records (``trial``, ``choices``,
    ``objective``), the one the fewest choices away from ``choices``; ties go to the higher
    objective, then the earlier trial. ``max_changes`` > 0: none further than that. ``None``
    when there is none."""
    best, best_key = None, None
    for rec in trained:
        changes = choice_changes(choices, rec["choices"])
        if max_changes and changes > max_changes:
            continue
        key = (changes, -rec["objective"], rec["trial"])
        if best_key is None or key < best_key:
            best, best_key = rec, key
    return best


def _recorded_trials(path: Path, resume: bool) -> dict[str, dict]:
    """``--resume``: the trials ``path`` records, by architecture (replayed, not retrained);
    otherwise none, and an old history is removed."""
    done: dict[str, dict] = {}
    if resume:
        if not path.is_file():
            raise UserInputError(str(path), "no history to resume from (--resume)")
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[_key(rec["choices"])] = rec
        logger.info(f"resuming: {len(done)} recorded trials are replayed without training")
    elif path.is_file():
        path.unlink()
    return done


def run_multitrial(cfg: Config, name: str, out: Path, resume: bool = False) -> dict[str, Any]:
    """Run ``search.num_trials`` trials of strategy ``name`` (fewer when ``search.max_seconds``
    runs out first: no trial starts after it); write arch.json and history."""
    out.mkdir(parents=True, exist_ok=True)
    metric = primary_metric(cfg)
    history = HistoryWriter(out / "history.jsonl", key="trial")
    done = _recorded_trials(history.path, resume)
    state: dict[str, Any] = {"trial": 0, "best": None, "records": [], "cheapest": None}
    budget = hard_gflops_target(cfg)
    inheritance = cfg.search.inheritance
    trained: list[dict[str, Any]] = []  # the donors of weight inheritance so far

    def checkpoint(trial: int) -> Path:
        return out / "trials" / f"{trial:03d}" / "last.ckpt"

    def evaluate(model: torch.nn.Module) -> None:
        trial = state["trial"]
        state["trial"] += 1
        choices = dict(getattr(model, "choices", {}))
        record: dict[str, Any] = {"trial": trial, "strategy": name, "choices": choices}
        cached = done.get(_key(choices))
        if cached is not None:
            record = {**cached, "trial": trial}
        else:
            start = time.time()
            donor = (nearest_trained(choices, trained, inheritance.max_changes)
                     if inheritance.enabled else None)
            inheriting = {"inherited_from": donor["trial"],
                          "changes": choice_changes(choices, donor["choices"])} if donor else {}
            try:
                scored = run_trial(cfg, choices, out / "trials" / f"{trial:03d}",
                                   latency_table=latency_table_path(cfg, out),
                                   donor=checkpoint(donor["trial"]) if donor else None)
                status = "over budget" if scored.pop("over_budget", False) else "succeeded"
                # the donor is named when run_trial copied from it (a draw above a hard budget
                # is scored 0 untrained: it inherits nothing)
                record.update({**(inheriting if "inherited" in scored else {}), **scored,
                               "status": status, "seconds": round(time.time() - start, 1)})
            except Exception as err:  # noqa: BLE001 - a failed trial must not end the search
                logger.error("trial %d failed: %s\n%s", trial, err, traceback.format_exc())
                record.update({**inheriting, "status": "failed",
                               "error": f"{type(err).__name__}: {err}"})
            history.append(record)
        state["records"].append(record)
        if record.get("status") == "over budget":
            logger.info(f"trial {trial + 1}/{cfg.search.num_trials}: over budget "
                        f"({record['gflops']:.4g} > {budget:.4g} GFLOPs), not trained")
            if state["cheapest"] is None or record["gflops"] < state["cheapest"][0]:
                state["cheapest"] = (record["gflops"], choices)
            nni.report_final_result(0.0)
            return
        value = record.get("objective", record.get(metric))
        ok = record.get("status") == "succeeded" and value is not None and math.isfinite(value)
        if ok and inheritance.enabled and checkpoint(trial).is_file():
            trained.append({"trial": trial, "choices": choices, "objective": value})
        shown = record.get(metric)
        logger.info(f"trial {trial + 1}/{cfg.search.num_trials}: {record.get('status')} "
                    f"{metric}={shown if shown is not None else float('nan'):.4f}"
                    + (f" (from trial {record['inherited_from'] + 1}'s weights, "
                       f"{record['changes']} choices changed, {record.get('epochs')} epochs)"
                       if "inherited_from" in record else "")
                    + (f" objective={value:.4f}" if cfg.search.goal.objective != "metric" and ok else ""))
        if ok and (state["best"] is None or value > state["best"][0]):
            state["best"] = (value, choices)
            save_arch(out / "arch.json", ArchFile(cfg, choices, "search", {},
                                                  {"strategy": name, "trial": trial,
                                                   metric: record.get(metric), "objective": value}))
        if ok:
            nni.report_final_result(float(value))
        else:
            raise RuntimeError(record.get("error", "trial failed"))

    space = build(cfg.space, cfg.dataset.name)
    strategy = make_nni_strategy(name, cfg)
    engine = SequentialExecutionEngine(max_model_count=cfg.search.num_trials,
                                       max_duration=cfg.search.max_seconds or None,
                                       continue_on_failure=True)
    strategy.initialize(RawFormatModelSpace(space, FunctionalEvaluator(evaluate)), engine)
    strategy.run()
    rows = [[r["trial"], r.get("status"), r.get(metric), r.get("params"), r.get("gflops")]
            for r in state["records"]]
    logger.info(format_table(["trial", "status", metric, "params", "GFLOPs"], rows))
    over = sum(r.get("status") == "over budget" for r in state["records"])
    if over:
        logger.info(f"{over} of {len(state['records'])} sampled architectures were above the "
                    f"{budget:.4g} GFLOPs budget and not trained")
    if state["best"] is None and state["cheapest"] is not None:
        gflops, choices = state["cheapest"]
        logger.warning(f"no sampled architecture within the {budget:.4g} GFLOPs budget; keeping "
                       f"the cheapest, {gflops:.4g} GFLOPs, untrained")
        save_arch(out / "arch.json", ArchFile(cfg, choices, "search", {},
                                              {"strategy": name, "objective": 0.0,
                                               "over_budget": gflops}))
        return {"metric": metric, "history": state["records"], "arch": str(out / "arch.json")}
    if state["best"] is None:
        raise UserInputError(str(out), "no trial succeeded (see history.jsonl for the errors)")
    return {"metric": metric, "history": state["records"], "arch": str(out / "arch.json")}
