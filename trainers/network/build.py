"""The one network builder: every command gets its frozen network here.

A network is named by a :class:`NetworkSpec` — the point of the space it is (space config,
dataset, choices, kept channels) — made from one of:

- a registered model (``model.name``, ``--model``): :func:`spec_from_model`;
- an architecture file (``arch.json`` / ``derived.json``, ``--arch``): :func:`spec_from_arch`;
- architecture choices of a config's space (a trial, the Prune step): :func:`spec_from_choices`;
- the record a checkpoint stores (``posenas.model``): :func:`spec_from_record`.

:func:`build_network` freezes it (:func:`search_space.pose_space.freeze`) and optionally loads
weights: the exact state dict of this network (``model.pretrained``, a checkpoint), or weights
inherited from a bigger network (a one-shot supernet, or the full-width network of channel
pruning). Supernets are :func:`search_space.supernet.build`.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from search_space.config import SpaceConfig
from search_space.inherit import inherit_weights
from search_space.models import MODELS, model_names
from search_space.pose_space import freeze
from trainers.network.arch_file import ArchFile, load_arch
from trainers.weights.checkpoint import (check_checkpoint, is_posenas_checkpoint, load_checkpoint,
                                        model_state_dict, read_torch_file, read_weights)
from trainers.weights.formats import EXTERNAL_FORMATS, Conversion, Target
from trainers.config.schema import Config, QuantConfig
from trainers.config.experiment import config_from_dict
from trainers.config.loader import build_dataclass, to_plain, value_source
from search_space.errors import UserInputError, first_line
from trainers.engine.qat import is_qat_state, pact_modules, prepare_qat

__all__ = ["NetworkSpec", "spec_from_model", "spec_from_arch", "spec_from_choices",
           "spec_from_record", "network_spec", "build_network", "load_trained_network", "load_exact",
           "load_backbone", "init_backbone", "LoadReport", "component_of", "load_any_network",
           "spec_with_structure", "resolve_weights"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkSpec:
    """Which network to build: a point of the space.

    Attributes:
        name: ``hrnet_w32`` (a registered model) or ``arch:<config name>`` (an architecture).
        space: the space config.
        dataset: "coco" or "mpii" (the joints of the heads).
        choices: label → value of every decision of ``space`` ({} for registered models).
        channels: inner-width label → kept channel indices (channel-pruned architectures).
    """

    name: str
    space: SpaceConfig
    dataset: str
    choices: Mapping[str, Any] = field(default_factory=dict)
    channels: Mapping[str, list[int]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this network (:func:`spec_from_record`)."""
        if self.name in MODELS and not self.choices:
            return {"name": self.name}
        arch = {"space": to_plain(self.space), "choices": dict(self.choices)}
        if self.channels:
            arch["channels"] = {k: list(v) for k, v in self.channels.items()}
        return {"name": self.name, "arch": arch}


def spec_from_model(name: str, dataset: str, source: str = "config",
                    field_name: str = "model.name") -> NetworkSpec:
    """A registered model. Raises :class:`UserInputError` naming ``source``/``field_name``."""
    if name not in MODELS:
        raise UserInputError(source, f"unknown model {name!r}; known: {', '.join(model_names())}",
                             field=field_name)
    return NetworkSpec(name, MODELS[name].space, dataset)


def spec_from_arch(arch: ArchFile | str | Path, dataset: str | None = None) -> NetworkSpec:
    """An architecture file (its path or the loaded file); ``dataset``, when given, must be the
    one the architecture was searched for."""
    if not isinstance(arch, ArchFile):
        arch = load_arch(arch)
    if dataset is not None and arch.config.dataset.name != dataset:
        raise UserInputError(arch.path, f"the architecture is for {arch.config.dataset.name!r}, "
                             f"the config trains on {dataset!r}", field="config.dataset.name")
    return NetworkSpec(f"arch:{arch.config.name}", arch.config.space, arch.config.dataset.name,
                       dict(arch.choices), dict(arch.channels))


