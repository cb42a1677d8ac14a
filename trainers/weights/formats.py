"""Checkpoints released by other codes, read into posenas's key layout.

One table, :data:`EXTERNAL_FORMATS`, names each format: how to recognise it from its keys and how
to rename its tensors to ours. Supported:

- ``hrnet``: official pose HRNet (leoxiaobin/deep-high-resolution-net.pytorch, ``pose_hrnet.py``:
  ``conv1 bn1 conv2 bn2 layer1 transitionN stageN.M.branches/fuse_layers final_layer``), and
  APRCP's channel-pruned HRNets under the same names (narrower inner widths: the conversion
  carries the pruned ``structure``);
- ``hrnet_imagenet``: HRNet-Image-Classification (``hrnet_w32-36af842e.pth``) and timm's
  ``hrnet_w32``/``hrnet_w48`` (the same keys): the backbone only — the classification head
  (``incre_modules downsamp_modules final_layer classifier``) is skipped;
- ``litehrnet``: Lite-HRNet as HRNet/Lite-HRNet releases it (mmpose 0.x files:
  ``{"state_dict", "meta"}``, ``backbone.`` with mmcv ConvModule ``conv``/``bn`` names,
  ``keypoint_head.final_layer``) and as mmpose 1.x does (``head.final_layer``);
- ``mmpose_hrnet``: mmpose's HRNet (0.x or 1.x): the official names under ``backbone.``;
- ``pnfs``: PoseNFS (yangsenius/PoseNFS): HRNet stem~stage3, ResNet or MobileNet-V2 and a fabric
  per body part, read into the fixed-mixture network of the same space with its learned α/β (see
  :mod:`trainers.weights.pnfs`; needs the target model, for its operator names);
- ``paddle_hrnet``, ``paddle_litehrnet``: PaddleDetection's ``TopDownHRNet`` with HRNet
  (``hrnet_w32_256x192.pdparams``) or Lite-HRNet (``lite_hrnet_30_256x192_coco.pdparams``), read
  without Paddle by :mod:`trainers.weights.paddle`;
- ``pose_resnet``: the official SimpleBaseline (``pose_resnet_{50,101,152}_*.pth`` of
  deep-high-resolution-net.pytorch / human-pose-estimation.pytorch: ResNet names at top level,
  ``deconv_layers``, ``final_layer``);
- ``mmpose_resnet``: mmpose 0.x SimpleBaseline (``backbone.`` + ``keypoint_head.``); mmpose 1.x
  (``backbone.`` + ``head.deconv_layers`` / ``head.final_layer``) uses posenas's names already;
- ``resnet_imagenet``: torchvision's ImageNet ResNets (``resnet50-19c8e357.pth``, PNFS's link;
  ``resnet50-0676ba61.pth``): the backbone, ``fc`` skipped;
- ``mobilenet_v2_imagenet``: torchvision's MobileNet-V2 (``mobilenet_v2-b0353104.pth``);
- ``tonylins_mobilenet_v2``: tonylins/pytorch-mobilenet-v2's ``mobilenet_v2.pth.tar`` (PNFS's link);
  both MobileNet-V2 files give the blocks up to PoseNFS's 1/32 tap, the rest skipped;
- ``posenas``: our own (a posenas or Lightning checkpoint, a plain state dict).

``--from mmpose`` picks whichever mmpose layout the keys show.

Containers are unwrapped first: ``{"state_dict": …}`` (mmpose, Lightning), ``{"model": …}``,
``{"model_state": …}``, and the ``module.`` prefix of DataParallel/DDP.

HRNet's tensors are ours one for one (the same order and shapes, verified against the official
structure in ``tests/official_layouts.py``): conversion renames, it never reshapes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from search_space.config import SpaceConfig
from search_space.pose_space import freeze
from trainers.weights.pnfs import convert_pnfs, is_pnfs
from trainers.weights.aprcp import inner_widths, pruned_space, pruned_widths
from trainers.weights.hrnet_keys import HRNET_RULES, hrnet_backbone_key
from trainers.weights.paddle import (is_paddle_hrnet, is_paddle_litehrnet, paddle_hrnet_key,
                                     paddle_to_mmpose_litehrnet_key)
from trainers.weights.torchvision_keys import (RESNET_BODY, is_tonylins_mobilenet,
                                               is_torchvision_mobilenet, resnet_backbone_key,
                                               tonylins_mobilenet_key, torchvision_mobilenet_key)

__all__ = ["ExternalFormat", "EXTERNAL_FORMATS", "Conversion", "unwrap", "detect_format",
           "convert_state", "format_names", "hrnet_backbone_key", "Target"]

State = Mapping[str, torch.Tensor]
#: the network a checkpoint is read for: its space and dataset
Target = tuple[SpaceConfig, str]


@dataclass(frozen=True)
class Conversion:
    """The result of :func:`convert_state`.

    Attributes:
        format: the format's name in :data:`EXTERNAL_FORMATS`.
        state: the tensors under posenas names.
        skipped: source keys with no posenas counterpart (e.g. an ImageNet classifier).
        backbone_only: the source has no pose head (load with ``model.pretrained_scope backbone``).
        arch: for a searched source (PoseNFS), ``{"choices", "weights", "space"}``: the argmax
            architecture of its searchable space and the softmax of its α/β.
        structure: for a channel-pruned source (APRCP HRNet), the (space, choices) of the
            network the tensors fit — the target's with its inner widths — to build instead.
        source: the file read (set by :func:`trainers.weights.checkpoint.read_weights`).
    """

    format: str
    state: dict[str, torch.Tensor]
    skipped: list[str] = field(default_factory=list)
    backbone_only: bool = False
    arch: dict[str, Any] | None = None
    structure: tuple[SpaceConfig, dict[str, Any]] | None = None
    source: str = "<state dict>"


@dataclass(frozen=True)
class ExternalFormat:
    """A checkpoint layout: ``detect(keys) -> bool``, ``rename(key) -> new key | None`` (None:
    skipped), and whether it carries a pose head. A layout that renaming alone cannot read
    gives ``convert(state, target) -> Conversion`` instead."""

    description: str
    detect: Callable[[set[str]], bool]
    rename: Callable[[str], str | None] = lambda key: None
    backbone_only: bool = False
    convert: Callable[[State, "Target | None"], Conversion] | None = None


# ----------------------------------------------------------------------------------------------
# HRNet (pose and ImageNet classification share the backbone's names)

_CLS_HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


def _hrnet_pose(key: str) -> str | None:
    if key.startswith("final_layer."):
        return "head." + key[len("final_layer."):]
    return hrnet_backbone_key(key)


def _hrnet_imagenet(key: str) -> str | None:
    return None if key.startswith(_CLS_HEAD) else hrnet_backbone_key(key)


def _convert_hrnet(state: State, target: Target | None) -> Conversion:
    """The official names renamed; inner widths narrower than the target's full network (an
    APRCP pruned HRNet) give the pruned structure to build (:mod:`trainers.weights.aprcp`)."""
    out, skipped = _rename_all(state, _hrnet_pose)
    structure = None
    if target is not None and target[0].head == "plain" and not target[0].backbone.width_multipliers:
        with torch.device("meta"):  # the target network's shapes, no memory
            full = freeze(target[0], target[1], {}).state_dict()
        widths = pruned_widths(out, full)
        if widths:
            structure = pruned_space(target[0], widths, inner_widths(full))
    return Conversion("hrnet", out, skipped, structure=structure)


def _is_hrnet(keys: set[str]) -> bool:
    return {"conv1.weight", "bn1.weight", "conv2.weight"} <= keys and any(
        k.startswith("layer1.") for k in keys) and any(k.startswith("stage2.") for k in keys)


def _is_hrnet_imagenet(keys: set[str]) -> bool:
    return _is_hrnet(keys) and any(k.startswith(("classifier.", "incre_modules.")) for k in keys)


def _is_hrnet_pose(keys: set[str]) -> bool:
    return _is_hrnet(keys) and not _is_hrnet_imagenet(keys) and "final_layer.weight" in keys


# ----------------------------------------------------------------------------------------------
# Lite-HRNet (HRNet/Lite-HRNet = mmpose 0.x files; mmpose 1.x) and mmpose's HRNet

_CM = r"\.(conv|bn)\.(.*)$"  # mmcv ConvModule: .conv.<param> / .bn.<param>


def _cm(index_of_conv: int) -> Callable[[re.Match], str]:
    """ConvModule ``.conv``/``.bn`` → our conv_bn's ``.k``/``.k+1``."""
    return lambda m: f"{index_of_conv + (0 if m['cb'] == 'conv' else 1)}.{m['p']}"


