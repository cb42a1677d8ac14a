"""Small networks with the **key layouts of released checkpoints**, written for the tests from
the structure of the official code (leoxiaobin/deep-high-resolution-net.pytorch ``pose_hrnet.py``
and HRNet/HRNet-Image-Classification ``cls_hrnet.py``): attribute names, module nesting and the
forward pass as released, sized by arguments so a test can match ``hrnet_tiny`` or HRNet-W32.

A test fills one with random weights and BN statistics, saves its ``state_dict`` the way the
official tools do, converts it with :mod:`trainers.weights.formats`, and compares outputs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["OfficialHRNet", "OfficialLiteHRNet", "OfficialPNFS", "PNFS_PARTS", "randomize",
           "squash_to_half"]


def _conv3(i: int, o: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(i, o, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3(inplanes, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv3(planes, planes), nn.BatchNorm2d(planes)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + x)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv3(planes, planes), nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


def _upsample_path(w_from: int, w_to: int, levels: int) -> nn.Sequential:
    """A fuse path to a higher resolution, as both official codes build it: 1×1 conv, BN, nearest
    upsampling by 2^levels (keys ``.0`` and ``.1``)."""
    return nn.Sequential(nn.Conv2d(w_from, w_to, 1, bias=False), nn.BatchNorm2d(w_to),
                         nn.Upsample(scale_factor=2 ** levels, mode="nearest"))


class HighResolutionModule(nn.Module):
    def __init__(self, widths: Sequence[int], blocks: int, multi_scale_output: bool) -> None:
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w) for _ in range(blocks)]) for w in widths)
        rows = []
        for i in range(n if multi_scale_output else 1):
            row = []
            for j in range(n):
                if j > i:
                    row.append(_upsample_path(widths[j], widths[i], j - i))
                elif j == i:
                    row.append(None)
                else:
                    chain = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            chain.append(nn.Sequential(_conv3(widths[j], widths[i], 2),
                                                       nn.BatchNorm2d(widths[i])))
                        else:
                            chain.append(nn.Sequential(_conv3(widths[j], widths[j], 2),
                                                       nn.BatchNorm2d(widths[j]), nn.ReLU()))
                    row.append(nn.Sequential(*chain))
            rows.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(rows)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(torch.relu(y))
        return out


def _transition(prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    layers = []
    for i, w in enumerate(cur):
        if i < len(prev):
            layers.append(None if prev[i] == w else nn.Sequential(
                _conv3(prev[i], w), nn.BatchNorm2d(w), nn.ReLU()))
        else:
            chain = []
            for j in range(i + 1 - len(prev)):
                o = w if j == i - len(prev) else prev[-1]
                chain.append(nn.Sequential(_conv3(prev[-1], o, 2), nn.BatchNorm2d(o), nn.ReLU()))
            layers.append(nn.Sequential(*chain))
    return nn.ModuleList(layers)


def _build_stem(net: nn.Module, stem: int, stage1: tuple[int, int]) -> list[int]:
    """``pose_hrnet.py``'s stem (conv1 bn1 conv2 bn2) and ``layer1`` onto ``net``; returns the
    branch widths it ends with."""
    net.conv1, net.bn1 = _conv3(3, stem, 2), nn.BatchNorm2d(stem)
    net.conv2, net.bn2 = _conv3(stem, stem, 2), nn.BatchNorm2d(stem)
    blocks1, planes = stage1
    net.layer1 = nn.Sequential(*[Bottleneck(stem if b == 0 else planes * 4, planes)
                                 for b in range(blocks1)])
    return [planes * 4]


def _run_stem(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    x = torch.relu(net.bn1(net.conv1(x)))
    x = torch.relu(net.bn2(net.conv2(x)))
    return [net.layer1(x)]


class OfficialHRNet(nn.Module):
    """``pose_hrnet.py``'s PoseHighResolutionNet (``imagenet=False``: ``final_layer`` makes the
    heatmaps from the highest resolution) or ``cls_hrnet.py``'s HighResolutionNet
    (``imagenet=True``: every stage multi-scale, then ``incre_modules``, ``downsamp_modules``,
    ``final_layer`` and ``classifier``).

    ``stages``: for stages 2..4, (modules, blocks per branch, branch widths).
    """

    def __init__(self, stem: int = 64, stage1: tuple[int, int] = (4, 64),
                 stages: Sequence[tuple[int, int, Sequence[int]]] = (
                     (1, 4, (32, 64)), (4, 4, (32, 64, 128)), (3, 4, (32, 64, 128, 256))),
                 joints: int = 17, imagenet: bool = False, classes: int = 10) -> None:
        super().__init__()
        self.imagenet = imagenet
        prev = _build_stem(self, stem, stage1)
        for s, (modules, blocks, widths) in enumerate(stages, start=2):
            setattr(self, f"transition{s - 1}", _transition(prev, widths))
            last_stage = s == len(stages) + 1
            setattr(self, f"stage{s}", nn.Sequential(*[
                HighResolutionModule(widths, blocks, imagenet or not (last_stage and m == modules - 1))
                for m in range(modules)]))
            prev = list(widths)
        if not imagenet:
            self.final_layer = nn.Conv2d(prev[0], joints, 1)
            return
        head = [32, 64, 128, 256]
        self.incre_modules = nn.ModuleList(nn.Sequential(Bottleneck(w, h)) for w, h in zip(prev, head))
        self.downsamp_modules = nn.ModuleList(
            nn.Sequential(nn.Conv2d(head[i] * 4, head[i + 1] * 4, 3, 2, 1), nn.BatchNorm2d(head[i + 1] * 4),
                          nn.ReLU()) for i in range(3))
        self.final_layer = nn.Sequential(nn.Conv2d(head[3] * 4, 2048, 1), nn.BatchNorm2d(2048), nn.ReLU())
        self.classifier = nn.Linear(2048, classes)

    def features(self, x):
        """The stage-4 outputs (a list of branches; only the first for the pose network)."""
        ys = _run_stem(self, x)
        s = 2
        while hasattr(self, f"stage{s}"):
            trans = getattr(self, f"transition{s - 1}")
            xs = [ys[i] if t is None else t(ys[min(i, len(ys) - 1)]) for i, t in enumerate(trans)]
            ys = getattr(self, f"stage{s}")(xs)
            s += 1
        return ys

    def forward(self, x):
        ys = self.features(x)
        if not self.imagenet:
            return self.final_layer(ys[0])
        y = self.incre_modules[0](ys[0])
        for i in range(1, 4):
            y = self.incre_modules[i](ys[i]) + self.downsamp_modules[i - 1](y)
        y = self.final_layer(y)
        return self.classifier(y.mean((2, 3)))


def randomize(module: nn.Module, seed: int = 0, scale: float = 0.2) -> nn.Module:
    """Random weights (N(0, scale²)) and BN statistics, so that every tensor matters to the
    output; returns the module in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
    return module.eval()


