"""PC-DARTS's partial channel connections (space.cell_config.partial_channels)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from nni.nas.strategy import DARTS

from search_space.errors import UserInputError
from search_space.fabric import Cell, channel_shuffle, partial_channel_edge
from search_space.pose_space import freeze
from search_space.supernet import build
from strategies.prune import inherited_network
from tests.conftest import random_sample, tiny_space
from tests.test_strategies import CFG, search
from trainers.config.experiment import load_config
from trainers.network.arch_file import ArchFile, load_arch


def _pc_space(k: int):
    space = tiny_space()
    return replace(space, cell_config=replace(space.cell_config, partial_channels=k))


def test_channel_shuffle_by_hand():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_partial_channel_edge_by_hand():
    """PC-DARTS eq. 2: the operation on the first C/K channels, the rest passed, shuffled."""
    x = torch.arange(4.0).view(1, 4, 1, 1)
    y = partial_channel_edge(lambda t: t + 100, x, 2)
    # cat([100, 101], [2, 3]) shuffled in 2 groups
    assert y.flatten().tolist() == [100, 2, 101, 3]


def test_pc_supernet_runs_its_operations_on_a_quarter_of_the_channels():
    full, pc = build(tiny_space(), "coco"), build(_pc_space(4), "coco")
    cells = [m for m in pc.modules() if isinstance(m, Cell)]
    assert cells and all(c.partial_edges == {"e0"} for c in cells)
    seen: list[tuple[int, int]] = []  # (cell width, channels the mixed operation received)
    sup = DARTS().mutate_model(pc)
    for cell in (m for m in sup.modules() if isinstance(m, Cell)):
        width = cell.merge.out_channels
        cell.edges["e0"].register_forward_hook(
            lambda mod, inp, out, w=width: seen.append((w, inp[0].shape[1])))
    x = torch.randn(2, 3, 64, 48)
    out = sup(x)
    assert out.shape == full(x).shape
    assert seen and all(received * 4 == width for width, received in seen)
    out.square().mean().backward()
    alphas = [m._arch_alpha for m in sup.modules()
              if str(getattr(m, "label", "")).endswith("edge0_op") and hasattr(m, "_arch_alpha")]
    assert alphas and all(p.grad is not None and p.grad.abs().sum() > 0 for p in alphas)


def test_the_frozen_network_uses_every_channel():
    """K only changes the supernet: a sample freezes to the same network with K = 1 or 4."""
    sample = random_sample(build(tiny_space(), "coco"), 3)
    plain = freeze(tiny_space(), "coco", sample).state_dict()
    pc = freeze(_pc_space(4), "coco", sample).state_dict()
    assert {k: v.shape for k, v in plain.items()} == {k: v.shape for k, v in pc.items()}


def test_bad_partial_channels_name_the_field():
    with pytest.raises(UserInputError, match="partial_channels"):
        replace(tiny_space().cell_config, partial_channels=3)  # factor 4 × 4 = 16 channels
    with pytest.raises(UserInputError, match="partial_channels"):
        replace(tiny_space().cell_config, partial_channels=0)
    with pytest.raises(UserInputError, match=r"partial_channels.*objective metric"):
        load_config(CFG, ["space.cell_config.partial_channels", "4", "search.goal.objective",
                          "flops_constraint", "search.goal.target_gflops", "0.05"])


def test_pc_supernet_weights_are_not_inherited(tmp_path):
    cfg = load_config(CFG, ["space.cell_config.partial_channels", "4"])
    arch = ArchFile(cfg, {}, "derived")
    with pytest.raises(UserInputError, match=r"--weights.*1/4 of the channels"):
        inherited_network(arch, str(tmp_path / "last.ckpt"))


@pytest.mark.e2e
def test_pc_darts_search_then_prune(coco_root, tmp_path):
    from tests.conftest import run_module

    out = tmp_path / "pc"
    r = search(coco_root, "darts", out, "space.cell_config.partial_channels", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    arch = load_arch(out / "arch.json")
    assert arch.config.space.cell_config.partial_channels == 4 and arch.weights["alpha"]
    r = run_module("-m", "strategies.prune", "--arch", str(out / "arch.json"), "--out",
                   str(out / "derived.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_module("-m", "strategies.prune", "--arch", str(out / "arch.json"), "--out",
                   str(tmp_path / "d2.json"), "--weights", str(out / "last.ckpt"))
    assert r.returncode == 2 and "partial_channels" in r.stderr
    assert not (tmp_path / "d2.json").exists()
