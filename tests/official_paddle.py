"""PaddleDetection's ``TopDownHRNet`` rewritten in PyTorch for the tests: the module names of
``ppdet/modeling/backbones/hrnet.py`` (``ConvNormLayer`` = ``conv`` + ``norm``, ``la1``,
``tr{t}``, ``st{s}`` with ``add_sublayer`` names) and its forward, so a state dict of it, with
Paddle's BatchNorm names (``_mean``, ``_variance``, no ``num_batches_tracked``) and pickled as
NumPy arrays, is a ``.pdparams`` file as ``paddle.save`` writes it."""
from __future__ import annotations

import pickle

import torch.nn.functional as F
from torch import nn

__all__ = ["PaddleTopDownHRNet", "save_pdparams", "save_paddle_litehrnet"]


class _ConvNorm(nn.Module):
    def __init__(self, i, o, k, stride=1, act=False):
        super().__init__()
        self.conv = nn.Conv2d(i, o, k, stride, (k - 1) // 2, bias=False)
        self.norm = nn.BatchNorm2d(o)
        self.act = act

    def forward(self, x):
        x = self.norm(self.conv(x))
        return F.relu(x) if self.act else x


class _Bottleneck(nn.Module):
    def __init__(self, cin, filters, downsample):
        super().__init__()
        self.conv1 = _ConvNorm(cin, filters, 1, act=True)
        self.conv2 = _ConvNorm(filters, filters, 3, act=True)
        self.conv3 = _ConvNorm(filters, filters * 4, 1)
        self.downsample = downsample
        if downsample:
            self.conv_down = _ConvNorm(cin, filters * 4, 1)

    def forward(self, x):
        res = self.conv_down(x) if self.downsample else x
        return F.relu(res + self.conv3(self.conv2(self.conv1(x))))


class _Basic(nn.Module):
    def __init__(self, cin, filters):
        super().__init__()
        self.conv1 = _ConvNorm(cin, filters, 3, act=True)
        self.conv2 = _ConvNorm(filters, filters, 3)

    def forward(self, x):
        return F.relu(x + self.conv2(self.conv1(x)))


class _Layer1(nn.Module):
    def __init__(self, cin, name):
        super().__init__()
        self.blocks = []
        for i in range(4):
            block = _Bottleneck(cin if i == 0 else 256, 64, i == 0)
            self.add_module(f"block_{name}_{i + 1}", block)
            self.blocks.append(block)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


class _Transition(nn.Module):
    def __init__(self, cin, cout, name):
        super().__init__()
        self.funcs = []
        for i, o in enumerate(cout):
            f = None
            if i < len(cin):
                if cin[i] != o:
                    f = _ConvNorm(cin[i], o, 3, act=True)
            else:
                f = _ConvNorm(cin[-1], o, 3, stride=2, act=True)
            if f is not None:
                self.add_module(f"transition_{name}_layer_{i + 1}", f)
            self.funcs.append(f)

    def forward(self, xs):
        return [xs[i] if f is None else f(xs[i] if i < len(xs) else xs[-1])
                for i, f in enumerate(self.funcs)]


class _Branches(nn.Module):
    def __init__(self, widths, name):
        super().__init__()
        self.lists = []
        for i, w in enumerate(widths):
            self.lists.append([])
            for j in range(4):
                b = _Basic(w, w)
                self.add_module(f"bb_{name}_branch_layer_{i + 1}_{j + 1}", b)
                self.lists[i].append(b)

    def forward(self, xs):
        out = []
        for x, blocks in zip(xs, self.lists):
            for b in blocks:
                x = b(x)
            out.append(x)
        return out


class _Fuse(nn.Module):
    def __init__(self, widths, multi_scale_output, name):
        super().__init__()
        self.actual = len(widths) if multi_scale_output else 1
        self.n = len(widths)
        self.funcs = []
        for i in range(self.actual):
            for j in range(self.n):
                if j > i:
                    f = _ConvNorm(widths[j], widths[i], 1)
                    self.add_module(f"residual_{name}_layer_{i + 1}_{j + 1}", f)
                    self.funcs.append(f)
                elif j < i:
                    pre = widths[j]
                    for k in range(i - j):
                        last = k == i - j - 1
                        f = _ConvNorm(pre, widths[i] if last else widths[j], 3, stride=2,
                                      act=not last)
                        self.add_module(f"residual_{name}_layer_{i + 1}_{j + 1}_{k + 1}", f)
                        self.funcs.append(f)
                        pre = widths[i] if last else widths[j]

    def forward(self, xs):
        outs, idx = [], 0
        for i in range(self.actual):
            res = xs[i]
            for j in range(self.n):
                if j > i:
                    y = F.interpolate(self.funcs[idx](xs[j]), scale_factor=2 ** (j - i))
                    idx += 1
                    res = res + y
                elif j < i:
                    y = xs[j]
                    for _ in range(i - j):
                        y = self.funcs[idx](y)
                        idx += 1
                    res = res + y
            outs.append(F.relu(res))
        return outs


class _HRModule(nn.Module):
    def __init__(self, widths, multi_scale_output, name):
        super().__init__()
        self.branches_func = _Branches(widths, name)
        self.fuse_func = _Fuse(widths, multi_scale_output, name)

    def forward(self, xs):
        return self.fuse_func(self.branches_func(xs))


class _Stage(nn.Module):
    def __init__(self, widths, modules, multi_scale_output, name):
        super().__init__()
        self.funcs = []
        for i in range(modules):
            last = i == modules - 1
            f = _HRModule(widths, multi_scale_output or not last, f"{name}_{i + 1}")
            self.add_module(f"stage_{name}_{i + 1}", f)
            self.funcs.append(f)

    def forward(self, xs):
        for f in self.funcs:
            xs = f(xs)
        return xs


class _PaddleHRNet(nn.Module):
    def __init__(self, width):
        super().__init__()
        c2, c3, c4 = ([width * 2 ** b for b in range(n)] for n in (2, 3, 4))
        self.conv_layer1_1 = _ConvNorm(3, 64, 3, 2, act=True)
        self.conv_layer1_2 = _ConvNorm(64, 64, 3, 2, act=True)
        self.la1 = _Layer1(64, "layer2")
        self.tr1 = _Transition([256], c2, "tr1")
        self.st2 = _Stage(c2, 1, True, "st2")
        self.tr2 = _Transition(c2, c3, "tr2")
        self.st3 = _Stage(c3, 4, True, "st3")
        self.tr3 = _Transition(c3, c4, "tr3")
        self.st4 = _Stage(c4, 3, False, "st4")  # return_idx [0]: one output

    def forward(self, x):
        x = self.la1(self.conv_layer1_2(self.conv_layer1_1(x)))
        xs = self.st2(self.tr1([x]))
        xs = self.st3(self.tr2(xs))
        return self.st4(self.tr3(xs))[0]


class PaddleTopDownHRNet(nn.Module):
    """``TopDownHRNet``: ``backbone`` (HRNet, return_idx [0]) and the 1×1 ``final_conv``."""

    def __init__(self, width: int = 32, joints: int = 17) -> None:
        super().__init__()
        self.backbone = _PaddleHRNet(width)
        self.final_conv = nn.Conv2d(width, joints, 1, 1, 0, bias=True)

    def forward(self, x):
        return self.final_conv(self.backbone(x))


def save_pdparams(module: nn.Module, path, extra: dict | None = None) -> dict:
    """``paddle.save(model.state_dict(), path)`` as Paddle writes it: NumPy arrays under the
    structured names, BN statistics as ``_mean``/``_variance``, the structure table beside."""
    state = {}
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        key = key.replace("running_mean", "_mean").replace("running_var", "_variance")
        state[key] = value.numpy().copy()
    state["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(state)}
    state.update(extra or {})
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=4)
    return state


def save_paddle_litehrnet(official, path) -> dict:
    """``official`` (``tests.official_layouts.OfficialLiteHRNet``, mmpose's module tree) saved as
    PaddleDetection names it: its ``lite_hrnet.py`` builds the same tree with a ConvNormLayer's
    ``norm`` where mmcv's ConvModule has ``bn``, and ``TopDownHRNet.final_conv`` for the head."""
    state = {}
    for key, value in official.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        key = key.replace(".bn.", ".norm.").replace("keypoint_head.final_layer.", "final_conv.")
        key = key.replace("running_mean", "_mean").replace("running_var", "_variance")
        state[key] = value.numpy().copy()
    state["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(state)}
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=4)
    return state
