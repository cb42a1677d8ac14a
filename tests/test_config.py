from pathlib import Path

import pytest

from trainers.config.experiment import config_from_dict, config_to_dict, load_config
from trainers.config.loader import parse_overrides
from search_space.errors import UserInputError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_base_merge_and_overrides(tmp_path):
    write(tmp_path, "base.yaml", "dataset: {name: coco, root: /a}\ntrain: {epochs: 5, lr: 0.01}\n")
    cfg_path = write(tmp_path, "exp.yaml", "_base_: base.yaml\ntrain: {epochs: 7}\n")
    cfg = load_config(cfg_path, ["dataset.root", "/data/coco", "train.batch_size=3",
                                 "model.input_size", "128x96"])
    assert cfg.dataset.root == "/data/coco"
    assert cfg.train.epochs == 7 and cfg.train.lr == 0.01 and cfg.train.batch_size == 3
    assert cfg.model.input_size == (128, 96)
    assert cfg.model.heatmap_size == (32, 24)


def test_round_trip_through_dict(tmp_path):
    cfg = load_config(write(tmp_path, "a.yaml", "dataset: {name: mpii, root: r}\n"))
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("text, field, words", [
    ("dataset: {name: coco, root: r}\ntrain: {epoch: 3}\n", "train.epoch", "did you mean 'epochs'"),
    ("dataset: {name: coco, root: r}\ntrain: {epochs: three}\n", "train.epochs", "expected an integer"),
    ("dataset: {name: coco}\n", "dataset.root", "missing value"),
    ("dataset: {name: lsp, root: r}\n", "dataset.name", "known: aic, coco, coco_wholebody, crowdpose, custom, mpii, ochuman"),
    ("dataset: {name: coco, root: r}\ntrain: {flip: 1}\n", "train.flip", "unknown key"),
    ("dataset: {name: coco, root: r}\ntrain: {lr: .nan}\n", "train.lr", "a finite number"),
    ("dataset: {name: coco, root: r}\nmodel: {input_size: [256]}\n", "model.input_size", "2 values"),
])
def test_errors_name_file_and_key(tmp_path, text, field, words):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(UserInputError) as info:
        load_config(path)
    assert info.value.field == field
    assert str(path) in str(info.value)
    assert words in str(info.value)


def test_error_in_base_names_the_base_file(tmp_path):
    base = write(tmp_path, "base.yaml", "dataset: {name: coco, root: r}\ntrain: {lr: fast}\n")
    top = write(tmp_path, "top.yaml", "_base_: base.yaml\n")
    with pytest.raises(UserInputError) as info:
        load_config(top)
    assert info.value.source == str(base) and info.value.field == "train.lr"


def test_override_errors(tmp_path):
    path = write(tmp_path, "a.yaml", "dataset: {name: coco, root: r}\n")
    with pytest.raises(UserInputError, match="unknown key") as info:
        load_config(path, ["train.epochz", "3"])
    assert info.value.source == "override"
    with pytest.raises(UserInputError, match="has no value"):
        load_config(path, ["train.epochs"])
    with pytest.raises(UserInputError, match="lower_snake_case"):
        load_config(path, ["TRAIN.EPOCHS", "3"])


def test_parse_overrides_values():
    assert parse_overrides(["a.b", "3", "c.d=[1, 2]", "e.f", "true", "g.h", "/x/y", "i.j", "1e-4"]) == [
        ("a.b", 3), ("c.d", [1, 2]), ("e.f", True), ("g.h", "/x/y"), ("i.j", 1e-4)]


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(UserInputError, match=r"invalid YAML at line \d"):
        load_config(write(tmp_path, "x.yaml", "a: 1\nb: [\n"))
    with pytest.raises(UserInputError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserInputError, match="circular"):
        load_config(write(tmp_path, "loop.yaml", "_base_: loop.yaml\n"))


