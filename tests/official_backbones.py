"""Reference networks with the **key layouts of released ResNet / MobileNet-V2 files**, written
for the tests from the structure of the original code: torchvision's ``resnet.py`` and
``mobilenetv2.py`` (names, nesting, forward; their ImageNet files), the official SimpleBaseline
``pose_resnet.py`` (deep-high-resolution-net.pytorch / human-pose-estimation.pytorch: the ResNet
names at top level, ``deconv_layers``, ``final_layer``), mmpose's TopDown SimpleBaseline
(``backbone.`` + ``keypoint_head.`` in 0.x, ``head.`` in 1.x) and tonylins/pytorch-mobilenet-v2
(``features.{i}.conv.{j}`` with a flat conv/BN/ReLU6 list; PoseNFS's MobileNet-V2 backbone).

Their parameter counts are checked against the figures torchvision publishes (``resnet50``:
25,557,032; ``mobilenet_v2``: 3,504,872), which makes them independent of posenas's code.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["TorchvisionResNet", "OfficialPoseResNet", "TorchvisionMobileNetV2",
           "TonylinsMobileNetV2", "PNFSResNetBackbone", "PNFSMobileNetV2Backbone", "calibrated",
           "RESNET_SPEC", "TORCHVISION_PARAMS"]

#: the parameter counts torchvision's documentation gives for its ImageNet models
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                      "resnet101": 44_549_160, "resnet152": 60_192_808,
                      "mobilenet_v2": 3_504_872}


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


RESNET_SPEC = {18: (_Basic, [2, 2, 2, 2]), 34: (_Basic, [3, 4, 6, 3]),
               50: (_Bottleneck, [3, 4, 6, 3]), 101: (_Bottleneck, [3, 4, 23, 3]),
               152: (_Bottleneck, [3, 8, 36, 3])}


class _ResNetBody(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        block, layers = RESNET_SPEC[depth]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            setattr(self, f"layer{s}", self._make_layer(block, planes, n, 1 if s == 1 else 2))

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stages(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = []
        for s in range(1, 5):
            x = getattr(self, f"layer{s}")(x)
            out.append(x)
        return out


class TorchvisionResNet(_ResNetBody):
    """torchvision's ``resnet{depth}``: the body, ``avgpool`` and the 1000-way ``fc``."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * RESNET_SPEC[depth][0].expansion, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.stages(x)[-1]), 1))


class OfficialPoseResNet(_ResNetBody):
    """SimpleBaseline's ``PoseResNet``: the ResNet names at top level, three 4×4 stride-2
    deconvolutions (256, no bias) + BN + ReLU, a 1×1 ``final_layer``."""

    def __init__(self, depth: int, joints: int = 17) -> None:
        super().__init__(depth)
        layers = []
        for _ in range(3):
            layers += [nn.ConvTranspose2d(self.inplanes, 256, 4, 2, 1, 0, bias=False),
                       nn.BatchNorm2d(256), nn.ReLU(inplace=True)]
            self.inplanes = 256
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(256, joints, 1, 1, 0)

    def forward(self, x):
        return self.final_layer(self.deconv_layers(self.stages(x)[-1]))


_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]


def _taps(features, x, taps):
    """The outputs of ``features[i]`` for i in ``taps`` (PoseNFS's pyramid of MobileNet-V2)."""
    out = []
    for i, f in enumerate(features[:taps[-1] + 1]):
        x = f(x)
        if i in taps:
            out.append(x)
    return out


def _cna(i, o, k, s=1, groups=1):
    """torchvision's ``Conv2dNormActivation`` (a Sequential: conv, BN, ReLU6)."""
    return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(o), nn.ReLU6(inplace=True))


class _TvInvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hidden = int(round(inp * t))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if t == 1 else [_cna(inp, hidden, 1)]
        layers += [_cna(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchvisionMobileNetV2(nn.Module):
    """torchvision's ``mobilenet_v2``: ``features`` 0 … 18 and ``classifier`` (Dropout, Linear)."""

    def __init__(self) -> None:
        super().__init__()
        features = [_cna(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in _SETTINGS:
            for k in range(n):
                features.append(_TvInvertedResidual(inp, c, s if k == 0 else 1, t))
                inp = c
        features.append(_cna(inp, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def taps(self, x, taps=(3, 6, 13, 16)):
        return _taps(self.features, x, taps)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class _TonyInvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hidden = round(inp * t)
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if t != 1:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TonylinsMobileNetV2(nn.Module):
    """tonylins/pytorch-mobilenet-v2's ``MobileNetV2`` (``mobilenet_v2.pth.tar``), whose
    ``features`` PoseNFS's ``mobilenet_v2_feature.py`` keeps (as a ModuleList, without
    ``features[18]`` and the classifier) and taps after blocks 3, 6, 13 and 16."""

    def __init__(self, classifier: bool = True) -> None:
        super().__init__()
        features = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU6(inplace=True))]
        inp = 32
        for t, c, n, s in _SETTINGS:
            for k in range(n):
                features.append(_TonyInvertedResidual(inp, c, s if k == 0 else 1, t))
                inp = c
        if classifier:
            features.append(nn.Sequential(nn.Conv2d(inp, 1280, 1, 1, 0, bias=False),
                                          nn.BatchNorm2d(1280), nn.ReLU6(inplace=True)))
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
        self.features = nn.ModuleList(features)

    def forward(self, x):
        for f in self.features:
            x = f(x)
        return self.classifier(x.mean((2, 3)))

    def taps(self, x, taps=(3, 6, 13, 16)):
        return _taps(self.features, x, taps)


class PNFSResNetBackbone(_ResNetBody):
    """PoseNFS's ``resnet_feature.py``: the torchvision names, ``forward`` → the four stages."""

    def forward(self, x):
        return self.stages(x)


class PNFSMobileNetV2Backbone(TonylinsMobileNetV2):
    """PoseNFS's ``mobilenet_v2_feature.py``: tonylins' ``features`` 0 … 17 (a ModuleList; block
    17 built and never run), ``forward`` → the outputs of blocks 3, 6, 13, 16."""

    def __init__(self) -> None:
        super().__init__(classifier=False)

    def forward(self, x):
        return self.taps(x)


def calibrated(module: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Random weights at a scale that keeps a deep network's activations finite (N(0, 1/fan_in)
    convolutions, BN affine around 1), BN statistics measured on ``x`` (so every BN normalises
    something real), returned in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                fan_in = m.weight[0].numel() if not isinstance(m, nn.ConvTranspose2d) \
                    else m.weight.shape[0] * m.weight[0, 0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * fan_in ** -0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                if m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.momentum = None  # cumulative average over the calibration pass
        module.train()
        module(x)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    return module.eval()