def spec_from_choices(cfg: Config, choices: Mapping[str, Any],
                      channels: Mapping[str, list[int]] | None = None) -> NetworkSpec:
    """The architecture ``choices`` of ``cfg``'s space. Labels become plain ``str`` (NNI's
    samples key them by its ``label`` type, which a checkpoint loaded with ``weights_only``
    cannot hold)."""
    return NetworkSpec(f"arch:{cfg.name}", cfg.space, cfg.dataset.name,
                       {str(k): v for k, v in choices.items()},
                       {str(k): v for k, v in (channels or {}).items()})


def spec_from_record(record: Any, dataset: str, source: str) -> NetworkSpec:
    """The network a checkpoint's model record describes (see :meth:`NetworkSpec.record`)."""
    if not isinstance(record, Mapping) or not record.get("name"):
        raise UserInputError(source, "no model name in the checkpoint metadata",
                             field="posenas.model.name")
    if "arch" not in record:
        return spec_from_model(record["name"], dataset, source, "posenas.model.name")
    arch = record["arch"]
    if not isinstance(arch, Mapping) or not isinstance(arch.get("space"), Mapping) \
            or not isinstance(arch.get("choices"), Mapping):
        raise UserInputError(source, "malformed architecture record (needs space and choices)",
                             field="posenas.model.arch")
    try:
        space = build_dataclass(SpaceConfig, arch["space"], source=source)
    except UserInputError as err:
        raise UserInputError(source, err.message, field=f"posenas.model.arch.space.{err.field}") from None
    return NetworkSpec(record["name"], space, dataset, dict(arch["choices"]),
                       dict(arch.get("channels") or {}))


def network_spec(cfg: Config, model: str | None = None, arch: str | None = None,
                 source: str = "config") -> NetworkSpec:
    """What a training or evaluation command builds: ``arch`` (an architecture file), else the
    registered ``model`` (a command-line name), else ``cfg.model.name``."""
    if arch is not None:
        return spec_from_arch(arch, cfg.dataset.name)
    if model is not None:
        return spec_from_model(model, cfg.dataset.name, "argument", "--model")
    return spec_from_model(cfg.model.name, cfg.dataset.name, value_source(cfg, "model.name", source))


def load_trained_network(path: str | Path, cfg: Config | None = None
                         ) -> tuple[Config, NetworkSpec, nn.Module]:
    """The trained network of a posenas checkpoint: (config, spec, network with its weights).

    The config is ``cfg`` (a command's, e.g. to evaluate on other data) or, by default, the one
    the checkpoint was trained with.
    """
    return _network_from_checkpoint(load_checkpoint(path), path, cfg)


def _network_from_checkpoint(ckpt: Mapping[str, Any], path: str | Path, cfg: Config | None
                             ) -> tuple[Config, NetworkSpec, nn.Module]:
    meta = ckpt["posenas"]
    if cfg is None:
        cfg = config_from_dict(meta["config"], source=f"{path} (posenas.config)")
    else:
        trained = meta["config"].get("model")
        trained_size = tuple(trained.get("input_size", ())) if isinstance(trained, dict) else ()
        if trained_size and trained_size != tuple(cfg.model.input_size):
            logger.warning("%s was trained at %s, used at %s", path, trained_size,
                           tuple(cfg.model.input_size))
    spec = spec_from_record(meta.get("model"), cfg.dataset.name, str(path))
    # the structure is the checkpoint's own: a QAT checkpoint rebuilds its QAT form
    quant = build_dataclass(QuantConfig, meta["config"].get("quant") or {},
                            source=f"{path} (posenas.config.quant)")
    return cfg, spec, build_network(spec, model_state_dict(ckpt), field="--weights", quant=quant)


