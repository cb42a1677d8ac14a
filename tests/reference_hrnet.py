"""An independent, plain reference of the pose HRNet (Sun et al., CVPR 2019), written apart from
``search_space`` from the official code's structure: nn.Upsample fuses, modules of branches and
fuse rows, the stage-1 Bottlenecks. Tests compare posenas's networks with it (same weights, same
output); ``benchmarks/train_step.py`` times both side by side.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReferenceHRNet"]


def _cbr(i, o, k=3, s=1, relu=True):
    layers = [nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class _Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = _cbr(c, c), _cbr(c, c, relu=False)

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + x)


class _Bottle(nn.Module):
    def __init__(self, i, c):
        super().__init__()
        self.body = nn.Sequential(_cbr(i, c, 1), _cbr(c, c), _cbr(c, 4 * c, 1, relu=False))
        self.down = _cbr(i, 4 * c, 1, relu=False) if i != 4 * c else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.down(x))


class _Module(nn.Module):
    def __init__(self, ch, multi):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[_Basic(c) for _ in range(4)]) for c in ch)
        outs = range(len(ch)) if multi else range(1)
        self.fuse = nn.ModuleList()
        for i in outs:
            row = nn.ModuleList()
            for j, c in enumerate(ch):
                if j > i:
                    row.append(nn.Sequential(_cbr(c, ch[i], 1, relu=False),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(nn.Sequential(*[_cbr(c, c, s=2) for _ in range(i - j - 1)],
                                             _cbr(c, ch[i], s=2, relu=False)))
            self.fuse.append(row)

    def forward(self, xs):
        xs = [b(x) for b, x in zip(self.branches, xs)]
        return [torch.relu(sum(f(x) for f, x in zip(row, xs))) for row in self.fuse]


class ReferenceHRNet(nn.Module):
    """HRNet-W``w`` for pose (17 joints by default): stem, 4 Bottlenecks, stages of 1/4/3
    modules of 4 BasicBlocks per branch, widths w·[1, 2, 4, 8], 1×1 head on the 1/4 branch."""

    def __init__(self, w=32, k=17):
        super().__init__()
        c = [w, 2 * w, 4 * w, 8 * w]
        self.stem = nn.Sequential(_cbr(3, 64, s=2), _cbr(64, 64, s=2))
        self.layer1 = nn.Sequential(_Bottle(64, 64), *[_Bottle(256, 64) for _ in range(3)])
        self.t1 = nn.ModuleList([_cbr(256, c[0]), _cbr(256, c[1], s=2)])
        self.s2 = nn.Sequential(_Module(c[:2], True))
        self.t2 = _cbr(c[1], c[2], s=2)
        self.s3 = nn.Sequential(*[_Module(c[:3], True) for _ in range(4)])
        self.t3 = _cbr(c[2], c[3], s=2)
        self.s4 = nn.Sequential(*[_Module(c, i < 2) for i in range(3)])
        self.final = nn.Conv2d(c[0], k, 1)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        xs = self.s2([t(x) for t in self.t1])
        xs = self.s3(xs + [self.t2(xs[-1])])
        xs = self.s4(xs + [self.t3(xs[-1])])
        return self.final(xs[0])
