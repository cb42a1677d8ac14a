"""End-to-end: the real commands, as a user runs them, on the synthetic data."""
import json

import numpy as np
import pytest

from tests.conftest import run_module
from trainers.evaluation.mpii import save_preds


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.e2e
def test_synthetic_command_writes_both_layouts(tmp_path):
    r = run_module("-m", "trainers.data.synthetic", "--format", "coco", "--out", str(tmp_path / "c"),
                   "--train", "2", "--val", "2", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "val_detections" in r.stdout
    assert (tmp_path / "c" / "annotations" / "person_keypoints_val2017.json").is_file()
    r = run_module("-m", "trainers.data.synthetic", "--format", "mpii", "--out", str(tmp_path / "m"),
                   "--train", "2", "--val", "2")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m" / "annot" / "gt_valid.mat").is_file()


@pytest.mark.e2e
def test_evaluate_coco_command(coco_root, tmp_path):
    gt_file = coco_root / "annotations" / "person_keypoints_val2017.json"
    gt = json.loads(gt_file.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "keypoints": a["keypoints"]} for a in gt["annotations"] if a["num_keypoints"]]
    res_file = tmp_path / "res.json"
    res_file.write_text(json.dumps(results))
    r = run_module("-m", "trainers.evaluate", "--dataset", "coco", "--gt", str(gt_file),
                   "--results", str(res_file), "--json")
    assert r.returncode == 0, r.stderr
    stats = last_json(r.stdout)
    assert list(stats) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    assert stats["AP"] == pytest.approx(1.0)
    assert "| AP " in r.stdout


@pytest.mark.e2e
def test_evaluate_mpii_command(mpii_root, tmp_path):
    entries = json.loads((mpii_root / "annot" / "valid.json").read_text())
    preds = np.array([e["joints"] for e in entries], dtype=float) + 1.5  # 1-based, ~2 px off
    save_preds(tmp_path / "pred.mat", preds)
    r = run_module("-m", "trainers.evaluate", "--dataset", "mpii", "--gt",
                   str(mpii_root / "annot" / "gt_valid.mat"), "--preds", str(tmp_path / "pred.mat"),
                   "--json")
    assert r.returncode == 0, r.stderr
    m = last_json(r.stdout)
    assert list(m) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"]
    assert m["Mean"] == pytest.approx(100.0)
    assert m["Mean@0.1"] < m["Mean"]


@pytest.mark.e2e
@pytest.mark.parametrize("args, words", [
    (["--dataset", "coco", "--gt", "missing.json", "--results", "r.json"], "not found"),
    (["--dataset", "coco", "--gt", "GT"], "needs --results"),
    (["--dataset", "mpii", "--gt", "TRUNC", "--preds", "p.mat"], "not a readable MATLAB file"),
])
def test_bad_input_exits_with_one_line(tmp_path, coco_root, args, words):
    (tmp_path / "trunc.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 20)
    args = [a.replace("GT", str(coco_root / "annotations" / "person_keypoints_val2017.json"))
            .replace("TRUNC", str(tmp_path / "trunc.mat")) for a in args]
    r = run_module("-m", "trainers.evaluate", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr


@pytest.mark.parametrize("command, words", [
    (["-m", "strategies.search"], ["darts2", "prune_rate", "enas", "--show_arch_value"]),
    (["-m", "strategies.prune"], ["--prune_operations", "--weights"]),
    (["-m", "strategies.collect"], ["EXPERIMENT_ID_OR_DIR", "--out"]),
    (["-m", "search_space.export"], ["--check", "--prune-rates"]),
    (["-m", "visualize.arch"], ["--out"]),
    (["-m", "visualize.history"], ["--pareto", "--baseline"]),
    (["trainers/trial.py"], ["get_next_parameter", "--params"]),
    (["trainers/train_derived.py"], ["--arch", "--visualize", "--debug"]),
])
def test_commands_document_themselves(command, words):
    r = run_module(*command, "--help")
    assert r.returncode == 0, r.stderr[-2000:]
    for word in words:
        assert word in r.stdout, word


def _console_scripts() -> dict[str, str]:
    import configparser

    from tests.conftest import REPO

    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_every_console_script_names_a_main_and_the_commands_have_one():
    import importlib
    import sys
    from pathlib import Path

    scripts = _console_scripts()
    documented = {"strategies.search", "strategies.prune", "strategies.nnictl.trial",
                  "strategies.nnictl.space_json", "strategies.nnictl.collect",
                  "trainers.train_derived", "trainers.test", "trainers.evaluate",
                  "trainers.deploy.export", "trainers.deploy.infer", "trainers.weights.convert",
                  "trainers.data.synthetic.__main__", "trainers.data.download", "visualize.loop",
                  "visualize.param_flop", "visualize.arch", "visualize.history", "visualize.demo"}
    assert {target.split(":")[0] for target in scripts.values()} == documented
    for name, target in scripts.items():
        module, func = target.split(":")
        command = importlib.import_module(module)
        assert callable(getattr(command, func)), name
        # bad input is one line and exit 2: every main() goes through trainers.cli.cli_errors
        assert getattr(command.main, "__wrapped__", None) is not None, f"{name}: main"
    # installed by `pip install -e .` (make setup): one runs like the module it names
    script = Path(sys.executable).parent / "posenas-search"
    r = __import__("subprocess").run([str(script), "--help"], capture_output=True, text=True,
                                     timeout=300)
    assert r.returncode == 0 and "darts2" in r.stdout and "Traceback" not in r.stderr


def test_logging_follows_a_redirect_and_leaves_no_handler_on_a_closed_file():
    # a command run in-process under redirect_stdout/stderr (as the benchmarks run them) logs
    # into the redirect; once it is closed, later records go to the streams of the moment
    import contextlib
    import io
    import logging
    import sys

    from trainers.cli import configure_logging

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            configure_logging()
            logging.getLogger("trainers.x").info("inside")
            logging.getLogger("trainers.x").warning("careful")
        assert out.getvalue() == "inside\n"
        assert err.getvalue() == "WARNING trainers.x: careful\n"
        out.close()
        err.close()
        later_out, later_err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(later_out), contextlib.redirect_stderr(later_err):
            logging.getLogger("trainers.x").info("after")  # no "I/O on closed file" error
        assert later_out.getvalue() == "after\n" and later_err.getvalue() == ""
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
    assert sys.stdout is not out



def test_commands_silence_lightnings_pytree_deprecation_and_no_other_warning():
    # Lightning 2.6's own pytree helper trips torch's LeafSpec deprecation at every fit and
    # evaluation: the commands' logging set-up silences exactly that warning (the genuine one,
    # raised by Lightning's code here), while any other FutureWarning still shows
    import logging
    import warnings

    import torch
    from pytorch_lightning.utilities._pytree import _tree_flatten

    from trainers.cli import configure_logging

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            _tree_flatten(torch.ones(1))
            assert len(seen) == 1
            assert str(seen[0].message).startswith("`isinstance(treespec, LeafSpec)` is deprecated")
            seen.clear()
            configure_logging()
            _tree_flatten(torch.ones(1))
            warnings.warn("something else changes", FutureWarning)
        assert [str(w.message) for w in seen] == ["something else changes"]
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
