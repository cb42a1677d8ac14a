"""Weight inheritance in the multi-trial strategies (``search.inheritance``, EvoPose2D): the
tensor copy (:func:`search_space.inherit.inherit_overlapping`), the choice of the donor
(:func:`strategies.multitrial.nearest_trained`) and an evolution search whose trials start from
their donor's weights."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from search_space.inherit import inherit_overlapping
from strategies.multitrial import choice_changes, nearest_trained
from tests.test_strategies import CFG, search
from trainers.weights.checkpoint import read_state_dict


def test_overlapping_tensors_are_copied_whole_or_over_their_leading_channels():
    torch.manual_seed(0)
    donor = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))
    child = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.Linear(6, 4))
    initial = {k: v.clone() for k, v in child.state_dict().items()}
    donor[1].running_mean.uniform_()
    counts = inherit_overlapping(child, donor.state_dict())
    state, d = child.state_dict(), donor.state_dict()
    # 0.weight (6,3,3,3) from (8,3,3,3) and 0.bias, BN's 4 per-channel tensors: leading 6 of 8
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert torch.equal(state[key], d[key][:6]), key
    assert torch.equal(state["1.num_batches_tracked"], d["1.num_batches_tracked"])  # same shape
    # 2.weight: a Linear (4, 6) against a 4-d conv weight (4, 8, 1, 1): other dims, left initial;
    # 2.bias (4,) in both: copied whole
    assert torch.equal(state["2.weight"], initial["2.weight"])
    assert torch.equal(state["2.bias"], d["2.bias"])
    assert counts == {"whole": 2, "partial": 6, "fresh": 1}


def test_a_wider_child_keeps_its_initial_values_past_the_donors_channels():
    donor, child = nn.Conv2d(2, 3, 1), nn.Conv2d(2, 5, 1)
    initial = child.weight.detach().clone()
    assert inherit_overlapping(child, donor.state_dict()) == {"whole": 0, "partial": 2, "fresh": 0}
    assert torch.equal(child.weight[:3], donor.weight) and torch.equal(child.weight[3:], initial[3:])


def test_the_donor_is_the_nearest_trained_trial_then_the_better_then_the_earlier():
    a = {"x": 0, "y": 0, "z": 0}
    trained = [{"trial": 0, "choices": {"x": 1, "y": 1, "z": 0}, "objective": 0.9},  # 2 changes
               {"trial": 1, "choices": {"x": 1, "y": 0, "z": 0}, "objective": 0.1},  # 1 change
               {"trial": 2, "choices": {"x": 0, "y": 0, "z": 1}, "objective": 0.3},  # 1 change
               {"trial": 3, "choices": {"x": 0, "y": 2, "z": 0}, "objective": 0.3}]  # 1 change
    assert choice_changes(a, trained[0]["choices"]) == 2
    assert choice_changes(a, {"x": 0, "y": 0}) == 1  # a label one lacks counts
    # 1 change each for trials 1-3: the better objective (0.3) wins, then the earlier trial
    assert nearest_trained(a, trained)["trial"] == 2
    assert nearest_trained(a, trained[:1])["trial"] == 0  # however far: max_changes 0
    assert nearest_trained(a, trained[:1], max_changes=1) is None
    assert nearest_trained(a, []) is None


def test_a_trial_with_a_donor_starts_from_its_weights_and_trains_the_inheriting_epochs(
        coco_root, tmp_path):
    """The donor: the same architecture built under another seed, saved as a state dict. At a
    learning rate of 1e-9 training moves no weight measurably (Adam's step is about the rate),
    so the trial ends with the donor's weights (BN statistics excepted: training moves them),
    not with the initial ones its seed gives — which differ from the donor's."""
    import pytorch_lightning as pl

    from search_space.supernet import build
    from strategies.trials import run_trial
    from tests.conftest import random_sample
    from trainers.config.experiment import load_config
    from trainers.network.build import build_network, spec_from_choices

    cfg = load_config(CFG, ["dataset.root", str(coco_root), "model.input_size", "64x48",
                            "model.sigma", "1.5", "train.num_workers", "0", "train.lr", "1e-9",
                            "test.flip_test", "false", "search.batch_size", "8",
                            "search.trial_epochs", "1", "search.inheritance.enabled", "true",
                            "search.inheritance.epochs", "2"])
    choices = random_sample(build(cfg.space, "coco"), 3)
    spec = spec_from_choices(cfg, choices)
    pl.seed_everything(123, verbose=False)
    torch.save(build_network(spec).state_dict(), tmp_path / "donor.pth")
    pl.seed_everything(cfg.seed, verbose=False)
    initial = build_network(spec).state_dict()
    scored = run_trial(cfg, choices, tmp_path / "trial", donor=tmp_path / "donor.pth")
    assert scored["epochs"] == 2 and scored["inherited"]["fresh"] == 0
    assert scored["inherited"] == {"whole": len(initial), "partial": 0, "fresh": 0}
    donor = torch.load(tmp_path / "donor.pth", weights_only=True)
    final = read_state_dict(tmp_path / "trial" / "last.ckpt", "trial")
    learned = [k for k, v in final.items() if v.is_floating_point()
               and not k.endswith(("running_mean", "running_var"))]
    assert learned
    for k in learned:
        assert torch.allclose(final[k], donor[k], rtol=0, atol=1e-6), k
    # the seed's own start is elsewhere: every randomly initialised tensor (the convolutions';
    # BN starts at 1 and 0 under any seed) differs from the donor's
    random_init = [k for k in learned if initial[k].dim() > 1]
    assert random_init and all(not torch.allclose(initial[k], donor[k], rtol=0, atol=1e-3)
                               for k in random_init)
    metrics = json.loads((tmp_path / "trial" / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2


@pytest.mark.e2e
def test_evolution_trials_inherit_from_the_nearest_trial_trained_before(coco_root, tmp_path):
    out = tmp_path / "evolution"
    r = search(coco_root, "evolution", out, "search.num_trials", "3",
               "search.inheritance.enabled", "true", "search.inheritance.epochs", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    trials = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [t["status"] for t in trials] == ["succeeded"] * 3
    assert "inherited_from" not in trials[0] and trials[0]["epochs"] == 1
    for t in trials[1:]:
        changes = [sum(t["choices"][k] != e["choices"][k] for k in t["choices"])
                   for e in trials[:t["trial"]]]
        assert t["inherited_from"] < t["trial"] and t["changes"] == min(changes)
        assert changes[t["inherited_from"]] == min(changes)
        assert t["epochs"] == 2
        state = read_state_dict(out / "trials" / f"{t['trial']:03d}" / "last.ckpt", "trial")
        assert sum(t["inherited"].values()) == len(state) and t["inherited"]["whole"] > 0
        assert f"from trial {t['inherited_from'] + 1}'s weights" in r.stderr + r.stdout


@pytest.mark.e2e
def test_a_one_shot_search_says_it_ignores_weight_inheritance(coco_root, tmp_path):
    r = search(coco_root, "none", tmp_path / "none", "search.inheritance.enabled", "true")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "search.inheritance: weight inheritance applies to the multi-trial strategies; " \
           "none ignores it" in r.stderr
