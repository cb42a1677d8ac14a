"""A search goal's GFLOPs target relative to a reference network (``search.goal.target_reference``).

A number in ``search.goal.target_gflops`` is true at one input size only: a budget of "the plain
head's cost" written as 0.04171 GFLOPs at 128×96 is a quarter of it at 256×192, and nothing says
so. ``target_reference`` names the network instead and :func:`resolve_goal_target` measures it
at the config's ``model.input_size`` when the search starts, the way ``--param_flop`` counts
(multiply-adds / 2^30, ``torch.utils.flop_counter``):

- ``plain_head``: the space's own backbone at full widths (no width choices) with a plain head
  per part, every other choice at its default — the hand design the search must beat at equal
  cost (issue 27's goal 1; the ``plain_head`` baseline of ``benchmarks.search_quality``);
- a registered model name (``hrnet_tiny``, ``hrnet_w32``, ...; an unknown name lists them),
  built for the config's dataset.

The target becomes ``target_scale`` × that, rounded to 1e-5 GFLOPs as the reports print it, and
the resolved config carries it as a plain ``target_gflops`` (so ``arch.json``, Prune and the
trials read one number).
"""
from __future__ import annotations

import dataclasses
import logging

from search_space.counting import param_flop_report
from search_space.errors import UserInputError
from trainers.config.experiment import config_from_dict, config_to_dict
from trainers.config.loader import value_source
from trainers.config.schema import Config
from trainers.network.build import build_network, spec_from_choices, spec_from_model

__all__ = ["PLAIN_HEAD", "reference_gflops", "resolve_goal_target"]

logger = logging.getLogger(__name__)

#: ``search.goal.target_reference``'s name for the space's backbone with plain heads
PLAIN_HEAD = "plain_head"

FIELD = "search.goal.target_reference"


def plain_head_config(cfg: Config, source: str) -> Config:
    """``cfg`` with the plain-head network as its space: full widths, a plain head per part."""
    data = config_to_dict(cfg)
    space = data["space"]
    space["head"], space["search_head_type"] = "plain", False
    if "width_multipliers" in space.get("backbone", {}):  # HRNet's width choices: none
        space["backbone"]["width_multipliers"] = []
    data["search"]["goal"] = {}  # the reference needs no goal (and must not recurse into one)
    return config_from_dict(data, source=f"{source} ({FIELD} {PLAIN_HEAD})")


def reference_gflops(cfg: Config, reference: str, source: str) -> float:
    """GFLOPs of ``reference`` (:data:`PLAIN_HEAD` or a model name) at ``cfg.model.input_size``
    for ``cfg.dataset``.

    Raises:
        UserInputError: an unknown reference, naming ``source`` and the field.
    """
    if reference == PLAIN_HEAD:
        spec = spec_from_choices(plain_head_config(cfg, source), {})
    else:
        where = value_source(cfg, FIELD, source)  # the file or "override" that set it
        try:
            spec = spec_from_model(reference, cfg.dataset.name, where, FIELD)
        except UserInputError as err:
            raise UserInputError(where, f"{err.message} (or {PLAIN_HEAD!r})",
                                 field=FIELD) from None
    network = build_network(spec)
    return float(param_flop_report(network, tuple(cfg.model.input_size))["gflops"])


def resolve_goal_target(cfg: Config, source: str) -> Config:
    """``cfg`` with ``search.goal.target_reference`` turned into ``target_gflops`` (the
    reference's GFLOPs × ``target_scale``, 1e-5 rounding); ``cfg`` itself when it names none.
    ``source``: the config file, for errors (an override is named as such)."""
    goal = cfg.search.goal
    if not goal.target_reference:
        return cfg
    gflops = reference_gflops(cfg, goal.target_reference, source)
    target = round(goal.target_scale * gflops, 5)
    if target <= 0:
        size = "x".join(str(v) for v in cfg.model.input_size)
        raise UserInputError(value_source(cfg, FIELD, source),
                             f"{goal.target_reference} × {goal.target_scale} is {target} "
                             f"GFLOPs at {size}: no budget", field=FIELD)
    logger.info(f"search.goal.target_gflops = {target} ({goal.target_scale:g} × "
                f"{goal.target_reference}'s {gflops:.5f} GFLOPs at "
                f"{cfg.model.input_size[0]}x{cfg.model.input_size[1]})")
    resolved_goal = dataclasses.replace(goal, target_gflops=target, target_reference="",
                                        target_scale=1.0)
    resolved = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search,
                                                                   goal=resolved_goal))
    origin = getattr(cfg, "_posenas_origin", None)
    if origin is not None:  # dataclasses.replace drops the origins
        object.__setattr__(resolved, "_posenas_origin", origin)
    return resolved
