"""Adaptive pruning-rate channel pruning of the HRNet widths, after APRCP HRNet.

1. A trained full-width network (``search.prune_rate.weights``, or trained here for ``search.epochs``).
2. Channel importance over the inner channels of the residual blocks — Bottleneck ``bn1``/``bn2``,
   BasicBlock ``bn1`` (block outputs, transitions and fuse layers keep their widths) — by
   ``search.prune_rate.criterion``: ``scale`` |BN γ| (APRCP v1), ``shift`` |BN β| (v2),
   ``scale_shift`` |γ| + |β| (v3), or ``l1`` (L1 norm of the conv filter making the channel).
3. A pruning rate r sets one global threshold: the r-quantile of all importances. A layer keeps
   the channels above it, at least ``search.prune_rate.min_keep`` of its channels, rounded up to the
   nearest width the space allows for that block (its ``width_multipliers`` grid).
4. Rate selection, stated plainly: **maximise r subject to AP(full) − AP(pruned at r) ≤
   search.prune_rate.tolerance**, AP measured on the validation set before any retraining, with the
   kept channels' weights. ``simple`` scans r = step, 2·step, … and stops at the first violation;
   ``golden`` shrinks [feasible, infeasible] by golden-section probes (``search.num_trials`` of
   them). (The APRCP code minimises a sum whose sign looks inverted; we do not copy that.)

Writes ``arch.json`` (the widths, the kept channel indices under ``channels``), ``pruned.pth``
(the pruned network's weights, for fine-tuning: ``model.pretrained``) and ``history.jsonl`` (one
line per probed rate).
"""
from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch

from search_space.inherit import INNER_WIDTH_LABEL as _INNER
from search_space.inherit import block_module_path
from search_space.supernet import space_labels
from strategies.records import HistoryWriter
from trainers.network.arch_file import ArchFile, load_arch, save_arch
from trainers.network.build import build_network, spec_from_choices
from trainers.weights.checkpoint import read_state_dict, save_state_dict
from trainers.config.schema import Config
from trainers.data.registry import primary_metric
from trainers.engine.distill import build_teacher
from trainers.engine.fit import evaluate_model, fit
from search_space.errors import UserInputError
from trainers.report import format_table

__all__ = ["run_prune_rate", "channel_importance", "widths_at_rate", "select_rate",
           "widths_at_stage_rates", "prune_rate_search_space", "pruned_choices"]

logger = logging.getLogger(__name__)

GOLDEN = (math.sqrt(5) - 1) / 2


def channel_importance(state: Mapping[str, torch.Tensor], labels: list[str],
                       criterion: str) -> dict[str, torch.Tensor]:
    """Per inner-width label, the importance of each of its channels in ``state``."""
    scores = {}
    for label in labels:
        block, i = block_module_path(label)
        gamma = state[f"{block}.bn{i + 1}.weight"].abs()
        beta = state[f"{block}.bn{i + 1}.bias"].abs()
        if criterion == "scale":
            scores[label] = gamma
        elif criterion == "shift":
            scores[label] = beta
        elif criterion == "scale_shift":
            scores[label] = gamma + beta
        else:
            w = state[f"{block}.conv{i + 1}.weight"]
            scores[label] = w.abs().flatten(1).sum(1)
    return scores


def widths_at_rate(scores: Mapping[str, torch.Tensor], allowed: Mapping[str, list[int]],
                   rate: float, min_keep: float) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Widths and kept channel indices (ascending) for pruning rate ``rate``."""
    everything = torch.cat([s.flatten() for s in scores.values()])
    threshold = torch.quantile(everything.float(), rate) if rate > 0 else -math.inf
    widths, kept = {}, {}
    for label, s in scores.items():
        n = len(s)
        keep = int((s > threshold).sum()) if rate > 0 else n
        keep = max(keep, math.ceil(min_keep * n), 1)
        width = min((v for v in allowed[label] if v >= keep), default=max(allowed[label]))
        order = torch.argsort(s, descending=True, stable=True)[:width]
        widths[label] = int(width)
        kept[label] = sorted(int(i) for i in order)
    return widths, kept


def widths_at_stage_rates(scores: Mapping[str, torch.Tensor], allowed: Mapping[str, list[int]],
                          rates: Mapping[int, float], min_keep: float
                          ) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Like :func:`widths_at_rate` with one rate (and threshold) per stage (``{stage: r}``;
    stages not given keep all channels): the per-stage space of ``experiments/prune_rate.yml``."""
    widths, kept = {}, {}
    for stage in sorted({int(_INNER.search(k).group(1)) for k in scores}):
        group = {k: v for k, v in scores.items() if int(_INNER.search(k).group(1)) == stage}
        w, c = widths_at_rate(group, allowed, float(rates.get(stage, 0.0)), min_keep)
        widths.update(w)
        kept.update(c)
    return widths, kept