def load_any_network(path: str | Path, cfg: Config | None = None, model: str | None = None,
                     field: str = "--weights") -> tuple[Config, NetworkSpec, nn.Module]:
    """A trained network from a posenas checkpoint (rebuilt from its metadata) or from a released
    file of another code (official HRNet, Lite-HRNet, mmpose; converted on the fly), which is
    read as ``model`` (a registered name) or else ``cfg.model.name``.

    Raises:
        UserInputError: a released file with neither ``model`` nor ``cfg`` to say what it is.
    """
    obj = read_torch_file(path, field)  # read once: a posenas checkpoint is rebuilt from it
    if is_posenas_checkpoint(obj):
        return _network_from_checkpoint(check_checkpoint(obj, path), path, cfg)
    if cfg is None and model is None:
        raise UserInputError(str(path), "not a posenas checkpoint: say which network it holds "
                             "with --model NAME (or --cfg), or convert it with "
                             "python -m trainers.convert", field=field)
    if cfg is None:
        cfg = config_from_dict({"dataset": {"name": "coco", "root": ""}, "model": {"name": model}},
                               source="arguments")
    spec, conversion = resolve_weights(network_spec(cfg, model=model), path, field)
    return cfg, spec, build_network(spec, conversion, field=field)


def resolve_weights(spec: NetworkSpec, weights: str | Path | None, field: str,
                    scope: str = "all") -> tuple[NetworkSpec, Conversion | None]:
    """The network ``weights`` are for, and the file read once: ``spec``, or for a
    channel-pruned file (APRCP) the pruned network it holds (:func:`spec_with_structure`).
    Commands that record the network they train pass both on to :func:`build_network`."""
    if weights is None:
        return spec, None
    conversion = _read_and_say(weights, field, target=(spec.space, spec.dataset))
    if scope == "all":
        spec = spec_with_structure(spec, conversion, field)
    return spec, conversion


def spec_with_structure(spec: NetworkSpec, conversion: Conversion, field: str) -> NetworkSpec:
    """``spec``, or — for a channel-pruned file (APRCP) read for it — the pruned network the
    file's tensors fit (its inner widths as choices of the same space)."""
    if conversion.structure is None or spec.choices:
        return spec
    space, choices = conversion.structure
    logger.info(f"{field}: {conversion.source} is channel-pruned (APRCP): building its widths "
                f"({len(choices)} inner widths)")
    return replace(spec, name=f"arch:{spec.name}-aprcp", space=space, choices=choices)


def build_network(spec: NetworkSpec,
                  weights: str | Path | Mapping[str, torch.Tensor] | Conversion | None = None,
                  *, inherit: bool = False, field: str = "model.pretrained",
                  device: str | torch.device | None = None, scope: str = "all",
                  quant: QuantConfig | None = None) -> nn.Module:
    """Freeze ``spec`` into a plain PyTorch network and load ``weights``.

    Args:
        spec: the network.
        weights: a checkpoint / state-dict file (or a loaded state dict, or a file's
            :class:`~trainers.weights.formats.Conversion`), or ``None`` for the initial weights.
            A channel-pruned file (APRCP) needs the spec of its own widths
            (:func:`resolve_weights`).
        inherit: ``weights`` are a bigger network's (a one-shot supernet, or the full-width
            network of channel pruning): take each tensor's leading — or, with
            ``spec.channels``, its kept — channels. Otherwise they must fit exactly.
        field: the config key or option the weights came from, for error messages.
        device: build on this device (``"meta"``: structure only, no memory).
        scope: ``"all"`` (every tensor) or ``"backbone"`` (only the backbone's, e.g. ImageNet
            weights: see :func:`load_backbone`). Checkpoints without a pose head (ImageNet
            HRNet) always load as ``"backbone"``, with a line saying so.
        quant: a QAT method (``quant.method pact``): the network in its QAT form
            (:func:`trainers.engine.qat.prepare_qat`), with float weights loaded before the
            preparation or a QAT checkpoint's after it.

    Raises:
        UserInputError: choices that do not fit the space, or weights that do not fit the
            network, naming the file and ``field``.
    """
    conversion = weights if isinstance(weights, Conversion) else None
    if weights is not None and not isinstance(weights, (Mapping, Conversion)):
        conversion = _read_and_say(weights, field, target=(spec.space, spec.dataset))
    if conversion is not None and conversion.structure is not None and scope == "all" \
            and not inherit and not spec.choices:
        # the caller records spec: it must build the pruned one (resolve_weights) itself
        raise UserInputError(conversion.source, f"a channel-pruned HRNet (APRCP), narrower than "
                             f"{spec.name}: convert it with python -m trainers.convert --model "
                             f"{spec.name} FILE OUT.ckpt and use OUT.ckpt with --arch "
                             "OUT.arch.json", field=field)
    try:
        with torch.device(device) if device is not None else nullcontext():
            network = freeze(spec.space, spec.dataset, spec.choices)
    except UserInputError as err:
        raise err.located(spec.name) from None
    qat = quant is not None and quant.enabled
    if weights is None:
        return prepare_qat(network, quant) if qat else network
    network = _load_weights(network, spec, conversion if conversion is not None else weights,
                            inherit, field, scope, quant if qat else None)
    if qat and not pact_modules(network):
        prepare_qat(network, quant)  # float weights in: QAT starts from them
    return network


