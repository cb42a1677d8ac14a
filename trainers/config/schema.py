"""The experiment config: the sections ``dataset``, ``model``, ``train``, ``test``, ``search`` and
``space`` (plus a few top-level keys), validated into frozen dataclasses.

Each section's schema lives with the code that reads it — ``space`` in
:mod:`search_space.config`, the others here — and :class:`Config` joins them: this module is
where a whole file is validated. Loading (``_base_`` files, ``KEY VALUE`` overrides, error
messages naming the file and the dotted key) is :mod:`trainers.config.loader`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from search_space.bounds import DEVICES_PATTERN, bounded
from search_space.config import SpaceConfig
from search_space.joints import HEATMAP_STRIDE
from search_space.errors import UserInputError

__all__ = ["Config", "DatasetConfig", "ModelConfig", "TrainConfig", "TestConfig", "SearchConfig",
           "GoalConfig", "PruneRateConfig", "CollapseConfig", "InheritanceConfig", "RENAMED_KEYS",
           "DistillConfig", "QuantConfig",
           "HEATMAP_STRIDE"]



@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """Where the data is and how training samples are augmented (HRNet conventions)."""

    name: str  #: a registered dataset (trainers.data.registry)
    root: str
    train_set: str = ""  #: "": the dataset's own (``train2017`` COCO, ``train`` MPII)
    val_set: str = ""  #: "": the dataset's own (``val2017`` COCO, ``valid`` MPII)
    scale_factor: float = bounded(0.35, ge=0, lt=1)  #: scale jitter s·clip(N(1, sf), 1-sf, 1+sf)
    rotation_factor: float = bounded(45.0, ge=0, le=180)  #: rotation clip(N(0, rf), -2rf, 2rf) degrees
    rotation_prob: float = bounded(0.6, ge=0, le=1)  #: probability of applying a rotation
    flip: bool = True
    prob_half_body: float = bounded(0.3, ge=0, le=1)  #: 0 disables half-body augmentation (MPII)
    num_joints_half_body: int = bounded(8, ge=0)  #: fewest visible joints for a half-body crop
    color_rgb: bool = True  #: feed RGB (True) or OpenCV's BGR (False)
    #: stop on implausible annotations (a labelled keypoint outside its image, a visibility flag
    #: other than 0/1/2, a zero-size box, a duplicate id) instead of counting them in a warning
    strict_annotations: bool = False
    # -- a dataset described here (``name: custom``, or a new name with ``keypoints`` set): its
    # keypoint layout, completed from the annotation file's ``categories`` when the config is
    # loaded (trainers.data.custom) and saved complete with every run
    #: keypoint names; [] = the annotation file's ``categories`` (category id 1) ``keypoints``
    keypoints: tuple[str, ...] = ()
    #: 0-based joint pairs drawn as limbs; [] = the categories' ``skeleton`` (1-based there)
    skeleton: tuple[tuple[int, int], ...] = ()
    #: 0-based (left, right) pairs a horizontal flip swaps; [] = names that differ only in a
    #: left/right (or l/r) prefix or suffix
    flip_pairs: tuple[tuple[int, int], ...] = ()
    #: OKS sigma of each keypoint (required for a custom dataset: COCO's are 0.025 for the eyes
    #: to 0.107 for the hips)
    sigmas: tuple[float, ...] = bounded((), gt=0)
    #: 0-based joints of the upper half (half-body augmentation); [] = no half-body crops
    upper_body: tuple[int, ...] = bounded((), ge=0)
    #: loss weight of each joint; [] = 1 each
    joints_weight: tuple[float, ...] = bounded((), gt=0)
    #: body-part groupings of the part-specific heads, {parts_num: {part name: [joint names]}};
    #: {} = derived from the skeleton graph (trainers.data.custom.skeleton_parts)
    parts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The network and its heatmap geometry."""

    name: str = "hrnet_w32"
    input_size: tuple[int, int] = bounded((256, 192), gt=0, multiple_of=HEATMAP_STRIDE,
                                          why="the heatmap stride")  #: (height, width), as in "256x192"
    sigma: float = bounded(2.0, gt=0)  #: Gaussian target std in heatmap pixels
    #: initial weights: a posenas checkpoint or state dict, or a released checkpoint (official
    #: HRNet, ImageNet HRNet / timm; see trainers/weights/formats.py), converted on the fly
    pretrained: str = ""
    #: ``all``: every tensor must fit; ``backbone``: only the backbone's (ImageNet init; a
    #: search's supernet and multi-trial candidates always load the backbone only)
    pretrained_scope: Literal["all", "backbone"] = "all"

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the output heatmaps."""
        return (self.input_size[0] // HEATMAP_STRIDE, self.input_size[1] // HEATMAP_STRIDE)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The training recipe (HRNet's by default: Adam 1e-3, 210 epochs, steps 170/200)."""

    epochs: int = bounded(210, ge=1)
    batch_size: int = bounded(32, ge=1)  #: per device
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = bounded(1e-3, gt=0)
    lr_steps: tuple[int, ...] = bounded((170, 200), ge=1)  #: epochs at which lr × lr_factor
    lr_factor: float = bounded(0.1, gt=0, le=1)
    weight_decay: float = bounded(0.0, ge=0)
    momentum: float = bounded(0.9, ge=0, lt=1)  #: SGD momentum / Adam β1
    num_workers: int = bounded(4, ge=0)
    use_target_weight: bool = True
    devices: str = "auto"  #: per node; under torchrun, its --nproc_per_node
    num_nodes: int = bounded(1, ge=1)  #: machines (Lightning/SLURM launch); under torchrun, its --nnodes
    precision: Literal["auto", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "bf16-true",
                       "16-true", "64-true", "64"] = "auto"  #: "auto" = 16-mixed on CUDA, 32 on CPU; "bf16-mixed" on CPU too
    channels_last: bool = True  #: NHWC weights and inputs (faster convolutions, same values)
    limit_train_batches: float = bounded(1.0, gt=0)  #: fraction (<=1.0) or count (>1) of batches per epoch

    def __post_init__(self) -> None:
        if not DEVICES_PATTERN.fullmatch(str(self.devices)):
            raise UserInputError.at_field("devices", "expected 'auto', a device count (1, 2, …; -1: "
                                          f"all) or GPU indices such as '0,1', got {self.devices!r}")
        if self.limit_train_batches > 1 and not float(self.limit_train_batches).is_integer():
            raise UserInputError.at_field("limit_train_batches", "a fraction of the batches (≤ 1) or "
                                          f"a whole count (> 1), got {self.limit_train_batches}")


