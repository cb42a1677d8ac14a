"""Experiment configuration: YAML files validated into frozen dataclasses.

A config file is a mapping with the sections ``dataset``, ``model``, ``train``, ``test`` and
``search`` (plus a few top-level keys). A file may start from other files with
``_base_: [relative/path.yaml, ...]``; later files and then command-line overrides win.
Overrides are ``KEY VALUE`` pairs or ``KEY=VALUE`` tokens with dotted lower-snake-case keys,
e.g. ``dataset.root /data/coco train.epochs=3``. Values are parsed as YAML scalars/lists.

Every problem (unknown key, wrong type, missing value, unreadable file) raises
:class:`~trainers.errors.UserInputError` naming the file and the dotted key.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from trainers.errors import UserInputError

__all__ = [
    "Config", "DatasetConfig", "ModelConfig", "TrainConfig", "TestConfig", "SearchConfig",
    "SpaceConfig", "BackboneSpaceConfig", "CellConfig", "InvalidField", "load_config", "config_from_dict", "config_to_dict", "parse_overrides", "coerce_value",
]


@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """Where the data is and how training samples are augmented (HRNet conventions)."""

    name: Literal["coco", "mpii"]
    root: str
    train_set: str = "train2017"  #: ``train2017`` (COCO) or ``train`` (MPII)
    val_set: str = "val2017"  #: ``val2017`` (COCO) or ``valid`` (MPII)
    scale_factor: float = 0.35  #: scale jitter s·clip(N(1, sf), 1-sf, 1+sf)
    rotation_factor: float = 45.0  #: rotation clip(N(0, rf), -2rf, 2rf) degrees
    rotation_prob: float = 0.6  #: probability of applying a rotation
    flip: bool = True
    prob_half_body: float = 0.3  #: 0 disables half-body augmentation (MPII)
    num_joints_half_body: int = 8
    color_rgb: bool = True  #: feed RGB (True) or OpenCV's BGR (False)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The network and its heatmap geometry."""

    name: str = "hrnet_w32"
    input_size: tuple[int, int] = (256, 192)  #: (height, width), as in "256x192"
    heatmap_stride: int = 4  #: heatmaps are input_size / heatmap_stride
    sigma: float = 2.0  #: Gaussian target std in heatmap pixels
    pretrained: str = ""

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the output heatmaps."""
        return (self.input_size[0] // self.heatmap_stride, self.input_size[1] // self.heatmap_stride)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The training recipe (HRNet's by default: Adam 1e-3, 210 epochs, steps 170/200)."""

    epochs: int = 210
    batch_size: int = 32  #: per device
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    lr_steps: tuple[int, ...] = (170, 200)
    lr_factor: float = 0.1
    weight_decay: float = 0.0
    momentum: float = 0.9
    num_workers: int = 4
    use_target_weight: bool = True
    devices: str = "auto"
    precision: str = "auto"  #: "auto" = 16-mixed on CUDA, 32 on CPU
    limit_train_batches: float = 1.0  #: fraction (<=1.0) or count (>1) of batches per epoch