_LITE_RULES: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"^stem\.conv1\.(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"stem.conv1.{_cm(0)(m)}"),
    (re.compile(r"^stem\.branch1\.(?P<i>[01])\.(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"stem.branch1.{_cm(2 * int(m['i']))(m)}"),
    (re.compile(r"^stem\.(?P<n>expand_conv|depthwise_conv|linear_conv)\.(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"stem.branch2.{['expand_conv', 'depthwise_conv', 'linear_conv'].index(m['n'])}."
               f"{_cm(0)(m)}"),
    (re.compile(r"^transition(\d)\.(.*)$"), lambda m: f"transitions.{m[1]}.layers.{m[2]}"),
    (re.compile(r"^stage(\d)\.(\d+)\.layers\.(\d+)\.cross_resolution_weighting\."
                r"conv(?P<k>[12])\.(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"stages.{m[1]}.{m[2]}.blocks.{m[3]}.cross_resolution."
               f"{'squeeze' if m['k'] == '1' else 'excite'}.{_cm(0)(m)}"),
    (re.compile(r"^stage(\d)\.(\d+)\.layers\.(\d+)\.depthwise_convs\.(\d+)\."
                r"(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"stages.{m[1]}.{m[2]}.blocks.{m[3]}.depthwise.{m[4]}.{_cm(0)(m)}"),
    (re.compile(r"^stage(\d)\.(\d+)\.layers\.(\d+)\.spatial_weighting\.(\d+)\."
                r"(conv[12])\.conv\.(.*)$"),
     lambda m: f"stages.{m[1]}.{m[2]}.blocks.{m[3]}.spatial.{m[4]}.{m[5]}.{m[6]}"),
    # naive modules: per-branch ShuffleUnits
    (re.compile(r"^stage(\d)\.(\d+)\.layers\.(\d+)\.(\d+)\.branch2\.(\d)\."
                r"(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"stages.{m[1]}.{m[2]}.blocks.{m[3]}.{m[4]}.branch2.{m[5]}.{_cm(0)(m)}"),
    (re.compile(r"^stage(\d)\.(\d+)\.fuse_layers\.(\d+)\.(\d+)\.(.*)$"),
     lambda m: f"stages.{m[1]}.{m[2]}.fuse.paths.{m[3]}.{m[4]}.{m[5]}"),
    (re.compile(r"^head_layer\.projects\.(\d+)\.(?P<n>depthwise_conv|pointwise_conv)\."
                r"(?P<cb>conv|bn)\.(?P<p>.*)$"),
     lambda m: f"head.projects.{m[1]}.{_cm(0 if m['n'] == 'depthwise_conv' else 2)(m)}"),
]
_POSE_HEADS = ("keypoint_head.final_layer.", "head.final_layer.")


def _backbone_rename(rules, key: str) -> str | None:
    for pattern, new in rules:
        m = pattern.match(key)
        if m:
            return new(m)
    return None


def _mmpose_rename(backbone_rules, head: str) -> Callable[[str], str | None]:
    """mmpose's TopDown layout: ``backbone.<official names>`` and the heatmap head's
    ``final_layer`` under ``keypoint_head`` (0.x) or ``head`` (1.x); ``head`` is our name."""

    def rename(key: str) -> str | None:
        for prefix in _POSE_HEADS:
            if key.startswith(prefix):
                return head + key[len(prefix):]
        if not key.startswith("backbone."):
            return None
        new = _backbone_rename(backbone_rules, key[len("backbone."):])
        if new is None:
            return None
        return new if new.startswith("backbone.") else "backbone." + new

    return rename


def _is_mmpose_lite(keys: set[str]) -> bool:
    return "backbone.stem.conv1.conv.weight" in keys and any(
        k.startswith("backbone.head_layer.") for k in keys)


def _is_mmpose_hrnet(keys: set[str]) -> bool:
    return {"backbone.conv1.weight", "backbone.bn1.weight"} <= keys and any(
        k.startswith("backbone.stage2.") for k in keys)


def _is_posenas(keys: set[str]) -> bool:
    return any(k.startswith("backbone.") for k in keys)


def _pnfs_backbone(key: str) -> str | None:
    return hrnet_backbone_key(key[len("backbone."):]) if key.startswith("backbone.") else None


def _rename_all(state: State, rename: Callable[[str], str | None]
                ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state`` under the names ``rename`` gives, and the keys it has none for."""
    out: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for key, value in state.items():
        new = rename(key)
        if new is None:
            skipped.append(key)
        else:
            out[new] = value
    return out, skipped


def _convert_pnfs(state: State, target: Target | None) -> Conversion:
    """PoseNFS's fabrics need the target's operator names; without a target (a backbone
    initialisation) only the backbone is read."""
    if target is None:
        out, skipped = _rename_all(state, _pnfs_backbone)
        return Conversion("pnfs", out, skipped, backbone_only=True)
    result = convert_pnfs(state, target)
    return Conversion("pnfs", result.state, result.skipped,
                      arch={"choices": result.choices, "weights": result.weights,
                            "space": result.search_space})


# ----------------------------------------------------------------------------------------------
# ResNet (SimpleBaseline, torchvision) and MobileNet-V2 (torchvision, tonylins)

_RESNET_KEYS = {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight"}


def _is_resnet(keys: set[str]) -> bool:
    return _RESNET_KEYS <= keys and "conv2.weight" not in keys  # HRNet's stem has a conv2


def _is_pose_resnet(keys: set[str]) -> bool:
    return _is_resnet(keys) and "deconv_layers.0.weight" in keys and "final_layer.weight" in keys


def _is_resnet_imagenet(keys: set[str]) -> bool:
    return _is_resnet(keys) and "fc.weight" in keys and "deconv_layers.0.weight" not in keys


def _pose_resnet(key: str) -> str | None:
    if key.startswith(("deconv_layers.", "final_layer.")):
        return "head." + key
    return resnet_backbone_key(key)


def _is_mmpose_resnet(keys: set[str]) -> bool:
    return "backbone.layer1.0.conv1.weight" in keys and any(
        k.startswith("keypoint_head.deconv_layers.") for k in keys)


def _mmpose_resnet(key: str) -> str | None:
    if key.startswith("keypoint_head.") and key[len("keypoint_head."):].startswith(
            ("deconv_layers.", "final_layer.")):
        return "head." + key[len("keypoint_head."):]
    if key.startswith("backbone.") and key[len("backbone."):].startswith(RESNET_BODY):
        return key
    return None


_LITE_MMPOSE = _mmpose_rename(_LITE_RULES, "final.")


def _paddle(name: str, state: State, rename: Callable[[str], str | None]) -> Conversion:
    """Paddle's BatchNorm keeps no ``num_batches_tracked``: each BN read gets PyTorch's 0
    (only the momentum-free running average, unused here, would read it)."""
    out, skipped = _rename_all(state, rename)
    for key in [k for k in out if k.endswith(".running_mean")]:
        out[key[:-len("running_mean")] + "num_batches_tracked"] = torch.tensor(0)
    return Conversion(name, out, skipped)


EXTERNAL_FORMATS: dict[str, ExternalFormat] = {
    # first: its backbone also has mmpose HRNet's "backbone.conv1" / "backbone.stage2" keys
    "pnfs": ExternalFormat("PoseNFS (yangsenius/PoseNFS: HRNet stem~stage3 + part fabrics)",
                           is_pnfs, convert=_convert_pnfs),
    # before litehrnet: a Paddle Lite-HRNet has mmpose's stem and head names too
    "paddle_hrnet": ExternalFormat("PaddleDetection HRNet (.pdparams of the PaddlePaddle seed)",
                                   is_paddle_hrnet, convert=lambda state, target: _paddle(
                                       "paddle_hrnet", state, paddle_hrnet_key)),
    "paddle_litehrnet": ExternalFormat(
        "PaddleDetection Lite-HRNet (.pdparams of the PaddlePaddle seed)", is_paddle_litehrnet,
        convert=lambda state, target: _paddle("paddle_litehrnet", state, lambda key: _LITE_MMPOSE(
            paddle_to_mmpose_litehrnet_key(key)))),
    "hrnet": ExternalFormat("official pose HRNet (deep-high-resolution-net.pytorch; APRCP's "
                            "pruned HRNets)", _is_hrnet_pose, _hrnet_pose,
                            convert=_convert_hrnet),
    "litehrnet": ExternalFormat("Lite-HRNet (HRNet/Lite-HRNet, mmpose 0.x or 1.x)",
                                _is_mmpose_lite, _mmpose_rename(_LITE_RULES, "final.")),
    "mmpose_hrnet": ExternalFormat("mmpose HRNet (0.x or 1.x)", _is_mmpose_hrnet,
                                   _mmpose_rename(HRNET_RULES, "head.")),
    "hrnet_imagenet": ExternalFormat("ImageNet HRNet (HRNet-Image-Classification, timm hrnet_w*)",
                                     _is_hrnet_imagenet, _hrnet_imagenet, backbone_only=True),
    "pose_resnet": ExternalFormat("official SimpleBaseline pose ResNet (pose_resnet.py)",
                                  _is_pose_resnet, _pose_resnet),
    "mmpose_resnet": ExternalFormat("mmpose 0.x SimpleBaseline (ResNet + deconvolution head)",
                                    _is_mmpose_resnet, _mmpose_resnet),
    "resnet_imagenet": ExternalFormat("ImageNet ResNet (torchvision resnet18-152)",
                                      _is_resnet_imagenet, resnet_backbone_key,
                                      backbone_only=True),
    "mobilenet_v2_imagenet": ExternalFormat("ImageNet MobileNet-V2 (torchvision)",
                                            is_torchvision_mobilenet, torchvision_mobilenet_key,
                                            backbone_only=True),
    "tonylins_mobilenet_v2": ExternalFormat("ImageNet MobileNet-V2 (tonylins/pytorch-mobilenet-v2)",
                                            is_tonylins_mobilenet, tonylins_mobilenet_key,
                                            backbone_only=True),
    # last: detected by the "backbone." prefix that mmpose files share
    "posenas": ExternalFormat("posenas / Lightning checkpoint or state dict", _is_posenas,
                              lambda k: k),
}
#: other names users may give ``--from``
_ALIASES = {"timm": "hrnet_imagenet", "simplebaseline": "pose_resnet"}
#: ``--from mmpose`` / ``--from torchvision``: whichever of their layouts the keys show
_FAMILIES = {"mmpose": ("litehrnet", "mmpose_hrnet", "mmpose_resnet"),
             "torchvision": ("resnet_imagenet", "mobilenet_v2_imagenet")}


def format_names() -> list[str]:
    """Names accepted by ``--from`` (besides ``auto``)."""
    return sorted([*EXTERNAL_FORMATS, *_ALIASES, *_FAMILIES])


# ----------------------------------------------------------------------------------------------

_CONTAINERS = ("state_dict", "model", "model_state", "net", "params")


def unwrap(obj: object) -> dict[str, torch.Tensor] | None:
    """The flat tensor mapping inside a loaded checkpoint, or None if there is none.

    Looks through ``state_dict``/``model``/``model_state`` containers and strips a ``module.``
    prefix (DataParallel/DDP) from every key that has it.
    """
    for _ in range(3):  # containers nest at most this deep in the files we know
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        if not isinstance(obj, Mapping):
            return None
        inner = next((obj[k] for k in _CONTAINERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            return None
        obj = inner
    else:
        return None
    if not isinstance(obj, Mapping) or not obj:
        return None
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def detect_format(keys: set[str]) -> str | None:
    """The first format of :data:`EXTERNAL_FORMATS` whose detector accepts ``keys``."""
    for name, fmt in EXTERNAL_FORMATS.items():
        if fmt.detect(keys):
            return name
    return None


def convert_state(state: State, fmt: str = "auto", target: Target | None = None) -> Conversion:
    """Rename ``state`` (already unwrapped) from format ``fmt`` (``auto``: detected) to posenas.

    ``target`` (space, dataset) is the network the weights are for; PoseNFS files need it (their
    fabrics are read into it) and are read as a backbone only without it.

    Raises:
        ValueError: an unknown format name, or a layout no format recognises.
    """
    fmt = _ALIASES.get(fmt, fmt)
    if fmt in _FAMILIES:
        keys = set(state)
        fmt = next((f for f in _FAMILIES[fmt] if EXTERNAL_FORMATS[f].detect(keys)), _FAMILIES[fmt][0])
    if fmt == "auto":
        detected = detect_format(set(state))
        if detected is None:
            sample = ", ".join(sorted(state)[:4])
            raise ValueError(f"unrecognised checkpoint layout (first keys: {sample}); known "
                             f"formats: {', '.join(format_names())}")
        fmt = detected
    if fmt not in EXTERNAL_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: auto, {', '.join(format_names())}")
    spec = EXTERNAL_FORMATS[fmt]
    if spec.convert is not None:
        return spec.convert(state, target)
    out, skipped = _rename_all(state, spec.rename)
    backbone_only = spec.backbone_only or (fmt == "posenas" and bool(out) and all(
        k.startswith("backbone.") for k in out))  # a converted ImageNet backbone
    return Conversion(fmt, out, skipped, backbone_only)