@dataclass(frozen=True, kw_only=True)
class TestConfig:
    """Evaluation: boxes, flip test and COCO post-processing."""

    batch_size: int = bounded(32, ge=1)
    flip_test: bool = True
    shift_heatmap: bool = True  #: shift flipped heatmaps one pixel right (HRNet)
    post_process: bool = True  #: quarter-pixel shift toward the higher neighbour
    use_gt_bbox: bool = True
    det_file: str = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
    image_thre: float = bounded(0.0, ge=0, le=1)  #: minimum detector score of a person box
    bbox_thre: float = bounded(1.0, ge=0)  #: minimum width and height (pixels) of a detection box
    in_vis_thre: float = bounded(0.2, ge=0, le=1)  #: keypoint confidence counted in rescoring and OKS-NMS
    oks_thre: float = bounded(0.9, ge=0, le=1)  #: OKS-NMS threshold
    margin: float = bounded(1.25, gt=0)  #: box enlargement around the person (PNFS --margin)
    model_file: str = ""
    #: PCK@α's α (error below α × the ground-truth box's longer side; COCO-format datasets)
    pck_thr: float = bounded(0.05, gt=0, le=1)
    #: AUC's range: PCK@α averaged over 20 α in [0, auc_max_thr)
    auc_max_thr: float = bounded(0.5, gt=0, le=1)
    #: COCOeval of COCO-format datasets scored by pycocotools (COCO, OCHuman, custom):
    #: pycocotools itself, or faster-coco-eval's C++ port (the same 10 stats, faster)
    coco_evaluator: Literal["pycocotools", "faster_coco_eval"] = "pycocotools"
    #: the number that picks the best checkpoint and ranks candidates: "" = the dataset's own
    #: (COCO-format AP, MPII PCKh Mean); or another the evaluation reports (PCK, AUC, EPE, a
    #: CrowdPose AP_hard, a WholeBody wholebody_AP, ...); EPE is minimised
    metric: str = ""