@dataclass(frozen=True, kw_only=True)
class TestConfig:
    """Evaluation: boxes, flip test and COCO post-processing."""

    batch_size: int = 32
    flip_test: bool = True
    shift_heatmap: bool = True  #: shift flipped heatmaps one pixel right (HRNet)
    post_process: bool = True  #: quarter-pixel shift toward the higher neighbour
    use_gt_bbox: bool = True
    det_file: str = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
    image_thre: float = 0.0  #: minimum detector score of a person box
    bbox_thre: float = 1.0  #: minimum width and height (pixels) of a detection box
    in_vis_thre: float = 0.2  #: keypoint confidence counted in rescoring and OKS-NMS
    oks_thre: float = 0.9  #: OKS-NMS threshold
    margin: float = 1.25  #: box enlargement around the person (PNFS --margin)
    model_file: str = ""


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Architecture search budget and the architecture optimiser."""

    epochs: int = 50
    batch_size: int = 32
    warmup_epochs: int = 0  #: epochs with alpha/beta frozen
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    num_trials: int = 20  #: multi-trial strategies; path samples of spos; rate probes of prune_rate
    trial_epochs: int = 1
    #: prune_rate: a checkpoint / state dict of the full-width network (empty: train it for
    #: ``search.epochs`` epochs first)
    prune_weights: str = ""
    #: prune_rate: an arch file fixing the space's non-width decisions (empty: none allowed)
    base_arch: str = ""
    prune_criterion: Literal["scale", "shift", "scale_shift", "l1"] = "scale"
    prune_selection: Literal["simple", "golden"] = "golden"
    prune_tolerance: float = 0.01  #: largest AP (PCKh) drop before retraining
    prune_step: float = 0.05  #: rate step of the "simple" scan
    prune_max_rate: float = 0.9
    prune_min_keep: float = 0.1  #: per-layer floor: fraction of a layer's channels always kept
    #: trials (trial.py): start from a one-shot search checkpoint's supernet weights
    inherit_from: str = ""
    #: what trials and rankings maximise: the metric (AP / PCKh), the metric with a FLOPs penalty
    #: (MnasNet's soft reward: metric × (GFLOPs / target)^-penalty_weight above the target), or
    #: the metric under a FLOPs constraint (0 above the target)
    objective: Literal["metric", "flops_penalty", "flops_constraint"] = "metric"
    target_gflops: float = 0.0
    penalty_weight: float = 0.07

    def __post_init__(self) -> None:
        if self.objective != "metric" and self.target_gflops <= 0:
            raise InvalidField("target_gflops", f"objective {self.objective!r} needs a target "
                               "above 0 (GFLOPs, as --param_flop reports them)")
        for name in ("prune_tolerance", "prune_step", "prune_max_rate", "prune_min_keep"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name == "prune_step" and value == 0):
                raise InvalidField(name, f"must be in [0, 1]{' and > 0' if name == 'prune_step' else ''}, got {value}")


class InvalidField(ValueError):
    """Raised by a config section's checks; the loader turns it into a :class:`UserInputError`
    naming the file and the dotted key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


#: operation names of the PNFS cells (see ``search_space.operations``)
_OPERATORS = ("Zero", "skip_connect", "Sep_Conv_3x3", "Sep_Conv_5x5", "Atr_Conv_3x3",
              "Atr_Conv_5x5", "avg_pool_3x3", "max_pool_3x3", "conv_3x3")


@dataclass(frozen=True, kw_only=True)
class BackboneSpaceConfig:
    """The backbone feeding the part heads, and its channel-width choices."""

    name: Literal["hrnet_w32", "hrnet_w48", "hrnet_tiny", "litehrnet_18", "litehrnet_30"] = "hrnet_w32"
    #: HRNet stages kept: 0 = all (the full HRNet's pyramid); 3 = PNFS's "stem~stage3" (stages
    #: 1-3 plus the transition that opens the 1/32 branch)
    stages: int = 0
    #: width choices as multiples of the base widths, e.g. [0.25, 0.5, 0.75, 1.0]; [] = fixed
    width_multipliers: tuple[float, ...] = ()
    search_branch_widths: bool = True  #: one width choice per branch (tied across stages/fuses)
    search_block_widths: bool = True  #: one choice per inner width of every residual block

    def __post_init__(self) -> None:
        if self.stages not in (0, 2, 3, 4):
            raise InvalidField("stages", f"must be 0 (all), 2, 3 or 4, got {self.stages}")
        if self.stages and self.name.startswith("litehrnet"):
            raise InvalidField("stages", "truncation is only defined for HRNet backbones")
        for m in self.width_multipliers:
            if not 0.0 < m <= 1.0:
                raise InvalidField("width_multipliers", f"multipliers must be in (0, 1], got {m}")
        if self.width_multipliers and self.name.startswith("litehrnet"):
            raise InvalidField("width_multipliers", "width choices are defined for HRNet backbones")


