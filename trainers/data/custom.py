"""Your own keypoints: a COCO-format dataset whose layout comes from its annotation file and the
config, not from a built-in entry (``dataset.name: custom``, or a new name with
``dataset.keypoints`` set).

    ROOT/annotations/person_keypoints_{train_set,val_set}.json   (COCO's format, category id 1)
    ROOT/{train_set,val_set}/*.jpg  or  ROOT/images/{train_set,val_set}/*.jpg

What each part of the layout (:class:`~search_space.joints.KeypointSpec`) comes from:

- joint names and skeleton: ``dataset.keypoints`` / ``dataset.skeleton``, else the annotation
  file's ``categories`` entry of id 1 (COCO's own ``keypoints`` and 1-based ``skeleton`` fields);
- flip pairs: ``dataset.flip_pairs``, else the names that differ only in a left/right (l/r)
  prefix or suffix (``left_paw``/``right_paw``, ``l_eye``/``r_eye``, ``ear_left``/``ear_right``);
- OKS sigmas: ``dataset.sigmas`` (required: a missing list, or one of the wrong length, is an
  error naming the field);
- body-part groupings of the part-specific heads (``space.parts_num`` 3, 5, 8):
  ``dataset.parts``, else :func:`skeleton_parts` splits the skeleton graph into that many
  connected groups;
- half-body crops: ``dataset.upper_body`` (none without it); loss weights: ``dataset.joints_weight``
  (1 each without it).

The completed layout is written back into the config (so every arch.json, checkpoint and export
carries it, and rebuilding a network never needs the annotation file again) and registered under
the dataset's name in :data:`search_space.joints.KEYPOINT_SPECS`. Evaluation is pycocotools'
COCOeval with the given sigmas, plus PCK@α, AUC and EPE.
"""
from __future__ import annotations

import dataclasses
import re
from collections import deque
from pathlib import Path
from typing import Any

from search_space.errors import UserInputError
from search_space.joints import KeypointSpec
from search_space.parts import PARTS_NUMS
from trainers.config.loader import value_source
from trainers.config.schema import Config, DatasetConfig
from trainers.data.coco import CocoKeypoints
from trainers.evaluation.coco import load_json

__all__ = ["CustomKeypoints", "left_right_pairs", "skeleton_parts", "complete_layout",
           "layout_spec"]

_SIDE = re.compile(r"^(?P<pre>left|l|right|r)(?P<sep>[_\-. ])(?P<rest>.+)$|"
                   r"^(?P<rest2>.+?)(?P<sep2>[_\-. ])(?P<post>left|l|right|r)$", re.IGNORECASE)
_MIRROR = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _mirror_name(name: str) -> str | None:
    m = _SIDE.match(name)
    if m is None:
        return None
    if m.group("pre"):
        side = m.group("pre")
        other = _MIRROR[side.lower()]
        other = other.upper() if side.isupper() else other.capitalize() if side[0].isupper() else other
        return f"{other}{m.group('sep')}{m.group('rest')}"
    side = m.group("post")
    other = _MIRROR[side.lower()]
    other = other.upper() if side.isupper() else other.capitalize() if side[0].isupper() else other
    return f"{m.group('rest2')}{m.group('sep2')}{other}"


def left_right_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of the names that mirror each other (``left_x``/``right_x``,
    ``l_x``/``r_x``, ``x_left``/``x_right``; case kept)."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        other = _mirror_name(name)
        m = _SIDE.match(name)
        if other in index and m is not None and (m.group("pre") or m.group("post")).lower() in ("left", "l"):
            pairs.append((i, index[other]))
    return tuple(pairs)


def _hops(adjacency: list[list[int]], start: int) -> list[float]:
    dist = [float("inf")] * len(adjacency)
    dist[start] = 0
    queue = deque([start])
    while queue:
        a = queue.popleft()
        for b in adjacency[a]:
            if dist[b] == float("inf"):
                dist[b] = dist[a] + 1
                queue.append(b)
    return dist


