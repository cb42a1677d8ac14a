"""A search goal's GFLOPs target given as a reference network (strategies.goal_target)."""
from __future__ import annotations

import pytest

from search_space.counting import param_flop_report
from search_space.errors import UserInputError
from strategies.goal_target import resolve_goal_target
from tests.conftest import REPO
from trainers.config.experiment import load_config
from trainers.network.arch_file import load_arch
from trainers.network.build import build_network, spec_from_choices, spec_from_model

CFG = str(REPO / "configs" / "search" / "synthetic_tiny.yaml")
AT_PLAIN = ["search.goal.objective", "flops_constraint", "search.goal.target_reference",
            "plain_head"]


def resolved(*overrides: str):
    return resolve_goal_target(load_config(CFG, list(overrides)), CFG)


def test_the_plain_head_is_the_spaces_backbone_with_plain_heads_at_the_input_size():
    # built the benchmark's way (config overrides), not the resolver's (a config mapping)
    plain = load_config(CFG, ["space.head", "plain", "space.backbone.width_multipliers", "[]"])
    for size in ((128, 96), (64, 48)):
        gflops = param_flop_report(build_network(spec_from_choices(plain, {})), size)["gflops"]
        cfg = resolved(*AT_PLAIN, "model.input_size", f"{size[0]}x{size[1]}")
        assert cfg.search.goal.target_gflops == pytest.approx(gflops, abs=5e-6)
        assert cfg.search.goal.target_reference == "" and cfg.search.goal.target == \
            cfg.search.goal.target_gflops
    # the README's figure for the plain head at 128x96
    assert resolved(*AT_PLAIN).search.goal.target_gflops == pytest.approx(0.04171, abs=5e-6)


def test_the_target_follows_the_input_size_and_the_scale():
    # a convolutional network's multiply-adds grow with the pixels: 4x from 128x96 to 256x192
    small = resolved(*AT_PLAIN, "model.input_size", "128x96").search.goal.target_gflops
    large = resolved(*AT_PLAIN, "model.input_size", "256x192").search.goal.target_gflops
    assert large / small == pytest.approx(4.0, rel=1e-3)
    # a registered model, halved: issue 27's "0.5x hrnet_tiny's GFLOPs"
    tiny = param_flop_report(build_network(spec_from_model("hrnet_tiny", "coco")),
                             (128, 96))["gflops"]
    half = resolved("search.goal.objective", "flops_constraint", "search.goal.target_reference",
                    "hrnet_tiny", "search.goal.target_scale", "0.5").search.goal
    assert half.target_gflops == pytest.approx(tiny / 2, abs=5e-6) and half.target_scale == 1.0


def test_a_config_without_a_reference_is_left_alone():
    cfg = load_config(CFG, ["search.goal.objective", "flops_constraint",
                            "search.goal.target_gflops", "0.05"])
    assert resolve_goal_target(cfg, CFG) is cfg


@pytest.mark.parametrize("overrides, field, words", [
    (["search.goal.target_reference", "plain_head", "search.goal.target_gflops", "0.05"],
     "target_reference", "not both"),
    (["search.goal.target_reference", "plain_head", "search.goal.cost", "latency"],
     "target_reference", "target_ms"),
    (["search.goal.target_scale", "0.5"], "target_scale", "not set"),
    (["search.goal.target_reference", "plain_head", "search.goal.target_scale", "0"],
     "target_scale", ""),
])
def test_contradictory_goals_are_refused_naming_the_field(overrides, field, words):
    with pytest.raises(UserInputError) as err:
        load_config(CFG, overrides)
    assert err.value.field.endswith(field) and words in err.value.message


def test_an_unknown_reference_names_where_it_was_set_and_the_field(tmp_path):
    cfg = load_config(CFG, ["search.goal.target_reference", "hrnet_w99"])
    with pytest.raises(UserInputError) as err:
        resolve_goal_target(cfg, CFG)
    assert err.value.source == "override" and err.value.field == "search.goal.target_reference"
    assert "hrnet_w99" in err.value.message and "hrnet_tiny" in err.value.message
    assert "plain_head" in err.value.message
    written = tmp_path / "goal.yaml"
    written.write_text(f"_base_: [{CFG}]\nsearch:\n  goal:\n    target_reference: hrnet_w99\n")
    with pytest.raises(UserInputError) as err:
        resolve_goal_target(load_config(written), str(written))
    assert err.value.source == str(written) and "hrnet_w99" in err.value.message


def test_an_unresolved_target_is_never_read_as_zero():
    goal = load_config(CFG, AT_PLAIN).search.goal
    assert goal.target_gflops == 0.0
    with pytest.raises(RuntimeError, match="resolve_goal_target"):
        goal.target


@pytest.mark.e2e
def test_search_resolves_the_reference_and_records_the_number(coco_root, tmp_path):
    from tests.test_strategies import search

    out = tmp_path / "ref"
    r = search(coco_root, "darts", out, *AT_PLAIN)
    assert r.returncode == 0, r.stderr[-3000:]
    plain = load_config(CFG, ["space.head", "plain", "space.backbone.width_multipliers", "[]"])
    gflops = param_flop_report(build_network(spec_from_choices(plain, {})), (64, 48))["gflops"]
    goal = load_arch(out / "arch.json").config.search.goal  # what Prune and the trials read
    assert goal.target_gflops == pytest.approx(gflops, abs=5e-6) and not goal.target_reference

    bad = search(coco_root, "darts", tmp_path / "bad", "search.goal.target_reference", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "search.goal.target_reference" in bad.stderr and "unknown model 'nope'" in bad.stderr
    assert not (tmp_path / "bad").exists()