@dataclass(frozen=True, kw_only=True)
class CellConfig:
    """A PNFS cell-based neural fabric (field names of the PNFS configs)."""

    one_shot_search: bool = True  #: one alpha per edge shared by every cell of a fabric
    vector_in_pixel: bool = True  #: vector head: |v|^2 / (1 + |v|^2) per joint
    vector_dim: int = 8
    convolution_mode: Literal["2D", "3D"] = "2D"
    search_alpha: bool = True  #: false: every operation mixed with fixed equal weights
    search_beta: bool = True  #: false: the three inputs of a cell mixed with fixed equal weights
    operators: tuple[str, ...] = ("Zero", "skip_connect", "Sep_Conv_3x3", "Atr_Conv_3x3")
    depth: int = 6
    cut_layers_num: int = 3  #: layers replaced by the backbone pyramid
    size_types: tuple[int, ...] = (4, 8, 16, 32)  #: strides of the fabric's scales
    hidden_states_num: int = 1
    factor: int = 16  #: cell channels = factor × size_type (/4: 1/4 scale has 4·factor)
    input_nodes_num: int = 1

    def __post_init__(self) -> None:
        unknown = [op for op in self.operators if op not in _OPERATORS]
        if unknown:
            raise InvalidField("operators", f"unknown {unknown}; known: {list(_OPERATORS)}")
        if not self.operators or len(set(self.operators)) != len(self.operators):
            raise InvalidField("operators", "must be a non-empty list without repeats")
        if self.operators == ("Zero",):
            raise InvalidField("operators", "needs an operation besides Zero")
        if self.depth < 2:
            raise InvalidField("depth", f"must be at least 2, got {self.depth}")
        if not 1 <= self.cut_layers_num < self.depth:
            raise InvalidField("cut_layers_num", f"must be in [1, depth), got {self.cut_layers_num}")
        sizes = list(self.size_types)
        if not sizes or sizes[0] != 4 or any(b != 2 * a for a, b in zip(sizes, sizes[1:])):
            raise InvalidField("size_types", f"must be 4, 8, ... doubling (1/4 first), got {sizes}")
        if self.hidden_states_num < 1:
            raise InvalidField("hidden_states_num", "must be at least 1")
        if self.input_nodes_num != 1:
            raise InvalidField("input_nodes_num", "only 1 is supported (the setting of the "
                               "PNFS paper; the released checkpoints' second node was unused)")
        if self.factor < 1 or self.vector_dim < 1:
            raise InvalidField("factor" if self.factor < 1 else "vector_dim", "must be positive")