def skeleton_parts(names: tuple[str, ...], skeleton: tuple[tuple[int, int], ...],
                   parts_num: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Split the skeleton graph into ``parts_num`` groups of joints that hang together.

    Centres by farthest-point sampling on hop distance (the first is the joint with the smallest
    eccentricity, the body's centre; ties by index), each joint to its nearest centre (ties to
    the earlier centre), so every group is connected when the skeleton is; joints the skeleton
    does not reach join the smallest group. Groups are named ``part{i}_{centre joint}``.

    Raises:
        UserInputError: (field ``space.parts_num``) more parts than joints.
    """
    k = len(names)
    if parts_num > k:
        raise UserInputError.at_field("space.parts_num", f"{parts_num} parts for {k} keypoints: "
                                      "a part needs a joint")
    adjacency: list[list[int]] = [[] for _ in range(k)]
    for a, b in skeleton:
        adjacency[a].append(b)
        adjacency[b].append(a)
    dist = [_hops(adjacency, i) for i in range(k)]
    reach = [sum(1 for d in row if d != float("inf")) for row in dist]
    ecc = [max((d for d in row if d != float("inf")), default=0) for row in dist]
    first = min(range(k), key=lambda i: (-reach[i], ecc[i], i))
    centres = [first]
    while len(centres) < parts_num:
        def far(i: int) -> tuple:
            near = min(dist[c][i] for c in centres)
            return (near if near != float("inf") else -1, -i)
        candidates = [i for i in range(k) if i not in centres]
        best = max(candidates, key=far)
        if far(best)[0] <= 0:  # the rest is unreachable: take them in order
            best = min(candidates)
        centres.append(best)
    groups: list[list[int]] = [[] for _ in centres]
    unreached = []
    for j in range(k):
        d = [dist[c][j] for c in centres]
        if min(d) == float("inf"):
            unreached.append(j)
        else:
            groups[d.index(min(d))].append(j)
    for j in unreached:
        min(groups, key=len).append(j)
    return tuple((f"part{i}_{names[c]}", tuple(names[j] for j in sorted(g)))
                 for i, (c, g) in enumerate(zip(centres, groups)))


def _categories(path: Path, field: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserInputError(str(path), "annotation file not found: its categories name the "
                             f"keypoints (or set {field} in the config)", field="dataset.root")
    data = load_json(path, "annotation file")
    cats = data.get("categories") if isinstance(data, dict) else None
    cat = next((c for c in cats or [] if isinstance(c, dict) and c.get("id") == 1), None)
    if cat is None or not isinstance(cat.get("keypoints"), list) or not cat["keypoints"]:
        raise UserInputError(str(path), "no 'keypoints' names in the category of id 1 (set "
                             f"{field} in the config instead)", field="categories")
    return cat


def _check_pairs(pairs, k: int, where: str, file: str) -> None:
    for i, (a, b) in enumerate(pairs):
        if not (0 <= a < k and 0 <= b < k) or a == b:
            raise UserInputError(file, f"pair [{a}, {b}] must name two different joints 0 … {k - 1}",
                                 field=f"{where}[{i}]")


def complete_layout(cfg: Config, source: str) -> DatasetConfig:
    """``cfg.dataset`` with names, skeleton, flip pairs and part groupings filled in and checked.

    Raises:
        UserInputError: naming the file (or override) and the ``dataset.*`` field.
    """
    ds = cfg.dataset
    where = lambda key: value_source(cfg, f"dataset.{key}", source)  # noqa: E731
    names, skeleton = ds.keypoints, ds.skeleton
    if not names:
        ann = CustomKeypoints.layout_paths(ds.root, CustomKeypoints.image_set_of(cfg, "train"))[0]
        cat = _categories(ann, "dataset.keypoints")
        names = tuple(str(n) for n in cat["keypoints"])
        if not skeleton:
            raw = cat.get("skeleton") or []
            try:
                skeleton = tuple((int(a) - 1, int(b) - 1) for a, b in raw)
            except (TypeError, ValueError):
                raise UserInputError(str(ann), "expected 1-based [a, b] joint pairs",
                                     field="categories.skeleton") from None
            _check_pairs(skeleton, len(names), "categories.skeleton", str(ann))
    k = len(names)
    if len(set(names)) != k:
        dup = next(n for n in names if names.count(n) > 1)
        raise UserInputError(where("keypoints"), f"keypoint name {dup!r} appears twice",
                             field="dataset.keypoints")
    _check_pairs(skeleton, k, "dataset.skeleton", where("skeleton"))
    flip_pairs = ds.flip_pairs or left_right_pairs(names)
    _check_pairs(flip_pairs, k, "dataset.flip_pairs", where("flip_pairs"))
    flat = [j for pair in flip_pairs for j in pair]
    if len(set(flat)) != len(flat):
        raise UserInputError(where("flip_pairs"), "a joint is in two flip pairs",
                             field="dataset.flip_pairs")
    if len(ds.sigmas) != k:
        got = f"{len(ds.sigmas)} values" if ds.sigmas else "none"
        raise UserInputError(where("sigmas"), f"a custom dataset needs one OKS sigma per keypoint "
                             f"({k}: {', '.join(names[:4])}{', …' if k > 4 else ''}), got {got}",
                             field="dataset.sigmas")
    for key, values in (("joints_weight", ds.joints_weight),):
        if values and len(values) != k:
            raise UserInputError(where(key), f"expected {k} values (one per keypoint), got "
                                 f"{len(values)}", field=f"dataset.{key}")
    bad = [j for j in ds.upper_body if j >= k]
    if bad:
        raise UserInputError(where("upper_body"), f"joint {bad[0]} does not exist (0 … {k - 1})",
                             field="dataset.upper_body")
    parts = _complete_parts(ds.parts, names, skeleton, where("parts"))
    return dataclasses.replace(ds, keypoints=names, skeleton=tuple(skeleton),
                               flip_pairs=tuple(flip_pairs), parts=parts)


def _complete_parts(given: dict[str, Any], names: tuple[str, ...], skeleton, file: str
                    ) -> dict[str, Any]:
    known = set(names)
    out: dict[str, Any] = {}
    for count, groups in given.items():
        field = f"dataset.parts.{count}"
        try:
            n = int(count)
        except ValueError:
            raise UserInputError(file, "keys are part counts (3, 5, 8)", field=field) from None
        if n not in PARTS_NUMS or n == 1:
            raise UserInputError(file, f"part counts are {', '.join(map(str, PARTS_NUMS[1:]))}",
                                 field=field)
        if not isinstance(groups, dict) or len(groups) != n:
            raise UserInputError(file, f"expected {n} parts {{name: [joint names]}}", field=field)
        covered: set[str] = set()
        for part, joints in groups.items():
            if not isinstance(joints, (list, tuple)) or not joints:
                raise UserInputError(file, "expected a list of joint names", field=f"{field}.{part}")
            unknown = [j for j in joints if j not in known]
            if unknown:
                raise UserInputError(file, f"unknown keypoint {unknown[0]!r}", field=f"{field}.{part}")
            covered |= set(joints)
        if covered != known:
            missing = sorted(known - covered, key=names.index)
            raise UserInputError(file, f"keypoint {missing[0]!r} is in no part", field=field)
        out[str(n)] = {str(p): list(j) for p, j in groups.items()}
    for n in PARTS_NUMS[1:]:
        if str(n) not in out and n <= len(names):
            out[str(n)] = {p: list(j) for p, j in skeleton_parts(names, tuple(skeleton), n)}
    return out


def layout_spec(name: str, ds: DatasetConfig) -> KeypointSpec:
    """The :class:`KeypointSpec` of a completed custom ``dataset`` section."""
    k = len(ds.keypoints)
    return KeypointSpec(
        name=name, names=ds.keypoints, flip_pairs=ds.flip_pairs, skeleton=ds.skeleton,
        upper_body=ds.upper_body, joints_weight=ds.joints_weight or (1.0,) * k, sigmas=ds.sigmas,
        part_groups=tuple((int(n), tuple((p, tuple(j)) for p, j in groups.items()))
                          for n, groups in sorted(ds.parts.items(), key=lambda kv: int(kv[0]))))


class CustomKeypoints(CocoKeypoints):
    """A COCO-format dataset of any keypoint layout (the layout is the config's)."""

    title = "custom"