def _load_weights(network: nn.Module, spec: NetworkSpec,
                  weights: Conversion | Mapping[str, torch.Tensor], inherit: bool, field: str,
                  scope: str, quant: QuantConfig | None) -> nn.Module:
    source = weights.source if isinstance(weights, Conversion) else "<state dict>"
    if not isinstance(weights, Conversion):
        state = dict(weights)
    else:
        conversion = weights
        state = conversion.state
        if conversion.backbone_only and scope == "all":
            logger.info(f"{field}: no pose head in {source}; loading the backbone only")
            scope = "backbone"
    if quant is not None and is_qat_state(state):
        prepare_qat(network, quant)  # a QAT checkpoint: load into the QAT form
    elif is_qat_state(state):
        raise UserInputError(source, "a quantization-aware (QAT) checkpoint: read it with its "
                             "config's quant section (quant.method pact)", field=field)
    if scope == "backbone":
        logger.info(load_backbone(network, state, source, field).table())
        return network
    if inherit:
        try:
            inherit_weights(network, state, spec.channels or None)
        except (KeyError, IndexError, RuntimeError) as err:
            message = (err.args[0] if isinstance(err, KeyError)
                       else first_line(err, limit=None) or type(err).__name__)
            raise UserInputError(source, f"does not fit the architecture's space ({message})",
                                 field=field) from None
    else:
        load_exact(network, state, source, field)
    return network


def load_exact(network: nn.Module, state: Mapping[str, torch.Tensor], source: str,
               field: str) -> None:
    """Load a state dict that must fit ``network`` key for key and shape for shape.

    Raises:
        UserInputError: naming the first missing and unexpected keys and shape mismatches.
    """
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} of another shape (first: {shapes[0]})")
        raise UserInputError(source, "weights do not fit the network: " + "; ".join(parts),
                             field=field)
    network.load_state_dict(state)


def _read_and_say(path: str | Path, field: str, target: Target | None = None) -> Conversion:
    conversion = read_weights(path, field=field, target=target)
    if conversion.format != "posenas":
        logger.info(f"{field}: {path} is a {EXTERNAL_FORMATS[conversion.format].description} "
                    f"checkpoint; converted on the fly ({len(conversion.state)} tensors"
                    + (f", {len(conversion.skipped)} without a posenas counterpart skipped)"
                 if conversion.skipped else ")"))
    return conversion


def init_backbone(network: nn.Module, path: str | Path, field: str = "model.pretrained") -> LoadReport:
    """Initialise ``network``'s backbone — a frozen network or a one-shot supernet — from the
    checkpoint ``path`` (any format :func:`~trainers.weights.checkpoint.read_weights` reads) and print
    the loading table."""
    report = load_backbone(network, _read_and_say(path, field).state, str(path), field)
    logger.info(report.table())
    return report


def component_of(key: str) -> str:
    """The part of a posenas network a state-dict key belongs to: ``stem``, ``stage1``…,
    ``head`` (plain head, fabrics, vector heads) — the rows of a loading report."""
    parts = key.split(".")
    if parts[0] == "backbone" and len(parts) > 2:
        if parts[1] == "stages" and parts[2].isdigit():
            return f"stage{int(parts[2]) + 1}"
        return parts[1]
    return "head" if parts[0] in ("head", "heads", "parts", "fabrics") else parts[0]