# ----------------------------------------------------------------------------------------------
# Lite-HRNet as HRNet/Lite-HRNet and mmpose release it (mmcv ConvModule: ``conv`` + ``bn``)


class ConvModule(nn.Module):
    """mmcv's ConvModule as far as the key names go: ``conv`` (biased when there is no norm),
    optional ``bn``, then an activation."""

    def __init__(self, i, o, k=1, s=1, groups=1, norm=True, act: str | None = "relu"):
        super().__init__()
        self.conv = nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(o)
        self.act = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), None: nn.Identity()}[act]

    def forward(self, x):
        x = self.conv(x)
        if hasattr(self, "bn"):
            x = self.bn(x)
        return self.act(x)


class DepthwiseSeparableConvModule(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.depthwise_conv = ConvModule(i, i, 3, groups=i, act=None)
        self.pointwise_conv = ConvModule(i, o, 1)

    def forward(self, x):
        return self.pointwise_conv(self.depthwise_conv(x))


def _shuffle(x, groups=2):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class _LiteStem(nn.Module):
    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.conv1 = ConvModule(3, c, 3, 2)
        self.branch1 = nn.Sequential(ConvModule(half, half, 3, 2, groups=half, act=None),
                                     ConvModule(half, c - half))
        self.expand_conv = ConvModule(half, c)
        self.depthwise_conv = ConvModule(c, c, 3, 2, groups=c, act=None)
        self.linear_conv = ConvModule(c, half)

    def forward(self, x):
        x1, x2 = self.conv1(x).chunk(2, dim=1)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return _shuffle(torch.cat((self.branch1(x1), x2), dim=1))


class _SpatialWeighting(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvModule(c, c // 4, norm=False)
        self.conv2 = ConvModule(c // 4, c, norm=False, act="sigmoid")

    def forward(self, x):
        return x * self.conv2(self.conv1(x.mean((2, 3), keepdim=True)))


class _CrossResolutionWeighting(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        self.channels = list(channels)
        total = sum(channels)
        self.conv1 = ConvModule(total, total // ratio)
        self.conv2 = ConvModule(total // ratio, total, act="sigmoid")

    def forward(self, xs):
        size = xs[-1].shape[-2:]
        out = torch.cat([nn.functional.adaptive_avg_pool2d(s, size) for s in xs[:-1]] + [xs[-1]], 1)
        weights = torch.split(self.conv2(self.conv1(out)), self.channels, dim=1)
        return [s * nn.functional.interpolate(a, size=s.shape[-2:], mode="nearest")
                for s, a in zip(xs, weights)]


class _ConditionalChannelWeighting(nn.Module):
    def __init__(self, widths, ratio):
        super().__init__()
        half = [w // 2 for w in widths]
        self.cross_resolution_weighting = _CrossResolutionWeighting(half, ratio)
        self.depthwise_convs = nn.ModuleList(ConvModule(c, c, 3, groups=c, act=None) for c in half)
        self.spatial_weighting = nn.ModuleList(_SpatialWeighting(c) for c in half)

    def forward(self, xs):
        parts = [s.chunk(2, dim=1) for s in xs]
        x2 = self.cross_resolution_weighting([p[1] for p in parts])
        x2 = [sw(dw(s)) for s, dw, sw in zip(x2, self.depthwise_convs, self.spatial_weighting)]
        return [_shuffle(torch.cat([p[0], s], 1)) for p, s in zip(parts, x2)]


class _ShuffleUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.branch2 = nn.Sequential(ConvModule(half, half), ConvModule(half, half, 3, groups=half, act=None),
                                     ConvModule(half, half))

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return _shuffle(torch.cat((x1, self.branch2(x2)), dim=1))


def _dw_pw_seq(i, o, relu):
    layers = [nn.Conv2d(i, i, 3, 2, 1, groups=i, bias=False), nn.BatchNorm2d(i),
              nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class _LiteHRModule(nn.Module):
    def __init__(self, widths, blocks, ratio, naive):
        super().__init__()
        self.naive = naive
        if naive:
            self.layers = nn.ModuleList(nn.Sequential(*[_ShuffleUnit(w) for _ in range(blocks)]) for w in widths)
        else:
            self.layers = nn.Sequential(*[_ConditionalChannelWeighting(widths, ratio) for _ in range(blocks)])
        rows = []
        for i in range(len(widths)):
            row = []
            for j in range(len(widths)):
                if j > i:
                    row.append(_upsample_path(widths[j], widths[i], j - i))
                elif j == i:
                    row.append(None)
                else:
                    row.append(nn.Sequential(*[_dw_pw_seq(widths[j], widths[i] if k == i - j - 1 else widths[j],
                                                          relu=k != i - j - 1) for k in range(i - j)]))
            rows.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(rows)

    def forward(self, xs):
        out = [b(x) for b, x in zip(self.layers, xs)] if self.naive else self.layers(xs)
        fused = []
        for i, row in enumerate(self.fuse_layers):
            # as released: y aliases out[0] for i == 0 and is added into in place
            y = out[0] if i == 0 else row[0](out[0])
            for j in range(len(out)):
                if i == j:
                    y += out[j]
                else:
                    y += row[j](out[j])
            fused.append(torch.relu(y))
        return fused


def _lite_transition(prev, cur):
    layers = []
    for i, w in enumerate(cur):
        if i < len(prev):
            layers.append(None if prev[i] == w else nn.Sequential(
                nn.Conv2d(prev[i], prev[i], 3, 1, 1, groups=prev[i], bias=False), nn.BatchNorm2d(prev[i]),
                nn.Conv2d(prev[i], w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()))
        else:
            layers.append(nn.Sequential(*[_dw_pw_seq(prev[-1], w if j == i - len(prev) else prev[-1], relu=True)
                                          for j in range(i + 1 - len(prev))]))
    return nn.ModuleList(layers)


class _IterativeHead(nn.Module):
    def __init__(self, widths):
        super().__init__()
        rev = list(widths)[::-1]
        self.projects = nn.ModuleList(DepthwiseSeparableConvModule(rev[i], rev[i + 1] if i + 1 < len(rev) else rev[i])
                                      for i in range(len(rev)))

    def forward(self, xs):
        ys, last = [], None
        for s, project in zip(xs[::-1], self.projects):
            if last is not None:
                s = s + nn.functional.interpolate(last, size=s.shape[-2:], mode="bilinear", align_corners=True)
            last = project(s)
            ys.append(last)
        return ys[::-1]


class _LiteBackbone(nn.Module):
    def __init__(self, modules, widths, blocks, ratio, naive, stem):
        super().__init__()
        self.stem = _LiteStem(stem)
        prev = [stem]
        for i, (m, w) in enumerate(zip(modules, widths)):
            setattr(self, f"transition{i}", _lite_transition(prev, w))
            setattr(self, f"stage{i}", nn.Sequential(*[_LiteHRModule(w, blocks, ratio, naive) for _ in range(m)]))
            prev = list(w)
        self.num_stages = len(modules)
        self.head_layer = _IterativeHead(prev)

    def forward(self, x):
        ys = [self.stem(x)]
        for i in range(self.num_stages):
            trans = getattr(self, f"transition{i}")
            ys = [ys[k] if t is None else t(ys[min(k, len(ys) - 1)]) for k, t in enumerate(trans)]
            ys = getattr(self, f"stage{i}")(ys)
        return self.head_layer(ys)


class OfficialLiteHRNet(nn.Module):
    """The TopDown model of HRNet/Lite-HRNet and mmpose: ``backbone`` (LiteHRNet) and the heatmap
    head's ``final_layer`` under ``keypoint_head`` (mmpose 0.x, the official repo) or ``head``
    (mmpose 1.x, ``head_name="head"``)."""

    def __init__(self, modules=(2, 4, 2), widths=((40, 80), (40, 80, 160), (40, 80, 160, 320)),
                 blocks=2, ratio=8, naive=False, stem=32, joints=17, head_name="keypoint_head"):
        super().__init__()
        self.backbone = _LiteBackbone(modules, widths, blocks, ratio, naive, stem)
        head = nn.Module()
        head.final_layer = nn.Conv2d(widths[-1][0], joints, 1)
        setattr(self, head_name, head)
        self.head_name = head_name

    def forward(self, x):
        return getattr(self, self.head_name).final_layer(self.backbone(x)[0])


# ----------------------------------------------------------------------------------------------
# PoseNFS (yangsenius/PoseNFS): HRNet stem~stage3 + transition3, then a cell fabric per body part
# (Body_Part_Representation → Sub_Arch → Cell), written from the structure of its
# part_representation.py / subnetwork.py / meta_arch.py / cells_fabrics.py / meta_cell.py /
# operators.py / body_parts.py / pose_hrnet.py.

#: PoseNFS's body parts in its order, with its joint lists by joint name (COCO, MPII)
PNFS_PARTS: dict[int, list[tuple[str, dict[str, tuple[str, ...]]]]] = {
    1: [("whole_body", {"coco": ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                 "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                                 "left_wrist", "right_wrist", "left_hip", "right_hip",
                                 "left_knee", "right_knee", "left_ankle", "right_ankle"),
                        # PoseNFS's own MPII order ("similar to coco")
                        "mpii": ("head_top", "upper_neck", "thorax", "l_shoulder", "r_shoulder",
                                 "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
                                 "l_knee", "r_knee", "l_ankle", "r_ankle", "pelvis")})],
    3: [("upper_limb_part", {"coco": ("left_shoulder", "right_shoulder", "left_elbow",
                                      "right_elbow", "left_wrist", "right_wrist"),
                             "mpii": ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
                                      "l_wrist", "r_wrist")}),
        ("head_part", {"coco": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
                       "mpii": ("head_top", "upper_neck", "thorax")}),
        ("lower_limb_part", {"coco": ("left_hip", "right_hip", "left_knee", "right_knee",
                                      "left_ankle", "right_ankle"),
                             "mpii": ("l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
                                      "r_ankle", "pelvis")})],
    5: [("left_arm_part", {"coco": ("left_elbow", "left_wrist"), "mpii": ("l_elbow", "l_wrist")}),
        ("right_arm_part", {"coco": ("right_elbow", "right_wrist"),
                            "mpii": ("r_elbow", "r_wrist")}),
        ("legs_part", {"coco": ("left_knee", "right_knee", "left_ankle", "right_ankle"),
                       "mpii": ("l_knee", "r_knee", "l_ankle", "r_ankle")}),
        ("head_shoulder_part", {"coco": ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                         "left_shoulder", "right_shoulder"),
                                "mpii": ("head_top", "upper_neck", "thorax", "l_shoulder",
                                         "r_shoulder")}),
        ("hips_part", {"coco": ("left_hip", "right_hip"), "mpii": ("pelvis", "l_hip", "r_hip")})],
}


class _Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class _Identity(nn.Module):
    def forward(self, x):
        return x


class _Sep(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        p = k // 2
        self.operation = nn.Sequential(
            nn.Conv2d(c, c, k, 1, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False), nn.ReLU(),
            nn.Conv2d(c, c, k, 1, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False), nn.ReLU())

    def forward(self, x):
        return self.operation(x)


class _Atr(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.operation = nn.Sequential(
            nn.Conv2d(c, c, k, 1, k - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False), nn.ReLU())

    def forward(self, x):
        return self.operation(x)


def _pnfs_op(name: str, c: int) -> nn.Module:
    if name == "Zero":
        return _Zero()
    if name == "skip_connect":
        return _Identity()
    if name.startswith("Sep_Conv"):
        return _Sep(c, int(name[-1]))
    if name.startswith("Atr_Conv"):
        return _Atr(c, int(name[-1]))
    pool = (nn.MaxPool2d(3, 1, 1) if name == "max_pool_3x3"
            else nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False))


class _MixedOp(nn.Module):
    """Ops_Combination: len(ops) · Σ softmax(α)_o · op_o(x)."""

    def __init__(self, c, names):
        super().__init__()
        self.ops = nn.ModuleList(_pnfs_op(n, c) for n in names)

    def forward(self, x, alphas):
        a = torch.softmax(alphas, dim=-1)
        return len(self.ops) * sum(w * op(x) for w, op in zip(a, self.ops))


class _Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.operation = nn.Sequential(nn.Conv2d(c // 2, c, 3, 2, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.operation(x)


class _Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_1x1 = nn.Conv2d(2 * c, c, 1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return nn.functional.interpolate(self.bn(self.conv_1x1(x)), scale_factor=2,
                                         mode="bilinear", align_corners=True)


class _PNFSCell(nn.Module):
    def __init__(self, c, inputs, hidden, names):
        super().__init__()
        self.propress_list = nn.ModuleList(
            _Identity() if ci == c else _Up(c) if ci == 2 * c else _Down(c) for ci in inputs)
        self.hidden = hidden
        self.channel_keep = nn.Conv2d(c * hidden, c, 1)
        self.cell_arch = nn.ModuleList(_MixedOp(c, names) for i in range(hidden)
                                       for _ in range(1 + i))

    def forward(self, par, above, below, alphas, betas):
        xs = [m(t) for m, t in zip(self.propress_list, (par, above, below))]
        b = torch.softmax(betas, dim=-1)
        states = [torch.relu(3 * b[0] * xs[0] + 3 * b[1] * xs[1] + 3 * b[2] * xs[2])]
        start = 0
        for _ in range(self.hidden):
            h = sum(self.cell_arch[start + j](s, alphas[start + j]) for j, s in enumerate(states))
            start += len(states)
            states.append(h)
        out = torch.cat(states[-self.hidden:], 1) if self.hidden > 1 else states[-1]
        return self.channel_keep(out)


class _PNFSPart(nn.Module):
    """Sub_Arch: the cells of layers cut..depth-1 (built with the channel logic of the whole
    fabric), α (edges × ops) shared by its cells, β per cell, a vector head; plus Meta_Arch's
    stem, which PoseNFS builds in every part and never runs."""

    def __init__(self, joints, names, depth, cut, factor, hidden, vector_dim, scales=4):
        super().__init__()
        ch = [factor * s for s in (4, 8, 16, 32)[:scales]]
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.Conv2d(64, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.Conv2d(64, ch[0], 1, bias=False))
        counts = [min(j + 2, scales, depth - j) for j in range(depth)]
        self.depth, self.cut, self.counts, self.vector_dim = depth, cut, counts, vector_dim
        for j in range(cut, depth):
            for i in range(counts[j]):
                prev = counts[j - 1]
                par = ch[i] if i < prev else ch[i - 1]
                above = ch[i - 1] if i != 0 else par
                if i < prev - 1:
                    below = ch[i + 1]
                else:
                    below = ch[i + 1] if i < j and i != counts[j] - 1 else par
                setattr(self, f"cell_{j}_{i}", _PNFSCell(ch[i], (par, above, below), hidden, names))
        edges = sum(1 + i for i in range(hidden))
        self.alphas = nn.Parameter(torch.zeros(edges, len(names)))
        self.betas = nn.Parameter(torch.zeros(sum(counts[cut:]), 3))
        self.final_layer = nn.Sequential(nn.ReLU(), nn.Conv2d(ch[0], joints * vector_dim, 1))

    def forward(self, features):
        prev = list(features)
        cell_id = 0
        for j in range(self.cut, self.depth):
            n_prev = len(prev)
            outs = []
            for i in range(self.counts[j]):
                par = prev[i] if i < n_prev else prev[i - 1]
                above = prev[i - 1] if i != 0 else par
                below = prev[i + 1] if i < n_prev - 1 else par
                outs.append(getattr(self, f"cell_{j}_{i}")(par, above, below, self.alphas,
                                                            self.betas[cell_id]))
                cell_id += 1
            prev = outs
        y = self.final_layer(prev[0])
        n, _, h, w = y.shape
        v = y.permute(0, 2, 3, 1).reshape(n, h, w, -1, self.vector_dim)
        norm = torch.norm(v, dim=-1)
        return (norm ** 2 / (norm ** 2 + 1)).permute(0, 3, 1, 2)


class _PNFSBackbone(nn.Module):
    """PoseNFS's pose_hrnet.py: stem, layer1, stages 2-3, transition3; returns 4 levels."""

    def __init__(self, stem, stage1, stages):
        super().__init__()
        prev = _build_stem(self, stem, stage1)
        for s, (modules, blocks, widths) in enumerate(stages[:2], start=2):
            setattr(self, f"transition{s - 1}", _transition(prev, widths))
            setattr(self, f"stage{s}", nn.Sequential(*[HighResolutionModule(widths, blocks, True)
                                                       for _ in range(modules)]))
            prev = list(widths)
        self.transition3 = _transition(prev, stages[2][2])

    def forward(self, x):
        ys = _run_stem(self, x)
        for s in (2, 3, 4):
            trans = getattr(self, f"transition{s - 1}")
            xs = [ys[i] if t is None else t(ys[-1] if i >= len(ys) else ys[i])
                  for i, t in enumerate(trans)]
            if s == 4:
                return xs
            ys = getattr(self, f"stage{s}")(xs)


class OfficialPNFS(nn.Module):
    """PoseNFS's Body_Part_Representation on its HRNet backbone (or another given), for ``dataset``'s joints
    (output channels in PoseNFS's joint order: COCO's, or its own for MPII)."""

    def __init__(self, dataset: str = "coco", parts_num: int = 5, names: Sequence[str] = (
            "Zero", "skip_connect", "Atr_Conv_3x3", "Sep_Conv_3x3"), depth: int = 6,
                 cut: int = 3, factor: int = 16, hidden: int = 1, vector_dim: int = 8,
                 stem: int = 64, stage1: tuple[int, int] = (4, 64),
                 stages: Sequence[tuple[int, int, Sequence[int]]] = (
                     (1, 4, (32, 64)), (4, 4, (32, 64, 128)), (3, 4, (32, 64, 128, 256))),
                 backbone: nn.Module | None = None,
                 backbone_widths: Sequence[int] | None = None) -> None:
        super().__init__()
        from search_space.joints import keypoint_spec  # only to index the output channels

        # PoseNFS's other backbones (ResNet, MobileNet-V2): a module returning four levels
        self.backbone = backbone if backbone is not None else _PNFSBackbone(stem, stage1, stages)
        self.vector_dim = vector_dim
        order = (PNFS_PARTS[1][0][1]["mpii"] if dataset == "mpii"
                 else keypoint_spec("coco").names)
        self.num_joints = len(order)
        self.part_joints = []
        for part, joints in PNFS_PARTS[parts_num]:
            js = joints[dataset]
            setattr(self, part, _PNFSPart(len(js), names, depth, cut, factor, hidden, vector_dim))
            self.part_joints.append((part, [order.index(j) for j in js]))
        widths = backbone_widths if backbone is not None else stages[2][2]
        cell0 = factor * 4
        self.reduce = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(w, factor * s, 1) for w, s in zip(widths, (4, 8, 16, 32)))
            if widths[0] != cell0 else None for _ in self.part_joints)

    def forward(self, x):
        features = self.backbone(x)
        out = None
        for p, (part, joints) in enumerate(self.part_joints):
            f = features if self.reduce[p] is None else [r(t) for r, t in zip(self.reduce[p], features)]
            y = getattr(self, part)(f)
            if out is None:
                out = y.new_zeros(y.shape[0], self.num_joints, *y.shape[2:])
            out[:, joints] += y
        return out


def squash_to_half(ref: "OfficialPNFS", x: torch.Tensor) -> None:
    """Scale each part's vector head so that its mean |v|² on ``x`` is 1: squashed heatmaps
    around 0.5, away from 0 and 1, so a weight read into the wrong place shows."""
    heads = [getattr(ref, part).final_layer[1] for part, _ in ref.part_joints]
    seen = []
    hooks = [h.register_forward_hook(lambda m, i, o: seen.append((m, o))) for h in heads]
    with torch.no_grad():
        ref(x)
        for h in hooks:
            h.remove()
        for head, y in seen:
            v = y.permute(0, 2, 3, 1).reshape(-1, ref.vector_dim)
            s = float((v ** 2).sum(-1).mean()) ** -0.5
            head.weight.mul_(s)
            head.bias.mul_(s)