@dataclass(frozen=True, kw_only=True)
class GoalConfig:
    """``search.goal``: what trials and rankings maximise, and the cost it weighs."""

    #: the metric (AP / PCKh), the metric with a cost penalty (MnasNet's soft reward:
    #: metric × (cost / target)^-penalty_weight above the target), or the metric under a cost
    #: constraint (0 above the target)
    objective: Literal["metric", "flops_penalty", "flops_constraint"] = "metric"
    #: the cost the objective weighs: GFLOPs, or onnxruntime's latency on this machine (1
    #: thread, ms per crop) from a lookup table of the space's operations (strategies.latency)
    cost: Literal["gflops", "latency"] = "gflops"
    target_gflops: float = bounded(0.0, ge=0)
    #: the GFLOPs target as ``target_scale`` × a reference network's GFLOPs at
    #: ``model.input_size``, measured when the search starts (strategies.goal_target), instead
    #: of ``target_gflops``: "plain_head" (the space's backbone at full widths with a plain
    #: head per part) or a registered model name (``hrnet_tiny``, ...); "" = ``target_gflops``
    target_reference: str = ""
    target_scale: float = bounded(1.0, gt=0)  #: the multiple of ``target_reference``'s GFLOPs
    target_ms: float = bounded(0.0, ge=0)  #: the target of ``cost latency`` (ms)
    penalty_weight: float = bounded(0.07, ge=0)
    #: the latency table (JSON); "" = latency_table.json in the search's output folder
    latency_table: str = ""
    #: ``flops_constraint`` on GFLOPs: the Prune step makes target_gflops a hard constraint on
    #: the derived network (cheapest-by-α/β changes until it fits; strategies.budget), and a
    #: trial above it scores 0 untrained (strategies.trials); off: the search's soft penalty only
    hard: bool = True
    #: with ``hard``: grow the derived network back toward ``target_gflops`` when it is below
    #: it (TF-NAS's elasticity scaling; strategies.budget): the changes with the least loss of
    #: α/β probability per GFLOP gained that keep it within the target
    fill: bool = False

    @property
    def target(self) -> float:
        """The objective's target in the unit of ``cost`` (GFLOPs or ms)."""
        if self.target_reference:  # a caller's bug, not the user's: the number is not known yet
            raise RuntimeError("search.goal.target_reference is not resolved: pass the config "
                               "through strategies.goal_target.resolve_goal_target first")
        return self.target_ms if self.cost == "latency" else self.target_gflops

    def __post_init__(self) -> None:
        if self.target_reference and self.target_gflops > 0:
            raise UserInputError.at_field("target_reference", "sets the GFLOPs target: give "
                                          "it or search.goal.target_gflops, not both")
        if self.target_reference and self.cost != "gflops":
            raise UserInputError.at_field("target_reference", "sets a GFLOPs target; with "
                                          "cost latency give search.goal.target_ms")
        if self.target_scale != 1.0 and not self.target_reference:
            raise UserInputError.at_field("target_scale", "scales search.goal.target_reference"
                                          "'s GFLOPs, which is not set")
        if (self.objective != "metric" and self.cost == "gflops" and self.target_gflops <= 0
                and not self.target_reference):
            raise UserInputError.at_field("objective", f"{self.objective!r} needs "
                                          "search.goal.target_gflops above 0 (GFLOPs, as "
                                          "--param_flop reports them) or "
                                          "search.goal.target_reference")
        if self.fill and not (self.objective == "flops_constraint" and self.cost == "gflops"
                              and self.hard):
            raise UserInputError.at_field("fill", "fills a hard GFLOPs budget: it needs "
                                          "search.goal.objective flops_constraint, cost gflops "
                                          "and hard true")
        if self.objective != "metric" and self.cost == "latency" and self.target_ms <= 0:
            raise UserInputError.at_field("objective", f"{self.objective!r} with cost latency "
                                          "needs search.goal.target_ms above 0 (ms per crop, "
                                          "onnxruntime, 1 thread)")


@dataclass(frozen=True, kw_only=True)
class PruneRateConfig:
    """``search.prune_rate``: adaptive pruning-rate channel pruning (APRCP; strategies.prune_rate)."""

    #: a checkpoint / state dict of the full-width network (empty: train it for
    #: ``search.epochs`` epochs first)
    weights: str = ""
    #: an arch file fixing the space's non-width decisions (empty: none allowed)
    base_arch: str = ""
    criterion: Literal["scale", "shift", "scale_shift", "l1"] = "scale"
    selection: Literal["simple", "golden"] = "golden"
    tolerance: float = bounded(0.01, ge=0, le=1)  #: largest AP (PCKh) drop before retraining
    step: float = bounded(0.05, gt=0, le=1)  #: rate step of the "simple" scan
    max_rate: float = bounded(0.9, ge=0, le=1)
    #: per-layer floor: fraction of a layer's channels always kept
    min_keep: float = bounded(0.1, ge=0, le=1)


