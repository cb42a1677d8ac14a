"""Where every architecture decision of the space is made: one place, two modes.

The model code asks a :class:`Chooser` for each decision, by a readable label such as
``stage3/branch1/width`` or ``part2/fabric/l3s1/cell/edge0_op``:

- :class:`~search_space.supernet.SearchChooser` answers with NNI mutables (``Categorical``, ``LayerChoice``,
  ``InputChoice``) so the result is an NNI model space every strategy can explore;
- :class:`FixedChooser` answers with the values of an architecture (``arch.json`` choices), so the
  same code builds the frozen network — and it checks each value and reports labels that are
  missing, out of range or unknown to the space.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from torch import nn

from search_space.errors import UserInputError
from search_space.layers import ChosenWidth

__all__ = ["Chooser", "FixedChooser", "Decision"]


class Decision:
    """A decision declared by the model code: its label and its candidate values."""

    def __init__(self, label: str, values: Sequence[Any], kind: str) -> None:
        self.label = label
        self.values = list(values)
        self.kind = kind  # "width" | "operation" | "input"


class Chooser:
    """Base: records every declared decision (label → :class:`Decision`)."""

    searching: bool = False

    def __init__(self) -> None:
        self.decisions: dict[str, Decision] = {}

    def _declare(self, label: str, values: Sequence[Any], kind: str) -> None:
        known = self.decisions.get(label)
        if known is not None and (known.values != list(values) or known.kind != kind):
            raise ValueError(f"label {label!r} declared twice with different candidates")
        self.decisions[label] = Decision(label, values, kind)

    def width(self, label: str, values: Sequence[int]) -> Any:
        """A channel count chosen from ``values`` (largest first = the default)."""
        raise NotImplementedError

    def operation(self, label: str, names: Sequence[str],
                  build: Callable[[str], nn.Module]) -> Any:
        """An operation chosen from ``names``: a ``LayerChoice`` while searching, else the name."""
        raise NotImplementedError

    def input(self, label: str, n_candidates: int) -> Any:
        """One of ``n_candidates`` inputs: an ``InputChoice`` while searching, else its index."""
        raise NotImplementedError


class FixedChooser(Chooser):
    """Answers from ``choices`` (label → value), checking each value against its candidates.

    Input choices accept an index or NNI's one-element list (``[2]``).
    """

    def __init__(self, choices: Mapping[str, Any]) -> None:
        super().__init__()
        self.choices = dict(choices)
        self._widths: dict[str, ChosenWidth] = {}

    def _value(self, label: str, values: Sequence[Any], kind: str) -> Any:
        self._declare(label, values, kind)
        if label not in self.choices:
            raise UserInputError.at_field(f"choices.{label}", "missing from the architecture")
        value = self.choices[label]
        if kind == "input" and isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, bool) or value not in values:
            raise UserInputError.at_field(f"choices.{label}", f"{value!r} is not one of {list(values)}")
        return value

    def width(self, label: str, values: Sequence[int]) -> int:
        values = sorted(set(int(v) for v in values), reverse=True)
        if len(values) == 1:  # no choice: not a decision of the space
            return values[0]
        if label not in self._widths:
            self._widths[label] = ChosenWidth(self._value(label, values, "width"))
        return self._widths[label]

    def operation(self, label: str, names: Sequence[str],
                  build: Callable[[str], nn.Module]) -> str:
        return str(self._value(label, names, "operation"))

    def input(self, label: str, n_candidates: int) -> int:
        return int(self._value(label, list(range(n_candidates)), "input"))

    def check_unused(self) -> None:
        """Raise for labels in ``choices`` that the space never asked about."""
        unknown = sorted(set(self.choices) - set(self.decisions))
        if unknown:
            raise UserInputError.at_field(f"choices.{unknown[0]}", "unknown label (not in this space"
                                    + (f"; {len(unknown) - 1} more unknown)" if len(unknown) > 1
                                       else ")"))
