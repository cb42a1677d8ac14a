"""ResNet and MobileNet-V2 state-dict names of the released files, mapped to posenas's.

posenas's ResNet and MobileNet-V2 (:mod:`search_space.resnet`, :mod:`search_space.mobilenetv2`)
use torchvision's module names under ``backbone.``, so:

- torchvision's ResNet, the official SimpleBaseline, PoseNFS's ``resnet_feature.py`` and mmpose's
  ResNet (``conv1 bn1 layer{s}.{k}.conv1 … downsample.{0,1}``) map by adding the prefix;
- torchvision's MobileNet-V2 (``features.{i}.conv.{j}.{0,1}`` for its conv-BN-ReLU6 modules)
  maps by adding the prefix; tonylins/pytorch-mobilenet-v2 (and PoseNFS, which keeps its
  ``features``) lists conv, BN and ReLU6 flat in ``features.{i}.conv.{j}``: index j is renamed
  to torchvision's nesting, which depends on whether block i expands (t > 1).

Only the blocks up to PoseNFS's last tap (``features.16``) are part of the backbone; the last
block, the 1×1 conv to 1280 and the classifiers are skipped by the caller (no such key in the
network).
"""
from __future__ import annotations

import re

from search_space.layouts import mobilenet_v2_layout

__all__ = ["resnet_backbone_key", "torchvision_mobilenet_key", "tonylins_mobilenet_key",
           "RESNET_BODY", "is_tonylins_mobilenet", "is_torchvision_mobilenet"]

#: the top-level ResNet modules (everything else — ``fc``, a head — is not backbone)
RESNET_BODY = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")

_EXPANDS = {i: t != 1 for i, (_, t, _, _) in enumerate(
    mobilenet_v2_layout().blocks() + [(6, 6, 320, 1)], start=1)}
#: tonylins' flat index in ``conv`` → torchvision's (expanding block, non-expanding block)
_TONY_EXPAND = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_TONY_PLAIN = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_TONY = re.compile(r"^features\.(?P<i>\d+)\.(?P<rest>.*)$")


def resnet_backbone_key(key: str) -> str | None:
    """Our key for a ResNet body key (torchvision / official / PoseNFS / mmpose names), or None."""
    return "backbone." + key if key.startswith(RESNET_BODY) else None


def torchvision_mobilenet_key(key: str) -> str | None:
    """Our key for a torchvision MobileNet-V2 ``features`` key, or None (classifier)."""
    return "backbone." + key if key.startswith("features.") else None


def tonylins_mobilenet_key(key: str) -> str | None:
    """Our key for a tonylins / PoseNFS MobileNet-V2 ``features`` key, or None.

    ``features.0.{0,1}`` (the stem's conv and BN) keep their names; in a block, tonylins'
    ``conv.{j}`` becomes torchvision's nesting.
    """
    m = _TONY.match(key)
    if not m:
        return None
    i, rest = int(m["i"]), m["rest"]
    if i == 0 or i not in _EXPANDS:  # the stem (same names) or features.18: the 1x1 to 1280
        return f"backbone.features.{i}.{rest}"
    c = re.match(r"^conv\.(\d+)\.(.*)$", rest)
    if not c:
        return None
    table = _TONY_EXPAND if _EXPANDS[i] else _TONY_PLAIN
    if c[1] not in table:
        return None
    return f"backbone.features.{i}.conv.{table[c[1]]}.{c[2]}"


def is_torchvision_mobilenet(keys: set[str]) -> bool:
    """torchvision's nesting: block 2's expansion conv is ``features.2.conv.0.0``."""
    return "features.2.conv.0.0.weight" in keys and "features.0.0.weight" in keys


def is_tonylins_mobilenet(keys: set[str]) -> bool:
    """tonylins' flat blocks: block 2's depthwise conv is ``features.2.conv.3``."""
    return "features.2.conv.3.weight" in keys and "features.2.conv.0.weight" in keys