def prune_rate_search_space(cfg: Config) -> dict[str, Any]:
    """NNI search space of per-stage pruning rates: ``stage{s}/rate`` ∈ {0, step, …, max} with
    ``search.prune_rate.step`` and ``search.prune_rate.max_rate``."""
    labels = space_labels(cfg.space, cfg.dataset.name)
    stages = sorted({int(m.group(1)) for k in labels if (m := _INNER.search(k))})
    if not stages:
        raise UserInputError("config", "no block widths to prune: set space.backbone."
                             "width_multipliers", field="space.backbone")
    return {f"stage{s}/rate": {"_type": "quniform",
                                 "_value": [0.0, cfg.search.prune_rate.max_rate, cfg.search.prune_rate.step]}
            for s in stages}


def _width_plan(cfg: Config) -> tuple[list[str], dict[str, list[int]], dict[str, Any]]:
    """The block inner-width labels, their allowed widths, and the full-width choices (other
    decisions from ``search.prune_rate.base_arch``)."""
    labels = space_labels(cfg.space, cfg.dataset.name)
    inner = [k for k in labels if _INNER.search(k)]
    if not inner:
        raise UserInputError("config", "no block widths to prune: set space.backbone."
                             "width_multipliers and search_block_widths", field="space.backbone")
    allowed = {k: sorted(labels[k]) for k in inner}
    full_choices = {**_fixed_choices(cfg, labels),
                    **{k: max(values) for k, values in labels.items()
                       if k.endswith("/width") or _INNER.search(k)}}
    return inner, allowed, full_choices


def _pruned(cfg: Config, full_choices: Mapping[str, Any], state: Mapping[str, torch.Tensor],
            widths: Mapping[str, int], kept: Mapping[str, list[int]]) -> tuple[Any, dict]:
    """The frozen network at ``widths`` with the kept channels' weights: (network, choices)."""
    choices = {**full_choices, **widths}
    net = build_network(spec_from_choices(cfg, choices, kept), state, inherit=True)
    return net, choices