@dataclass(frozen=True, kw_only=True)
class CollapseConfig:
    """``search.collapse``: remedies for DARTS's collapse onto parameter-free operations."""

    #: Prune's limit on parameter-free operations (skip connection, pooling) in the derived
    #: network, P-DARTS's cap on skip connections (Chen et al. 2019): the strongest
    #: ``max_param_free`` parameter-free choices by α stay, the others take their strongest
    #: operation with weights; -1: no limit
    max_param_free: int = bounded(-1, ge=-1)
    #: early stopping on the collapse signal (DARTS+, Liang et al. 2019): after the warm-up,
    #: a one-shot search stops at the first epoch whose architecture has at least this share of
    #: parameter-free operations (strategies.collapse) and keeps the best epoch before it;
    #: 0: off
    stop: float = bounded(0.0, ge=0, le=1)
    #: β-DARTS's Beta-Decay regularisation (Ye et al. 2022; strategies.beta_decay): the final
    #: weight λ of the mean log-sum-exp of α added to the architecture loss of the gradient
    #: strategies (darts, darts2, gumbel, sync), ramped linearly over the architecture epochs;
    #: 0: off
    beta_decay: float = bounded(0.0, ge=0)
    #: DARTS-'s auxiliary skip connection (Chu et al. 2021; strategies.aux_skip): β₀ of an
    #: identity path added to every mixed edge of the gradient strategies' supernet, decayed
    #: linearly to 0 over the search epochs; 0: off (the paper: 1)
    aux_skip: float = bounded(0.0, ge=0)


