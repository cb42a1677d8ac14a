"""The supernet: ``PoseSpace``, the NNI model space of the unified search space, and the chooser
that declares its decisions as NNI mutables. The only module of the model code that imports NNI
(and, through NNI's evaluators, Lightning): frozen networks come from
:mod:`search_space.pose_space` without it.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import ExitStack
from typing import Any, Callable, Sequence

import torch
from nni.mutable import Categorical, label_scope
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace
from torch import nn

from search_space.choices import Chooser
from search_space.config import SpaceConfig
from search_space.pose_space import freeze, named_components, pose_forward, populate_network

__all__ = ["PoseSpace", "SearchChooser", "build", "space_labels"]


def _scoped(label: str, make: Callable[[str], Any]) -> Any:
    """Create an NNI mutable whose full label is ``label`` (NNI builds "a/b/c" from scopes)."""
    *scopes, name = label.split("/")
    with ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(label_scope(scope))
        return make(name)


class SearchChooser(Chooser):
    """Declares NNI mutables; mutables with one label are one decision (shared weights/alpha)."""

    searching = True

    def __init__(self) -> None:
        super().__init__()
        self._widths: dict[str, Categorical] = {}

    def width(self, label: str, values: Sequence[int]) -> Any:
        values = sorted(set(int(v) for v in values), reverse=True)
        if len(values) == 1:  # no choice: not a decision of the space
            return values[0]
        self._declare(label, values, "width")
        if label not in self._widths:
            self._widths[label] = _scoped(
                label, lambda name: Categorical(values, default=values[0], label=name))
        return self._widths[label]

    def operation(self, label: str, names: Sequence[str],
                  build: Callable[[str], nn.Module]) -> Any:
        self._declare(label, names, "operation")
        candidates = OrderedDict((name, build(name)) for name in names)
        return _scoped(label, lambda name: LayerChoice(candidates, label=name))

    def input(self, label: str, n_candidates: int) -> Any:
        self._declare(label, list(range(n_candidates)), "input")
        return _scoped(label, lambda name: InputChoice(n_candidates, n_chosen=1, label=name))


class PoseSpace(ModelSpace):
    """The supernet: NNI model space of backbone widths × body parts × PNFS fabrics.

    ``simplify()`` lists every decision; ``freeze(sample)`` returns the :class:`~search_space.pose_space.PoseNetwork`
    of that sample.
    """

    def __init__(self, space: SpaceConfig, dataset: str) -> None:
        super().__init__()
        chooser = SearchChooser()
        populate_network(self, space, dataset, chooser)
        self.decisions = chooser.decisions

    def components(self) -> dict[str, nn.Module]:
        """Named parts for parameter/FLOP reports."""
        return named_components(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pose_forward(self, x)

    def freeze(self, sample: dict[str, Any]) -> nn.Module:  # type: ignore[override]
        """The frozen network of ``sample`` (fresh weights; see
        :func:`search_space.inherit.inherit_weights`)."""
        return freeze(self.space_config, self.dataset, sample)


def build(space: SpaceConfig, dataset: str) -> PoseSpace:
    """The supernet of ``space`` for ``dataset`` ("coco" or "mpii")."""
    return PoseSpace(space, dataset)


def space_labels(space: SpaceConfig, dataset: str) -> dict[str, list[Any]]:
    """Every label of the space and its candidate values (builds the supernet on CPU)."""
    with torch.device("meta"):
        model = PoseSpace(space, dataset)
    return {label: d.values for label, d in model.decisions.items()}