def pruned_choices(cfg: Config, rates: Mapping[int, float]
                   ) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The architecture pruned at per-stage ``rates`` by the channel importance of
    ``search.prune_rate.weights``: (choices, kept channels). Its weights are those channels of
    ``search.prune_rate.weights`` (:func:`trainers.network.build.build_network` with ``inherit``)."""
    if not cfg.search.prune_rate.weights:
        raise UserInputError("config", "per-stage pruning trials need the trained full-width "
                             "network", field="search.prune_rate.weights")
    inner, allowed, full_choices = _width_plan(cfg)
    state = read_state_dict(cfg.search.prune_rate.weights, field="search.prune_rate.weights")
    scores = channel_importance(state, inner, cfg.search.prune_rate.criterion)
    widths, kept = widths_at_stage_rates(scores, allowed, rates, cfg.search.prune_rate.min_keep)
    return {**full_choices, **widths}, kept


def select_rate(evaluate: Any, feasible: Any, base: dict[str, Any], selection: str,
                step: float, max_rate: float, probes: int) -> tuple[dict[str, Any], list[dict]]:
    """The largest feasible rate: ``evaluate(rate, trial) -> record`` (with ``"rate"``),
    ``feasible(record) -> bool``; ``base`` is the record at rate 0 (feasible by definition).
    Returns the chosen record and every probed record."""
    best, probed = base, []
    if selection == "simple":
        k = 1
        while k * step <= max_rate + 1e-9:
            r = evaluate(k * step, k)
            probed.append(r)
            if not feasible(r):
                break
            best = r
            k += 1
        return best, probed
    top = evaluate(max_rate, 1)
    probed.append(top)
    if feasible(top):
        return top, probed
    lo, hi = 0.0, max_rate  # feasible / infeasible bounds
    for trial in range(2, max(2, probes) + 1):
        rate = hi - GOLDEN * (hi - lo)
        r = evaluate(rate, trial)
        probed.append(r)
        if feasible(r):
            lo, best = rate, r
        else:
            hi = rate
    return best, probed


def _fixed_choices(cfg: Config, labels: Mapping[str, Any]) -> dict[str, Any]:
    """Non-width decisions from ``search.prune_rate.base_arch``."""
    others = [k for k in labels if not (k.endswith("/width") or _INNER.search(k))]
    if not others:
        return {}
    if not cfg.search.prune_rate.base_arch:
        raise UserInputError("config", "prune_rate prunes channel widths; the space also has "
                             f"{len(others)} other decisions (e.g. {others[0]}): give "
                             "search.prune_rate.base_arch (a derived.json) to fix them",
                             field="search.prune_rate.base_arch")
    base = load_arch(cfg.search.prune_rate.base_arch)
    return {k: base.choices[k] for k in others if k in base.choices}


def run_prune_rate(cfg: Config, out: Path, resume: bool = False) -> dict[str, Any]:
    """Search the pruning rate (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    s = cfg.search
    metric = primary_metric(cfg)
    inner, allowed, full_choices = _width_plan(cfg)
    full = build_network(spec_from_choices(cfg, full_choices), s.prune_rate.weights or None,
                         field="search.prune_rate.weights")
    if not s.prune_rate.weights:
        logger.info(f"prune_rate: training the full-width network for {s.epochs} epochs first")
        base_cfg = replace(cfg, train=replace(cfg.train, epochs=s.epochs))
        fit(base_cfg, full, {"name": "prune_rate_base"}, out / "base", resume=resume and
            (out / "base" / "last.ckpt").is_file(), progress=False,
            teacher=build_teacher(cfg) if s.distill else None)
    state = {k: v.detach().clone() for k, v in full.state_dict().items()}
    scores = channel_importance(state, inner, s.prune_rate.criterion)
    history = HistoryWriter(out / "history.jsonl", key="trial")
    if history.path.is_file():
        history.path.unlink()

    def evaluate(rate: float, trial: int) -> dict[str, Any]:
        widths, kept = widths_at_rate(scores, allowed, rate, s.prune_rate.min_keep)
        net, choices = _pruned(cfg, full_choices, state, widths, kept)
        result = evaluate_model(cfg, net, out / "probe", progress=False)
        value = float(result["metrics"].get(metric, float("nan")))
        record = {"trial": trial, "strategy": "prune_rate", "rate": round(rate, 4), metric: value,
                  "params": int(sum(p.numel() for p in net.parameters())), "choices": choices}
        history.append(record)
        return {**record, "kept": kept, "net": net}

    base = evaluate(0.0, 0)
    base_value = base[metric]
    records = [base]
    logger.info(f"full-width network: {metric} {base_value:.4f}, {base['params']:,} params")

    def feasible(r: dict[str, Any]) -> bool:
        return math.isfinite(r[metric]) and base_value - r[metric] <= s.prune_rate.tolerance

    best, probed = select_rate(evaluate, feasible, base,
                               s.prune_rate.selection, s.prune_rate.step, s.prune_rate.max_rate, s.num_trials)
    records += probed
    rows = [[r["trial"], r["rate"], f"{r[metric]:.4f}", f"{base_value - r[metric]:+.4f}",
             r["params"], "yes" if feasible(r) else "no"] for r in records]
    logger.info(format_table(["probe", "rate", metric, "drop", "params", "within tolerance"], rows))
    widths = {k: v for k, v in best["choices"].items() if _INNER.search(k)}
    channels = {k: best["kept"][k] for k in widths}
    save_arch(out / "arch.json", ArchFile(cfg, best["choices"], "search", {},
                                          {"strategy": "prune_rate", "rate": best["rate"],
                                           metric: best[metric], f"full_{metric}": base_value,
                                           "criterion": s.prune_rate.criterion,
                                           "selection": s.prune_rate.selection,
                                           "params": best["params"],
                                           "full_params": base["params"]},
                                          channels=channels))
    save_state_dict(best["net"], out / "pruned.pth")
    logger.info(f"chosen rate {best['rate']}: {metric} {best[metric]:.4f} (full {base_value:.4f}), "
                f"params {best['params']:,} of {base['params']:,}; weights: {out / 'pruned.pth'}")
    return {"metric": metric,
            "history": [{k: v for k, v in r.items() if k not in ("net", "kept")} for r in records],
            "arch": str(out / "arch.json")}

