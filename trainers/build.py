"""From a config (and optionally an architecture file) to an ``nn.Module``, and the record
stored in checkpoints that rebuilds it."""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from search_space.models import build_model
from trainers.config import Config, config_from_dict
from trainers.data.joints import keypoint_spec
from trainers.errors import UserInputError

__all__ = ["build_pose_model", "rebuild_pose_model"]


def build_pose_model(cfg: Config, model_name: str | None = None, source: str = "config",
                     arch_path: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the network for ``cfg``'s dataset.

    Args:
        cfg: experiment config (``dataset.name`` fixes the joint count).
        model_name: a registered model; defaults to ``cfg.model.name``.
        source: where the name came from, for the error message.
        arch_path: an ``arch.json``/``derived.json``: build its frozen architecture instead.

    Returns:
        the model and its record (``{"name"}``, plus ``{"arch"}`` for an architecture file),
        stored in checkpoints so ``test.py`` can rebuild it.
    """
    if arch_path is not None:
        from search_space.arch import load_arch

        arch = load_arch(arch_path)
        if arch.config.dataset.name != cfg.dataset.name:
            raise UserInputError(arch_path, f"the architecture is for {arch.config.dataset.name!r}"
                                 f", the config trains on {cfg.dataset.name!r}",
                                 field="config.dataset.name")
        record = {"name": f"arch:{arch.config.name}",
                  "arch": {"space": arch.to_dict()["config"]["space"], "choices": arch.choices}}
        model = arch.build()
        _load_pretrained(model, cfg.model.pretrained)
        return model, record
    name = model_name or cfg.model.name
    try:
        model = build_model(name, keypoint_spec(cfg.dataset.name).num_joints)
    except KeyError as err:
        raise UserInputError(source, str(err.args[0]),
                             field="model.name" if model_name is None else "--model") from None
    _load_pretrained(model, cfg.model.pretrained)
    return model, {"name": name}


def _load_pretrained(model: nn.Module, path: str) -> None:
    """Initialise from ``model.pretrained``: a state dict of this very network (e.g. the
    ``derived.pth`` of the Prune step, with weights inherited from the supernet)."""
    if not path:
        return
    from trainers.checkpoint import read_state_dict

    state = read_state_dict(path, field="model.pretrained")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise UserInputError(path, f"weights do not fit the network "
                             f"({str(err).splitlines()[0][:200]})", field="model.pretrained") from None


def rebuild_pose_model(cfg: Config, record: Mapping[str, Any], source: str) -> nn.Module:
    """The network a checkpoint's model record describes (see :func:`build_pose_model`)."""
    if not isinstance(record, Mapping) or not record.get("name"):
        raise UserInputError(source, "no model name in the checkpoint metadata",
                             field="posenas.model.name")
    if "arch" not in record:
        return build_pose_model(cfg, record["name"], source=source)[0]
    from search_space.choices import ArchitectureError
    from search_space.pose_space import freeze

    try:
        data = {"dataset": {"name": cfg.dataset.name, "root": cfg.dataset.root},
                "space": record["arch"]["space"]}
        space = config_from_dict(data, source=source).space
        return freeze(space, cfg.dataset.name, record["arch"]["choices"])
    except (KeyError, TypeError):
        raise UserInputError(source, "malformed architecture record",
                             field="posenas.model.arch") from None
    except ArchitectureError as err:
        raise UserInputError(source, err.message, field=f"posenas.model.arch.{err.label}") from None