def test_torchrun_layout_sets_devices_and_nodes(monkeypatch):
    """Under torchrun the processes per node and the node count come from its environment, and
    a --devices that contradicts --nproc_per_node is one clear error, not a hang."""
    from trainers.config.experiment import load_config
    from trainers.engine.fit import trainer_kwargs
    from search_space.errors import UserInputError

    cfg = load_config(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml", [])
    assert trainer_kwargs(cfg)["num_nodes"] == 1 and trainer_kwargs(cfg)["strategy"] == "auto"
    for key, value in dict(RANK="3", GROUP_RANK="1", LOCAL_RANK="1", LOCAL_WORLD_SIZE="2",
                           WORLD_SIZE="6").items():
        monkeypatch.setenv(key, value)
    kw = trainer_kwargs(cfg)
    assert (kw["devices"], kw["num_nodes"], kw["strategy"]) == (2, 3, "ddp")
    bad = load_config(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml", ["train.devices", "4"])
    with pytest.raises(UserInputError, match="nproc_per_node 2"):
        trainer_kwargs(bad)
    monkeypatch.setenv("WORLD_SIZE", "5")
    with pytest.raises(UserInputError, match="not a multiple"):
        trainer_kwargs(cfg)


def test_num_nodes_must_be_positive():
    from trainers.config.experiment import load_config
    from search_space.errors import UserInputError

    with pytest.raises(UserInputError, match="num_nodes"):
        load_config(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml", ["train.num_nodes", "0"])


@pytest.mark.parametrize("old, new, value", [
    ("search.prune_step", "search.prune_rate.step", "0.3"),
    ("search.base_arch", "search.prune_rate.base_arch", "x.json"),
    ("search.objective", "search.goal.objective", "flops_penalty"),
    ("search.max_param_free", "search.collapse.max_param_free", "1"),
    ("search.collapse_stop", "search.collapse.stop", "0.5"),
])
def test_keys_of_the_flat_search_section_say_where_they_moved(tmp_path, old, new, value):
    base = REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"
    with pytest.raises(UserInputError) as err:
        load_config(base, [old, value])
    assert str(err.value) == f"override: {old}: renamed to {new}"
    section, key = old.split(".")
    file = tmp_path / "old.yaml"
    file.write_text(f"_base_: {base}\n{section}:\n  {key}: {value}\n")
    with pytest.raises(UserInputError) as err:
        load_config(file)
    assert str(err.value) == f"{file}: {old}: renamed to {new}"
    goal = ["search.goal.target_gflops", "1.0"] if new == "search.goal.objective" else []
    cfg = load_config(base, [new, value, *goal])  # the new key takes the value
    node = cfg
    for part in new.split("."):
        node = getattr(node, part)
    assert str(node) == value or node == float(value)


def test_search_sub_section_checks_name_their_dotted_key():
    base = REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"
    with pytest.raises(UserInputError, match=r"override: search\.prune_rate\.step: must be in \(0, 1\], got 0"):
        load_config(base, ["search.prune_rate.step", "0"])
    with pytest.raises(UserInputError, match=r"override: search\.goal\.objective: 'flops_constraint' "
                       r"needs search\.goal\.target_gflops above 0"):
        load_config(base, ["search.goal.objective", "flops_constraint"])


def test_yaml_numbers_read_as_yaml_12_and_string_overrides_keep_their_text(tmp_path):
    """``lr: 1e-4`` in a file is the number YAML 1.2 says (PyYAML, YAML 1.1, reads a string); a
    string field takes an override as typed (``name 007``, not ``7``); a string choice takes a
    number from a file (``precision: 32``)."""
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"_base_: {REPO / 'configs' / 'models' / 'hrnet_tiny_synthetic.yaml'}\n"
                        "train:\n  lr: 1e-4\n  weight_decay: 5E-5\n  precision: 32\n")
    cfg = load_config(cfg_file, ["name", "007", "search.arch_lr", "3e-4"])
    assert cfg.train.lr == 1e-4 and cfg.train.weight_decay == 5e-5 and cfg.train.precision == "32"
    assert cfg.name == "007" and cfg.search.arch_lr == 3e-4


@pytest.mark.parametrize("override, message", [
    (["model.sigma", "0"], "override: model.sigma: must be > 0, got 0.0"),
    (["model.input_size", "100x75"], "override: model.input_size: must be > 0 and a multiple of 4 "
                                     "(the heatmap stride), got 100x75"),
    (["train.momentum", "1"], "override: train.momentum: must be in [0, 1), got 1.0"),
    (["seed", "-1"], "override: seed: must be in [0, 4294967296), got -1"),
    (["train.devices", "two"], "override: train.devices: expected 'auto', a device count"),
    (["train.limit_train_batches", "2.5"], "a whole count (> 1), got 2.5"),
    (["name", "a/b"], "override: name: a run name is one folder name"),
])
def test_ranges_declared_in_the_schema_name_the_key_and_the_range(override, message):
    with pytest.raises(UserInputError) as err:
        load_config(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml", override)
    assert message in str(err.value)


def test_every_bounded_default_lies_in_its_range():
    """bounded() refuses a default outside its own range; the schema declares its ranges."""
    import dataclasses
    import typing

    from search_space.bounds import bounded, field_bounds
    from trainers.config.schema import Config

    with pytest.raises(ValueError, match="outside its own range"):
        bounded(0, gt=0)

    def count(cls) -> int:
        hints = typing.get_type_hints(cls)
        return sum(count(hints[f.name]) if dataclasses.is_dataclass(hints[f.name])
                   else field_bounds(f) is not None for f in dataclasses.fields(cls))

    assert count(Config) >= 40
