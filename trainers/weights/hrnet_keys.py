"""The official HRNet backbone's state-dict names (``pose_hrnet.py``, ``cls_hrnet.py``, and
every code that embeds them: mmpose, PoseNFS) mapped to posenas's.

HRNet's tensors are ours one for one: the same order and shapes, so renaming is enough.
"""
from __future__ import annotations

import re
from typing import Callable

__all__ = ["HRNET_RULES", "hrnet_backbone_key"]

#: (pattern on an official key, our key)
HRNET_RULES: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"^conv([12])\.(.*)$"), lambda m: f"backbone.stem.{int(m[1]) - 1}.0.{m[2]}"),
    (re.compile(r"^bn([12])\.(.*)$"), lambda m: f"backbone.stem.{int(m[1]) - 1}.1.{m[2]}"),
    (re.compile(r"^layer1\.(.*)$"), lambda m: f"backbone.stages.0.modules_.0.branches.0.{m[1]}"),
    (re.compile(r"^transition(\d)\.(.*)$"), lambda m: f"backbone.stages.{m[1]}.transition.layers.{m[2]}"),
    (re.compile(r"^stage(\d)\.(\d+)\.branches\.(.*)$"),
     lambda m: f"backbone.stages.{int(m[1]) - 1}.modules_.{m[2]}.branches.{m[3]}"),
    (re.compile(r"^stage(\d)\.(\d+)\.fuse_layers\.(\d+)\.(\d+)\.(.*)$"),
     lambda m: f"backbone.stages.{int(m[1]) - 1}.modules_.{m[2]}.fuse.{m[3]}.paths.{m[4]}.{m[5]}"),
]


def hrnet_backbone_key(key: str) -> str | None:
    """Our key for an official HRNet backbone key (``conv1``, ``layer1``, ``transitionN``,
    ``stageN``), or None for any other."""
    for pattern, new in HRNET_RULES:
        m = pattern.match(key)
        if m:
            return new(m)
    return None