@dataclass
class LoadReport:
    """What :func:`load_backbone` did, by component: tensors loaded, skipped (in the file, not
    used by this network), missing (in the network, not in the file — an error)."""

    source: str
    rows: dict[str, list[int]] = field(default_factory=dict)  # component → [loaded, skipped, missing]
    sliced: int = 0

    def count(self, component: str, column: int) -> None:
        self.rows.setdefault(component, [0, 0, 0])[column] += 1

    def total(self, column: int) -> int:
        return sum(r[column] for r in self.rows.values())

    def table(self) -> str:
        w = max([10, *(len(name) + 2 for name in self.rows)])
        lines = [f"pretrained backbone from {self.source}:",
                 f"  {'module':<{w}}{'loaded':>8}{'skipped':>9}{'missing':>9}"]
        for name, (a, b, c) in self.rows.items():
            lines.append(f"  {name:<{w}}{a:>8}{b:>9}{c:>9}")
        lines.append(f"  {'total':<{w}}{self.total(0):>8}{self.total(1):>9}{self.total(2):>9}"
                     + (f"   ({self.sliced} narrower tensors take the leading channels)"
                        if self.sliced else ""))
        return "\n".join(lines)


def _file_key(network: nn.Module, key: str, state: Mapping[str, torch.Tensor]) -> str:
    """Where ``state`` holds the tensor of ``network``'s ``key``: a backbone cut after stage S
    (PNFS's stem~stage3) keeps the transition that opens branch S+1 as ``next_transition``,
    which a full HRNet's file holds as stage S+1's transition."""
    prefix = "backbone.next_transition."
    if key in state or not key.startswith(prefix):
        return key
    stages = getattr(getattr(network, "backbone", None), "stages", None)
    if stages is None:
        return key
    alias = f"backbone.stages.{len(stages)}.transition.{key[len(prefix):]}"
    return alias if alias in state else key


def load_backbone(network: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                  field: str = "model.pretrained") -> LoadReport:
    """Initialise ``network``'s backbone (keys ``backbone.*``) from ``state``.

    Every backbone tensor of the network must be in ``state``; the file's other tensors
    (another head, a deeper backbone than a PNFS stem~stage3 cut) are skipped and counted.
    A tensor narrower than the file's (a width choice, a supernet's mixed operation at full
    width is equal) takes the leading channels, as :func:`~search_space.inherit.inherit_weights`
    does. Architecture parameters (``_arch_*``) are not weights and are left alone.

    Raises:
        UserInputError: missing tensors or ones the file cannot hold, naming the first.
    """
    report = LoadReport(source)
    own = {k: v for k, v in network.state_dict().items()
           if k.startswith("backbone.") and "._arch_" not in k}
    missing, too_small = [], []
    used: set[str] = set()
    with torch.no_grad():
        for key, target in own.items():
            file_key = _file_key(network, key, state)
            used.add(file_key)
            src = state.get(file_key)
            if src is None:
                missing.append(key)
                report.count(component_of(key), 2)
                continue
            if src.dim() != target.dim() or any(t > s_ for t, s_ in zip(target.shape, src.shape)):
                too_small.append(f"{key} {tuple(src.shape)} vs {tuple(target.shape)}")
                continue
            if tuple(src.shape) != tuple(target.shape):
                src = src[tuple(slice(0, n) for n in target.shape)]
                report.sliced += 1
            target.copy_(src)
            report.count(component_of(key), 0)
    for key in state:
        if key not in used:
            report.count(component_of(key), 1)
    if missing or too_small:
        parts = []
        if missing:
            parts.append(f"{len(missing)} backbone tensors missing (first: {missing[0]})")
        if too_small:
            parts.append(f"{len(too_small)} too small (first: {too_small[0]})")
        raise UserInputError(source, "pretrained backbone does not fit the network: "
                             + "; ".join(parts), field=field)
    return report