@dataclass(frozen=True, kw_only=True)
class SpaceConfig:
    """The unified search space: backbone widths × body parts × PNFS fabrics."""

    backbone: BackboneSpaceConfig = field(default_factory=BackboneSpaceConfig)
    #: "fabric": a PNFS fabric per part; "plain": a 1×1 conv per part on the 1/4 branch
    head: Literal["fabric", "plain"] = "fabric"
    parts_num: int = 5
    cell_config: CellConfig = field(default_factory=CellConfig)

    def __post_init__(self) -> None:
        if self.parts_num not in (1, 3, 5, 8):
            raise InvalidField("parts_num", f"must be 1, 3, 5 or 8, got {self.parts_num}")


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole experiment."""

    dataset: DatasetConfig
    name: str = "default"
    output_dir: str = "runs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)


# --------------------------------------------------------------------------------------------
# loading

_BASE_KEY = "_base_"
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load ``path`` (with its ``_base_`` files) and apply command-line ``overrides``.

    Args:
        path: the YAML file.
        overrides: trailing command-line tokens, ``KEY VALUE`` pairs or ``KEY=VALUE``.

    Raises:
        UserInputError: naming the file (or ``override``) and the dotted key.
    """
    data, origin = _load_with_bases(Path(path), chain=())
    for key, value in parse_overrides(overrides):
        _set_dotted(data, origin, key, value, source="override")
    return config_from_dict(data, source=str(path), origin=origin)


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>",
                     origin: Mapping[str, str] | None = None) -> Config:
    """Validate a plain mapping (e.g. the ``config`` of an arch.json) into a :class:`Config`."""
    return _build(Config, data, prefix="", source=source, origin=origin or {})


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain YAML/JSON-serialisable data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def parse_overrides(tokens: Sequence[str]) -> list[tuple[str, Any]]:
    """Parse ``KEY VALUE`` / ``KEY=VALUE`` tokens into ``(dotted_key, value)`` pairs."""
    pairs: list[tuple[str, Any]] = []
    i = 0
    tokens = list(tokens)
    while i < len(tokens):
        token = tokens[i]
        if "=" in token and not token.startswith("="):
            key, raw = token.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(tokens):
                raise UserInputError("override", f"key {token!r} has no value "
                                     "(use KEY VALUE or KEY=VALUE)")
            key, raw = token, tokens[i + 1]
            i += 2
        if not key or not all(part.replace("_", "").isalnum() and part == part.lower()
                               for part in key.split(".")):
            raise UserInputError("override", "keys are dotted lower_snake_case, "
                                 "e.g. dataset.root or train.epochs", field=key)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value):
            value = float(value)  # YAML 1.1 reads "1e-4" as a string; users mean a number
        pairs.append((key, value))
    return pairs


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise UserInputError(str(path), f"cannot read config file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserInputError(str(path), f"invalid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserInputError(str(path), "a config file must be a mapping of sections")
    return data


def _load_with_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    resolved = path.resolve()
    if resolved in chain:
        raise UserInputError(str(path), "circular _base_ reference", field=_BASE_KEY)
    raw = _load_yaml(path)
    bases = raw.pop(_BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise UserInputError(str(path), "must be a path or a list of paths", field=_BASE_KEY)
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for base in bases:
        base_data, base_origin = _load_with_bases(path.parent / base, chain + (resolved,))
        _merge(merged, origin, base_data, base_origin)
    own_origin = {key: str(path) for key in _dotted_keys(raw)}
    _merge(merged, origin, raw, own_origin)
    return merged, origin


def _dotted_keys(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


def _merge(dst: dict, dst_origin: dict, src: Mapping, src_origin: Mapping, prefix: str = "") -> None:
    for key, value in src.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], dst_origin, value, src_origin, dotted + ".")
        else:
            dst[key] = copy.deepcopy(value)
        dst_origin[dotted] = src_origin.get(dotted, dst_origin.get(dotted, "<unknown>"))
        if isinstance(value, dict):
            for sub in _dotted_keys(value, dotted + "."):
                dst_origin[sub] = src_origin.get(sub, dst_origin.get(sub, "<unknown>"))


def _set_dotted(data: dict, origin: dict, key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    cls: Any = Config
    node = data
    for depth, part in enumerate(parts):
        names = {f.name: f for f in dataclasses.fields(cls)}
        if part not in names:
            _unknown_key(source, ".".join(parts[: depth + 1]), list(names))
        hint = typing.get_type_hints(cls)[part]
        if depth == len(parts) - 1:
            node[part] = value
        else:
            if not dataclasses.is_dataclass(hint):
                raise UserInputError(source, f"{part!r} is a value, not a section",
                                     field=".".join(parts[: depth + 1]))
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserInputError(source, "must be a mapping", field=".".join(parts[: depth + 1]))
            cls = hint
    origin[key] = source


def _unknown_key(source: str, dotted: str, known: list[str]) -> typing.NoReturn:
    leaf = dotted.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
    raise UserInputError(source, f"unknown key{hint}", field=dotted)


def _build(cls: type, data: Any, prefix: str, source: str, origin: Mapping[str, str]) -> Any:
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(data, Mapping):
        raise UserInputError(origin.get(prefix.rstrip("."), source), "must be a mapping", field=where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            _unknown_key(origin.get(f"{prefix}{key}", source), f"{prefix}{key}", list(fields))
    kwargs = {}
    for name, fld in fields.items():
        dotted = f"{prefix}{name}"
        if name not in data:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise UserInputError(source, "missing value (required)", field=dotted)
            continue
        file = origin.get(dotted, source)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], dotted + ".", source, origin)
        else:
            kwargs[name] = coerce_value(data[name], hint, file, dotted)
    try:
        return cls(**kwargs)
    except InvalidField as err:
        dotted = f"{prefix}{err.field_name}"
        raise UserInputError(origin.get(dotted, source), err.message, field=dotted) from None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def coerce_value(value: Any, tp: Any, file: str, dotted: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail(expected: str) -> typing.NoReturn:
        raise UserInputError(file, f"expected {expected}, got {value!r}", field=dotted)

    if origin is Literal:
        if value not in args:
            fail(_type_name(tp))
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce_value(value, inner[0], file, dotted)
    if origin is tuple:
        if isinstance(value, str) and "x" in value:  # "256x192"
            parts = value.lower().split("x")
            try:
                value = [int(p) for p in parts]
            except ValueError:
                fail("a list such as [256, 192] or 256x192")
        if not isinstance(value, (list, tuple)):
            fail("a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce_value(v, args[0], file, f"{dotted}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            fail(f"a list of {len(args)} values")
        return tuple(coerce_value(v, a, file, f"{dotted}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            fail("a list")
        return [coerce_value(v, args[0], file, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            fail("a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("a finite number")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            fail("a string")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {dotted}")  # programming error