@dataclass(frozen=True, kw_only=True)
class InheritanceConfig:
    """``search.inheritance``: weight inheritance in the in-process multi-trial strategies
    (random, evolution, tpe, grid), as EvoPose2D's children start from their parent's weights
    (Zhang et al. 2021, https://arxiv.org/abs/2011.08446). Each trial after the first starts
    from the last weights of the nearest trial trained so far — the fewest architecture choices
    changed (for evolution, its parent or a sibling); ties go to the better objective, then the
    earlier trial — taking every tensor whose key both have, over their common leading extent
    (:func:`search_space.inherit.inherit_overlapping`), and trains ``epochs`` epochs instead of
    ``search.trial_epochs``. The first trial, and a trial whose nearest is more than
    ``max_changes`` choices away, train from scratch for ``search.trial_epochs``."""

    enabled: bool = False
    #: epochs of a trial that inherited (0: ``search.trial_epochs``, the same as from scratch)
    epochs: int = bounded(0, ge=0)
    #: inherit only from a trial at most this many choices away (0: from the nearest, however far)
    max_changes: int = bounded(0, ge=0)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Architecture search: budget and architecture optimiser here; the objective
    (``goal``), channel pruning (``prune_rate``) and collapse remedies (``collapse``) in their
    sub-sections."""

    epochs: int = bounded(50, ge=1)
    batch_size: int = bounded(32, ge=1)
    warmup_epochs: int = bounded(0, ge=0)  #: epochs with alpha/beta frozen (< epochs)
    arch_lr: float = bounded(3e-4, gt=0)
    arch_weight_decay: float = bounded(1e-3, ge=0)
    #: multi-trial strategies; path samples of spos; rate probes of prune_rate
    num_trials: int = bounded(20, ge=1)
    trial_epochs: int = bounded(1, ge=1)
    #: multi-trial strategies: no trial starts once the trials so far have taken this many
    #: seconds (NNI's ``max_duration``; random search at a one-shot search's cost); 0: no limit
    max_seconds: float = bounded(0.0, ge=0)
    #: trials (trial.py): start from a one-shot search checkpoint's supernet weights
    inherit_from: str = ""
    #: a teacher-guided search: the supernet (one-shot strategies, both the weight and the
    #: architecture step) and the trained candidates (multi-trial trials) learn against the
    #: teacher of the ``distill`` section, with its loss and alpha
    distill: bool = False
    #: SPOS path ranking and benchmarks: training batches each sampled path's BN statistics are
    #: re-estimated on before it is scored (Guo et al. 2020); 0: the supernet's statistics
    bn_recalibration_batches: int = bounded(8, ge=0)
    #: how the gradient strategies' supernet (darts, darts2, gumbel, sync) mixes an edge's
    #: operations: ``darts`` Σ softmax(α)·o(x) (weights summing to 1), or ``pnfs``
    #: n · Σ softmax(α)·o(x) as PoseNFS (each operation at weight 1 while α is uniform, as in
    #: the fixed-mixture networks and the derived network's one operation; strategies.edge_mixing)
    edge_mixing: Literal["darts", "pnfs"] = "darts"
    goal: GoalConfig = field(default_factory=GoalConfig)
    prune_rate: PruneRateConfig = field(default_factory=PruneRateConfig)
    collapse: CollapseConfig = field(default_factory=CollapseConfig)
    inheritance: InheritanceConfig = field(default_factory=InheritanceConfig)

    def __post_init__(self) -> None:
        if self.warmup_epochs >= self.epochs:
            raise UserInputError.at_field("warmup_epochs", f"must be below search.epochs "
                                          f"({self.epochs}): the architecture would never be "
                                          f"trained, got {self.warmup_epochs}")


#: keys of the flat ``search`` section before it had sub-sections → where they live now
RENAMED_KEYS: dict[str, str] = {
    **{f"search.{old}": f"search.goal.{old}" for old in
       ("objective", "cost", "target_gflops", "target_ms", "penalty_weight", "latency_table")},
    **{f"search.prune_{old}": f"search.prune_rate.{old}" for old in
       ("weights", "criterion", "selection", "tolerance", "step", "max_rate", "min_keep")},
    "search.base_arch": "search.prune_rate.base_arch",
    "search.max_param_free": "search.collapse.max_param_free",
    "search.collapse_stop": "search.collapse.stop",
}


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Knowledge distillation from a trained teacher (``train_derived.py --distill_config``).

    The training loss becomes ``(1 - alpha) · GT loss + alpha · loss to the teacher's heatmaps``
    (the same joint weights and visibility as the GT loss).
    """

    #: the teacher's experiment config (its model.name, input size, dataset); "" = no teacher
    config: str = ""
    #: the teacher's weights: a posenas checkpoint (rebuilt from its own record, ``config``
    #: optional) or a released file (read as ``config``'s model.name); default: the teacher
    #: config's test.model_file, then model.pretrained
    weights: str = ""
    #: the teacher is a derived architecture (an arch.json / derived.json)
    arch: str = ""
    alpha: float = bounded(0.5, ge=0, le=1)  #: weight of the teacher term (0: GT only, 1: teacher only)
    #: ``mse``: JointsMSELoss to the teacher's heatmaps; ``kl``: per joint, KL divergence of
    #: the spatial softmax of student and teacher heatmaps at ``temperature`` (× temperature²)
    loss: Literal["mse", "kl"] = "mse"
    temperature: float = bounded(0.1, gt=0)  #: heatmaps are in [0, 1]: 0.1 makes the softmax peak at the joint

    @property
    def enabled(self) -> bool:
        return bool(self.config or self.weights or self.arch)


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """Quantization-aware training (``quant.method pact``; see :mod:`trainers.engine.qat`): PACT
    clipping of every ReLU activation and symmetric fake-quantized convolution weights,
    fine-tuned from a float checkpoint (``model.pretrained``)."""

    method: Literal["none", "pact"] = "none"
    bits: int = 8  #: 8 or 4, activations and weights
    weight: Literal["per_channel", "per_tensor"] = "per_channel"
    #: the clip level α where no calibration sets it (PACT's paper starts at 10)
    act_init: float = bounded(10.0, gt=0)
    #: training batches whose largest activation per layer sets α before QAT (0: act_init)
    calibrate_batches: int = bounded(4, ge=0)
    alpha_decay: float = bounded(2e-4, ge=0)  #: L2 weight decay of the clip levels (PACT's regulariser)

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    def __post_init__(self) -> None:
        if self.bits not in (4, 8):
            raise UserInputError.at_field("bits", f"must be 8 or 4, got {self.bits}")


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole experiment."""

    dataset: DatasetConfig
    name: str = "default"  #: the run's folder under output_dir: no path separators
    output_dir: str = "runs"
    seed: int = bounded(0, ge=0, lt=2**32)  #: NumPy and Lightning take 32-bit seeds
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name or self.name in (".", ".."):
            raise UserInputError.at_field("name", "a run name is one folder name (it becomes "
                                          f"output_dir/name), got {self.name!r}")
        if self.space.cell_config.partial_channels > 1 and self.search.goal.objective != "metric":
            raise UserInputError.at_field(
                "space.cell_config.partial_channels", "partial channels (PC-DARTS) run the "
                "supernet's operations 1/K wide, so its expected cost is not the derived "
                f"network's: use it with search.goal.objective metric, not "
                f"{self.search.goal.objective!r}")
        if (self.space.search_head_type and self.search.goal.objective != "metric"
                and self.search.goal.cost == "latency"):
            raise UserInputError.at_field(
                "space.search_head_type", "the latency table times operations, not whole part "
                "heads: search the head type with search.goal.cost gflops (or objective metric)")
        if self.search.distill and not self.distill.enabled:
            raise UserInputError.at_field("search.distill", "a teacher-guided search needs a teacher: set "
                               "distill.config (or distill.weights / distill.arch)")
