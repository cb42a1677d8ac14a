"""From a config and a model choice to an ``nn.Module``, and the record that rebuilds it."""
from __future__ import annotations

from typing import Any

from torch import nn

from search_space.models import build_model
from trainers.config import Config
from trainers.data.joints import keypoint_spec
from trainers.errors import UserInputError

__all__ = ["build_pose_model"]


def build_pose_model(cfg: Config, model_name: str | None = None,
                     source: str = "config") -> tuple[nn.Module, dict[str, Any]]:
    """Build the network for ``cfg``'s dataset.

    Args:
        cfg: experiment config (``dataset.name`` fixes the joint count).
        model_name: a registered model; defaults to ``cfg.model.name``.
        source: where the name came from, for the error message.

    Returns:
        the model and ``{"name": ...}``, stored in checkpoints so ``test.py`` can rebuild it.
    """
    name = model_name or cfg.model.name
    try:
        model = build_model(name, keypoint_spec(cfg.dataset.name).num_joints)
    except KeyError as err:
        raise UserInputError(source, str(err.args[0]),
                             field="model.name" if model_name is None else "--model") from None
    return model, {"name": name}
