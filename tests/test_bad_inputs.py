"""The bad-input probe: what a new user gets wrong, across the commands, run as the user runs them.

Every case ends in one of the README's promises:

- ``Error(file, field)``: exit code 2, one ``error: FILE: FIELD: …`` line on stderr naming the
  file (or ``override`` / ``argument``) and the field, no traceback, and no output folder or file
  left behind that looks like a result;
- ``Warn(text)``: the input is skipped, counted and logged (a WARNING line with ``text``), and the
  command completes;
- ``Ok()``: the input is valid after all (``lr: 1e-4`` in a file) and the command completes.

The commands run in-process (their ``main(argv)``), so a hundred cases take seconds, not the
minutes a hundred interpreters would; the end-to-end tests elsewhere run them as processes.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import shutil
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from tests.conftest import REPO, run_module

CFG = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")
SEARCH_CFG = str(REPO / "configs" / "search" / "synthetic_tiny.yaml")
TINY = ["model.input_size", "64x48", "model.sigma", "1.5", "train.num_workers", "0",
        "train.epochs", "1", "train.limit_train_batches", "2", "train.batch_size", "8",
        "test.flip_test", "false", "test.batch_size", "16"]


@dataclass(frozen=True)
class Error:
    file: str  #: a substring of the file named (or "override" / "argument")
    field: str = ""  #: a substring of the field named


@dataclass(frozen=True)
class Warn:
    text: str  #: a regular expression the WARNING line matches


@dataclass(frozen=True)
class Ok:
    pass


@dataclass
class Case:
    id: str
    module: str
    argv: list[str]
    expect: Error | Warn | Ok
    #: prepares files in the case's folder; gets (folder, env) and returns extra placeholders
    prepare: Callable[[Path, dict], dict] | None = None
    outputs: list[str] = field(default_factory=lambda: ["{out}"])


def run_in_process(module: str, argv: list[str]) -> tuple[int, str, str]:
    """Run ``module.main(argv)`` as the console script does: (exit code, stdout, stderr)."""
    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
            code = 0 if code is None or isinstance(code, dict) else code
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 — a traceback is what the probe looks for
            traceback.print_exc()
            code = 1
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- the environment


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """A synthetic COCO set, a checkpoint of one tiny epoch, its ONNX export and an image."""
    from trainers.data.synthetic import write_coco

    base = tmp_path_factory.mktemp("probe")
    root = base / "coco"
    write_coco(root, num_train=16, num_val=6, seed=5)
    run = base / "run"
    r = run_module("trainers/train_derived.py", "--cfg", CFG, "--out", str(run), "--no-progress",
                   "dataset.root", str(root), *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    onnx = base / "tiny.onnx"
    r = run_module("-m", "trainers.export", "--weights", str(run / "best.ckpt"), "--out", str(onnx))
    assert r.returncode == 0, r.stderr[-3000:]
    image = next((root / "images" / "val2017").glob("*.jpg"))
    text = base / "notes.txt"
    text.write_text("not an image, not a checkpoint\n")
    return {"cfg": CFG, "search_cfg": SEARCH_CFG, "root": str(root), "ckpt": str(run / "best.ckpt"),
            "onnx": str(onnx), "img": str(image), "text": str(text),
            "val_json": str(root / "annotations" / "person_keypoints_val2017.json")}


def _fill(items: list[str], values: dict) -> list[str]:
    return [item.format(**values) for item in items]


# --------------------------------------------------------------------------- preparations


def copy_root(folder: Path, env: dict) -> Path:
    root = folder / "coco"
    shutil.copytree(env["root"], root)
    return root


def edit_annotations(edit: Callable[[dict], None], split: str = "val2017"):
    def prepare(folder: Path, env: dict) -> dict:
        root = copy_root(folder, env)
        path = root / "annotations" / f"person_keypoints_{split}.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
        return {"root": str(root), "ann": str(path)}
    return prepare


def first_person(data: dict) -> dict:
    return next(a for a in data["annotations"] if a["category_id"] == 1 and a["num_keypoints"])


def _keypoint_outside(data):
    first_person(data)["keypoints"][0:3] = [-50, -30, 2]


def _visibility_7(data):
    first_person(data)["keypoints"][2] = 7


def _zero_width(data):
    ann = first_person(data)
    ann["bbox"][2] = 0


def _duplicate_id(data):
    people = [a for a in data["annotations"] if a["category_id"] == 1]
    people[1]["id"] = people[0]["id"]


def _no_people(data):
    data["annotations"] = []


def checkpoint_variant(edit: Callable[[dict], None] | None = None, raw: Callable[[bytes], bytes] | None = None,
                       name: str = "variant.ckpt"):
    def prepare(folder: Path, env: dict) -> dict:
        path = folder / name
        if raw is not None:
            path.write_bytes(raw(Path(env["ckpt"]).read_bytes()))
        else:
            ckpt = torch.load(env["ckpt"], map_location="cpu", weights_only=True)
            edit(ckpt)
            torch.save(ckpt, path)
        return {"bad": str(path)}
    return prepare


def corrupt_tensor_entry(data: bytes) -> bytes:
    """Flip bytes inside the largest tensor record of the checkpoint's zip (the CRC stays wrong
    or right depending on the writer; the values are garbage either way)."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    out = bytearray(data)
    for k in range(start + 16, start + min(info.file_size, 4096), 7):
        out[k] ^= 0x5A
    return bytes(out)


def write_file(name: str, content: str | bytes):
    def prepare(folder: Path, env: dict) -> dict:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return {"bad": str(path)}
    return prepare


def results_file(edit: Callable[[list], None]):
    def prepare(folder: Path, env: dict) -> dict:
        gt = json.loads(Path(env["val_json"]).read_text())
        res = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in gt["annotations"] if a["category_id"] == 1]
        edit(res)
        path = folder / "results.json"
        path.write_text(json.dumps(res))
        return {"bad": str(path)}
    return prepare


def yaml_file(text: str):
    def prepare(folder: Path, env: dict) -> dict:
        path = folder / "cfg.yaml"
        path.write_text(f"_base_: {CFG}\n" + text)
        return {"bad": str(path)}
    return prepare


def make_dir(folder: Path, env: dict) -> dict:
    (folder / "adir").mkdir()
    return {"adir": str(folder / "adir")}


def make_file(folder: Path, env: dict) -> dict:
    (folder / "afile").write_text("x")
    return {"afile": str(folder / "afile")}


def boxes_file(boxes: list):
    def prepare(folder: Path, env: dict) -> dict:
        path = folder / "boxes.json"
        path.write_text(json.dumps(boxes))
        return {"bad": str(path)}
    return prepare


def mpii_preds_nan(folder: Path, env: dict) -> dict:
    from scipy.io import savemat

    from trainers.data.synthetic import write_mpii

    root = folder / "mpii"
    from trainers.evaluation.mpii import load_gt_valid

    write_mpii(root, num_train=2, num_val=3, seed=1)
    persons = load_gt_valid(root / "annot" / "gt_valid.mat").num_persons  # the count is right
    preds = np.full((persons, 16, 2), 10.0)
    preds[0, 3] = np.nan
    savemat(folder / "pred.mat", {"preds": preds})
    return {"mpii": str(root / "annot" / "gt_valid.mat"), "bad": str(folder / "pred.mat")}


def arch_json(content: str):
    return write_file("arch.json", content)


# --------------------------------------------------------------------------- the cases

TRAIN = "trainers.train_derived"
TEST = "trainers.test"
EXPORT = "trainers.deploy.export"
INFER = "trainers.deploy.infer"
DEMO = "visualize.demo"
FLOP = "visualize.param_flop"
SEARCH = "strategies.search"
EVAL = "trainers.evaluate"
SYNTH = "trainers.data.synthetic.__main__"


def train_case(id: str, *over: str, expect=None, prepare=None, argv=()) -> Case:
    key = over[0] if over else ""
    return Case(id, TRAIN, ["--cfg", "{cfg}", "--out", "{out}", "--no-progress", *argv,
                            "dataset.root", "{root}", *TINY, *over],
                expect or Error("override", key), prepare)


def search_case(id: str, strategy: str, *over: str, expect=None) -> Case:
    return Case(id, SEARCH, ["--cfg", "{search_cfg}", "--strategy", strategy, "--out", "{out}",
                             "--no-progress", "dataset.root", "{root}", "train.num_workers", "0",
                             *over], expect or Error("override", over[0]))


def eval_case(id: str, *argv: str, expect, prepare=None, weights="{ckpt}") -> Case:
    """test.py; arguments after ``--`` go after the tiny overrides."""
    cut = argv.index("--") if "--" in argv else len(argv)
    return Case(id, TEST, ["--cfg", "{cfg}", "--weights", weights, "--out", "{out}", *argv[:cut],
                           "dataset.root", "{root}", *TINY, *argv[cut + 1:]], expect, prepare)


def export_case(id: str, *argv: str, expect, prepare=None, weights="{ckpt}") -> Case:
    return Case(id, EXPORT, ["--weights", weights, "--out", "{out}.onnx", *argv], expect, prepare,
                outputs=["{out}.onnx"])


def image_case(module: str, id: str, *argv: str, expect, prepare=None, out="{out}.jpg") -> Case:
    model = ["--model", "{onnx}"] if module == INFER else ["--weights", "{ckpt}"]
    return Case(id, module, [*model, "--image", "{img}", "--out", out, *argv], expect, prepare,
                outputs=[out])


CASES: list[Case] = [
    # ---- config values, as overrides: caught before any work starts
    train_case("precision_bf17", "train.precision", "bf17"),
    train_case("devices_word", "train.devices", "foo"),
    train_case("devices_argument", argv=["--devices", "foo"], expect=Error("argument", "--devices")),
    train_case("devices_zero", "train.devices", "0"),
    train_case("sigma_zero", "model.sigma", "0"),
    train_case("sigma_negative", "model.sigma", "-1"),
    train_case("batch_zero", "train.batch_size", "0"),
    train_case("lr_negative", "train.lr", "-1"),
    train_case("lr_zero", "train.lr", "0"),
    train_case("workers_negative", "train.num_workers", "-1"),
    train_case("input_not_divisible", "model.input_size", "100x75"),
    train_case("input_zero", "model.input_size", "0x0"),
    train_case("input_negative", "model.input_size=-64x48", expect=Error("override", "model.input_size")),
    train_case("epochs_zero", "train.epochs", "0"),
    train_case("epochs_negative", "train.epochs", "-3"),
    train_case("lr_factor_zero", "train.lr_factor", "0"),
    train_case("lr_factor_above_one", "train.lr_factor", "2"),
    train_case("lr_steps_negative", "train.lr_steps", "[-5]"),
    train_case("momentum_negative", "train.momentum", "-0.5"),
    train_case("weight_decay_negative", "train.weight_decay", "-1"),
    train_case("limit_batches_zero", "train.limit_train_batches", "0"),
    train_case("limit_batches_fraction_count", "train.limit_train_batches", "2.5"),
    train_case("num_nodes_zero", "train.num_nodes", "0"),
    train_case("scale_factor_negative", "dataset.scale_factor", "-0.1"),
    train_case("scale_factor_one", "dataset.scale_factor", "1.0"),
    train_case("rotation_negative", "dataset.rotation_factor", "-10"),
    train_case("rotation_prob_two", "dataset.rotation_prob", "2"),
    train_case("half_body_prob_negative", "dataset.prob_half_body", "-1"),
    train_case("half_body_joints_negative", "dataset.num_joints_half_body", "-1"),
    train_case("test_batch_zero", "test.batch_size", "0"),
    train_case("margin_zero_config", "test.margin", "0"),
    train_case("oks_thre_two", "test.oks_thre", "2"),
    train_case("in_vis_thre_negative", "test.in_vis_thre", "-0.5"),
    train_case("image_thre_nan", "test.image_thre", ".nan"),
    train_case("bbox_thre_negative", "test.bbox_thre", "-1"),
    train_case("seed_negative", "seed", "-1"),
    train_case("seed_huge", "seed", "99999999999"),
    train_case("optimizer_unknown", "train.optimizer", "rmsprop"),
    train_case("model_unknown", "model.name", "hrnet_w99"),
    train_case("dataset_unknown", "dataset.name", "coco2030"),
    train_case("unknown_key", "train.epoch", "3"),
    train_case("renamed_key", "search.prune_step", "0.1"),
    train_case("quant_bits", "quant.bits", "3"),
    train_case("distill_alpha", "distill.alpha", "2"),
    train_case("name_slash", "name", "a/../../b", expect=Error("override", "name")),
    train_case("pretrained_missing", "model.pretrained", "/nonexistent/weights.pth",
               expect=Error("/nonexistent/weights.pth", "")),
    train_case("override_without_value", "train.epochs", expect=Error("override", "train.epochs")),
    train_case("root_missing", "dataset.root", "/nonexistent/coco", expect=Error("/nonexistent/coco", "")),
    # the same values from a file: the file is named
    Case("file_sigma_zero", TRAIN, ["--cfg", "{bad}", "--out", "{out}", "dataset.root", "{root}"],
         Error("cfg.yaml", "model.sigma"), yaml_file("model:\n  sigma: 0\n")),
    Case("file_batch_zero", TRAIN, ["--cfg", "{bad}", "--out", "{out}", "dataset.root", "{root}"],
         Error("cfg.yaml", "train.batch_size"), yaml_file("train:\n  batch_size: 0\n")),
    Case("file_precision", TRAIN, ["--cfg", "{bad}", "--out", "{out}", "dataset.root", "{root}"],
         Error("cfg.yaml", "train.precision"), yaml_file("train:\n  precision: fp64\n")),
    Case("file_override_blamed_right", TRAIN, ["--cfg", "{bad}", "--out", "{out}", "dataset.root",
                                               "{root}", "train.epochs", "-1"],
         Error("override", "train.epochs"), yaml_file("train:\n  lr: 0.001\n")),
    Case("file_yaml_error", TRAIN, ["--cfg", "{bad}", "--out", "{out}", "train.epochs", "2"],
         Error("cfg.yaml", ""), yaml_file("train: [\n")),
    Case("file_lr_exponent_reads_as_number", FLOP, ["--cfg", "{bad}", "--input-size", "64x48"],
         Ok(), yaml_file("train:\n  lr: 1e-4\n")),
    Case("override_name_keeps_zeros", FLOP, ["--cfg", "{bad}", "--input-size", "64x48", "name", "007"],
         Ok(), yaml_file("")),
    # ---- output paths
    Case("out_is_a_file", TRAIN, ["--cfg", "{cfg}", "--out", "{afile}", "dataset.root", "{root}", *TINY],
         Error("afile", "--out"), make_file, outputs=[]),
    Case("out_read_only", TRAIN, ["--cfg", "{cfg}", "--out", "/proc/posenas_run", "dataset.root", "{root}",
                                  *TINY], Error("/proc/posenas_run", "--out"), outputs=[]),
    Case("output_dir_is_a_file", TRAIN, ["--cfg", "{cfg}", "dataset.root", "{root}", *TINY, "output_dir",
                                         "{afile}"], Error("afile", "output_dir"), make_file, outputs=[]),
    # ---- data that yields nothing
    train_case("empty_val_set", prepare=edit_annotations(_no_people),
               expect=Error("person_keypoints_val2017.json", "annotations")),
    train_case("empty_train_set", prepare=edit_annotations(_no_people, "train2017"),
               expect=Error("person_keypoints_train2017.json", "annotations")),
    # ---- implausible annotations: counted, logged, and fatal on request
    eval_case("keypoint_outside_image", expect=Warn(r"1 .*outside"),
              prepare=edit_annotations(_keypoint_outside)),
    eval_case("visibility_seven", expect=Warn(r"1 .*visibility"), prepare=edit_annotations(_visibility_7)),
    eval_case("zero_width_box", expect=Warn(r"1 .*box"), prepare=edit_annotations(_zero_width)),
    eval_case("duplicate_annotation_id", expect=Warn(r"1 .*duplicate"),
              prepare=edit_annotations(_duplicate_id)),
    eval_case("keypoint_outside_strict", "--", "dataset.strict_annotations", "true",
              expect=Error("person_keypoints_val2017.json", "annotation id="),
              prepare=edit_annotations(_keypoint_outside)),
    eval_case("visibility_strict", "--", "dataset.strict_annotations", "true",
              expect=Error("person_keypoints_val2017.json", "annotation id="),
              prepare=edit_annotations(_visibility_7)),
    # ---- checkpoints
    eval_case("ckpt_zero_bytes", expect=Error("variant.ckpt", "--weights"), weights="{bad}",
              prepare=checkpoint_variant(raw=lambda b: b"")),
    eval_case("ckpt_truncated", expect=Error("variant.ckpt", "--weights"), weights="{bad}",
              prepare=checkpoint_variant(raw=lambda b: b[: len(b) // 2])),
    eval_case("ckpt_corrupted_tensor", expect=Error("variant.ckpt", "posenas.tensors_sha256"), weights="{bad}",
              prepare=checkpoint_variant(raw=corrupt_tensor_entry)),
    Case("ckpt_text", TEST, ["--cfg", "{cfg}", "--weights", "{text}", "--out", "{out}", "dataset.root",
                             "{root}", *TINY], Error("notes.txt", "--weights")),
    eval_case("ckpt_record_without_config", expect=Error("variant.ckpt", "posenas.config"), weights="{bad}",
              prepare=checkpoint_variant(lambda c: c["posenas"].pop("config"))),
    eval_case("ckpt_record_without_model", expect=Error("variant.ckpt", "posenas.model"), weights="{bad}",
              prepare=checkpoint_variant(lambda c: c["posenas"].pop("model"))),
    eval_case("ckpt_record_not_a_mapping", expect=Error("variant.ckpt", "posenas"), weights="{bad}",
              prepare=checkpoint_variant(lambda c: c.__setitem__("posenas", [1, 2]))),
    eval_case("ckpt_state_dict_missing_tensor", expect=Error("variant.ckpt", ""), weights="{bad}",
              prepare=checkpoint_variant(lambda c: c["state_dict"].pop(next(iter(c["state_dict"]))))),
    Case("ckpt_directory", TEST, ["--cfg", "{cfg}", "--weights", "{adir}", "--out", "{out}", "dataset.root",
                                  "{root}", *TINY], Error("adir", "--weights"), make_dir),
    Case("ckpt_missing", TEST, ["--cfg", "{cfg}", "--weights", "{tmp}/missing.ckpt", "--out", "{out}",
                                "dataset.root", "{root}", *TINY], Error("missing.ckpt", "--weights")),
    eval_case("margin_zero", "--margin", "0", expect=Error("argument", "--margin")),
    eval_case("margin_negative", "--margin", "-1", expect=Error("argument", "--margin")),
    eval_case("margin_nan", "--margin", "nan", expect=Error("argument", "--margin")),
    eval_case("test_devices_zero", "--devices", "0", expect=Error("argument", "--devices")),
    eval_case("test_visualize_negative", "--visualize", "-1", expect=Error("argument", "--visualize")),
    Case("test_out_is_a_file", TEST, ["--cfg", "{cfg}", "--weights", "{ckpt}", "--out", "{afile}",
                                      "dataset.root", "{root}", *TINY], Error("afile", "--out"), make_file,
         outputs=[]),
    # ---- export
    export_case("export_input_not_divisible", "--input-size", "100x75",
                expect=Error("argument", "--input-size")),
    export_case("export_input_zero", "--input-size", "0x0", expect=Error("argument", "--input-size")),
    export_case("export_input_word", "--input-size", "big", expect=Error("argument", "--input-size")),
    export_case("export_atol_negative", "--atol", "-1", expect=Error("argument", "--atol")),
    export_case("export_atol_nan", "--atol", "nan", expect=Error("argument", "--atol")),
    export_case("export_opset_old", "--opset", "5", expect=Error("argument", "--opset")),
    export_case("export_calib_batches_zero", "--int8", "--calib-batches", "0",
                expect=Error("argument", "--calib-batches")),
    export_case("export_int8_of_a_float_network", "--int8", expect=Error("best.ckpt", "--int8")),
    export_case("export_weights_missing", expect=Error("missing.ckpt", "--weights"),
                weights="{tmp}/missing.ckpt"),
    export_case("export_weights_truncated", expect=Error("variant.ckpt", "--weights"),
                prepare=checkpoint_variant(raw=lambda b: b[: len(b) // 3]), weights="{bad}"),
    export_case("export_weights_text", expect=Error("notes.txt", "--weights"), weights="{text}"),
    Case("export_out_is_a_dir", EXPORT, ["--weights", "{ckpt}", "--out", "{adir}"],
         Error("adir", "--out"), make_dir, outputs=[]),
    Case("export_out_read_only", EXPORT, ["--weights", "{ckpt}", "--out", "/proc/posenas.onnx"],
         Error("/proc/posenas.onnx", "--out"), outputs=[]),
    # ---- infer (onnxruntime) and the demo (PyTorch)
    Case("infer_model_missing", INFER, ["--model", "{tmp}/missing.onnx", "--image", "{img}", "--out",
                                        "{out}.jpg"], Error("missing.onnx", "--model"), outputs=["{out}.jpg"]),
    Case("infer_model_text", INFER, ["--model", "{text}", "--image", "{img}", "--out", "{out}.jpg"],
         Error("notes.txt", "--model"), outputs=["{out}.jpg"]),
    Case("infer_image_missing", INFER, ["--model", "{onnx}", "--image", "{tmp}/none.jpg", "--out",
                                        "{out}.jpg"], Error("none.jpg", "--image"), outputs=["{out}.jpg"]),
    Case("infer_image_text", INFER, ["--model", "{onnx}", "--image", "{text}", "--out", "{out}.jpg"],
         Error("notes.txt", "--image"), outputs=["{out}.jpg"]),
    image_case(INFER, "infer_out_extension", expect=Error("out.xyz", "--out"), out="{tmp}/out.xyz"),
    Case("infer_out_dir", INFER, ["--model", "{onnx}", "--image", "{img}", "--out", "{adir}"],
         Error("adir", "--out"), make_dir, outputs=[]),
    image_case(INFER, "infer_kpt_thr_nan", "--kpt-thr", "nan", expect=Error("argument", "--kpt-thr")),
    image_case(INFER, "infer_score_thr_nan", "--score-thr", "nan", expect=Error("argument", "--score-thr")),
    image_case(INFER, "infer_threads_negative", "--threads", "-1", expect=Error("argument", "--threads")),
    image_case(INFER, "infer_box_negative_width", "--boxes", "{bad}", expect=Warn(r"1 .*box"),
               prepare=boxes_file([{"image_id": 1, "bbox": [5, 5, -5, 20], "score": 0.9},
                                   {"image_id": 1, "bbox": [5, 5, 30, 40], "score": 0.9}])),
    image_case(INFER, "infer_image_id_matches_nothing", "--boxes", "{bad}", "--image-id", "999",
               expect=Error("boxes.json", "--image-id"),
               prepare=boxes_file([{"image_id": 1, "bbox": [5, 5, 30, 40], "score": 0.9}])),
    image_case(INFER, "infer_boxes_not_json", "--boxes", "{bad}", expect=Error("boxes.json", ""),
               prepare=write_file("boxes.json", "{not json")),
    image_case(INFER, "infer_boxes_bad_bbox", "--boxes", "{bad}", expect=Error("boxes.json", "[0]"),
               prepare=boxes_file([{"image_id": 1, "bbox": [5, 5], "score": 0.9}])),
    image_case(DEMO, "demo_kpt_thr_nan", "--kpt-thr", "nan", expect=Error("argument", "--kpt-thr")),
    image_case(DEMO, "demo_out_extension", expect=Error("out.xyz", "--out"), out="{tmp}/out.xyz"),
    Case("demo_weights_missing", DEMO, ["--weights", "{tmp}/missing.ckpt", "--image", "{img}", "--out",
                                        "{out}.jpg"], Error("missing.ckpt", "--weights"), outputs=["{out}.jpg"]),
    Case("demo_weights_truncated", DEMO, ["--weights", "{bad}", "--image", "{img}", "--out", "{out}.jpg"],
         Error("variant.ckpt", "--weights"), checkpoint_variant(raw=lambda b: b[:1000]),
         outputs=["{out}.jpg"]),
    Case("demo_image_missing", DEMO, ["--weights", "{ckpt}", "--image", "{tmp}/none.jpg", "--out",
                                      "{out}.jpg"], Error("none.jpg", "--image"), outputs=["{out}.jpg"]),
    image_case(DEMO, "demo_box_negative_width", "--boxes", "{bad}", expect=Warn(r"1 .*box"),
               prepare=boxes_file([{"image_id": 1, "bbox": [5, 5, -5, 20], "score": 0.9},
                                   {"image_id": 1, "bbox": [5, 5, 30, 40], "score": 0.9}])),
    # ---- param_flop
    Case("flop_input_zero", FLOP, ["--model", "hrnet_tiny", "--input-size", "0x0"],
         Error("argument", "--input-size"), outputs=[]),
    Case("flop_input_not_divisible", FLOP, ["--model", "hrnet_tiny", "--input-size", "100x75"],
         Error("argument", "--input-size"), outputs=[]),
    Case("flop_input_word", FLOP, ["--model", "hrnet_tiny", "--input-size", "large"],
         Error("argument", "--input-size"), outputs=[]),
    Case("flop_model_unknown", FLOP, ["--model", "hrnet_w99"], Error("argument", "--model"), outputs=[]),
    Case("flop_arch_missing", FLOP, ["--arch", "{tmp}/none.json"], Error("none.json", ""), outputs=[]),
    Case("flop_arch_not_json", FLOP, ["--arch", "{bad}"], Error("arch.json", ""), arch_json("{oops"),
         outputs=[]),
    Case("flop_arch_not_object", FLOP, ["--arch", "{bad}"], Error("arch.json", ""), arch_json("[1, 2]"),
         outputs=[]),
    # ---- evaluate
    Case("eval_category_two", EVAL, ["--dataset", "coco", "--gt", "{val_json}", "--results", "{bad}"],
         Error("results.json", "category_id"),
         results_file(lambda res: [r.__setitem__("category_id", 2) for r in res]), outputs=[]),
    Case("eval_results_not_json", EVAL, ["--dataset", "coco", "--gt", "{val_json}", "--results", "{bad}"],
         Error("results.json", ""), write_file("results.json", "[{"), outputs=[]),
    Case("eval_results_short_keypoints", EVAL, ["--dataset", "coco", "--gt", "{val_json}", "--results",
                                                "{bad}"], Error("results.json", "[0]"),
         results_file(lambda res: res[0].__setitem__("keypoints", res[0]["keypoints"][:30])), outputs=[]),
    Case("eval_results_unknown_image", EVAL, ["--dataset", "coco", "--gt", "{val_json}", "--results",
                                              "{bad}"], Error("results.json", "image_id"),
         results_file(lambda res: res[0].__setitem__("image_id", 424242)), outputs=[]),
    Case("eval_results_empty", EVAL, ["--dataset", "coco", "--gt", "{val_json}", "--results", "{bad}"],
         Error("results.json", ""), results_file(lambda res: res.clear()), outputs=[]),
    Case("eval_gt_missing", EVAL, ["--dataset", "coco", "--gt", "{tmp}/gt.json", "--results", "{bad}"],
         Error("gt.json", ""), results_file(lambda res: None), outputs=[]),
    Case("eval_mpii_nan", EVAL, ["--dataset", "mpii", "--gt", "{mpii}", "--preds", "{bad}"],
         Error("pred.mat", "preds: 1 non-finite"), mpii_preds_nan, outputs=[]),
    # ---- synthetic data
    Case("synthetic_seed_negative", SYNTH, ["--format", "coco", "--out", "{out}", "--seed", "-5"],
         Error("argument", "--seed")),
    Case("synthetic_train_negative", SYNTH, ["--format", "coco", "--out", "{out}", "--train", "-1"],
         Error("argument", "--train")),
    Case("synthetic_mpii_into_coco", SYNTH, ["--format", "mpii", "--out", "{root}", "--train", "2",
                                             "--val", "2"], Error("coco", "--out"),
         lambda folder, env: {"root": str(copy_root(folder, env))}, outputs=[]),
    Case("synthetic_out_is_a_file", SYNTH, ["--format", "coco", "--out", "{afile}"],
         Error("afile", "--out"), make_file, outputs=[]),
    # ---- search
    search_case("spos_no_trials", "spos", "search.num_trials", "0"),
    search_case("random_no_trials", "random", "search.num_trials", "0"),
    search_case("search_epochs_zero", "darts", "search.epochs", "0"),
    search_case("search_batch_zero", "darts", "search.batch_size", "0"),
    search_case("search_arch_lr_negative", "darts", "search.arch_lr", "-1"),
    search_case("search_warmup_negative", "darts", "search.warmup_epochs", "-1"),
    search_case("search_warmup_all", "darts", "search.epochs", "2", "search.warmup_epochs", "2",
                expect=Error("override", "search.warmup_epochs")),
    search_case("search_trial_epochs_zero", "random", "search.trial_epochs", "0"),
    search_case("search_penalty_without_target", "darts", "search.goal.objective", "flops_penalty",
                expect=Error("override", "search.goal.target_gflops")),
    search_case("search_target_reference_unknown", "darts", "search.goal.target_reference",
                "hrnet_w99"),
    search_case("search_target_reference_and_gflops", "darts", "search.goal.target_reference",
                "plain_head", "search.goal.target_gflops", "0.05"),
    search_case("search_tolerance_two", "prune_rate", "search.prune_rate.tolerance", "2"),
    search_case("search_parts_ungrouped", "darts", "space.parts_num", "4"),
    search_case("search_depth_zero", "darts", "space.cell_config.depth", "0"),
    Case("space_json_without_space", "strategies.nnictl.space_json", ["--cfg", "{cfg}", "--out", "{out}.json"],
         Error("hrnet_tiny_synthetic.yaml", "space"), outputs=["{out}.json"]),
    Case("search_without_space", SEARCH, ["--cfg", "{cfg}", "--strategy", "darts", "--out", "{out}",
                                          "dataset.root", "{root}"], Error("hrnet_tiny_synthetic.yaml", "space")),
    # ---- architecture files
    train_case("arch_missing", argv=["--arch", "{tmp}/none.json"], expect=Error("none.json", "")),
    train_case("arch_not_json", argv=["--arch", "{bad}"], prepare=arch_json("{"), expect=Error("arch.json", "")),
    train_case("arch_empty_object", argv=["--arch", "{bad}"], prepare=arch_json("{}"),
               expect=Error("arch.json", "")),
    Case("arch_graph_not_json", "visualize.arch", ["{bad}", "--out", "{out}.svg"], Error("arch.json", ""),
         arch_json("nope"), outputs=["{out}.svg"]),
    Case("prune_arch_not_json", "strategies.prune", ["--arch", "{bad}", "--out", "{out}.json"],
         Error("arch.json", ""), arch_json("[]"), outputs=["{out}.json"]),
    Case("arch_graph_out_extension", "visualize.arch", ["{bad}", "--out", "{out}.gif"],
         Error("out.gif", "--out"), arch_json("{}"), outputs=["{out}.gif"]),
    Case("prune_out_is_a_dir", "strategies.prune", ["--arch", "{bad}", "--out", "{adir}"],
         Error("adir", "--out"), lambda folder, env: {**arch_json("{}")(folder, env), **make_dir(folder, env)},
         outputs=[]),
    Case("collect_top_zero", "strategies.nnictl.collect", ["{tmp}", "--top", "0", "--out", "{out}.json"],
         Error("argument", "--top"), outputs=["{out}.json"]),
    Case("convert_output_read_only", "trainers.weights.convert", ["{ckpt}", "/proc/x.ckpt", "--model",
                                                                 "hrnet_tiny"], Error("/proc/x.ckpt", "output"),
         outputs=[]),
    Case("synthetic_val_zero", SYNTH, ["--format", "coco", "--out", "{out}", "--val", "0"],
         Error("argument", "--val")),
    Case("history_missing", "visualize.history", ["{tmp}/none.jsonl", "--out", "{out}.png"],
         Error("none.jsonl", ""), outputs=["{out}.png"]),
    Case("history_not_jsonl", "visualize.history", ["{bad}", "--out", "{out}.png"], Error("h.jsonl", ""),
         write_file("h.jsonl", "not json\n"), outputs=["{out}.png"]),
    Case("collect_missing", "strategies.nnictl.collect", ["{tmp}/no_experiment", "--out", "{out}.json"],
         Error("no_experiment", ""), outputs=["{out}.json"]),
    Case("trial_params_not_json", "strategies.nnictl.trial", ["--cfg", "{search_cfg}", "--params", "{{",
                                                             "--out", "{out}", "dataset.root", "{root}"],
         Error("", "--params")),
    Case("convert_missing", "trainers.weights.convert", ["{tmp}/none.pth", "{out}.ckpt", "--model",
                                                         "hrnet_tiny"], Error("none.pth", ""),
         outputs=["{out}.ckpt"]),
    Case("convert_text", "trainers.weights.convert", ["{text}", "{out}.ckpt", "--model", "hrnet_tiny"],
         Error("notes.txt", ""), outputs=["{out}.ckpt"]),
]


def _check(case: Case, code: int, stderr: str, values: dict) -> list[str]:
    """What is wrong with this run, in words (empty: the promise held)."""
    problems = []
    if "Traceback" in stderr:
        problems.append("traceback")
    expect = case.expect
    if isinstance(expect, Error):
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        if code != 2:
            problems.append(f"exit {code}, not 2")
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines")
        elif expect.file not in errors[0] or expect.field not in errors[0]:
            problems.append(f"error line does not name {expect.file!r} / {expect.field!r}: {errors[0]}")
        for out in case.outputs:  # nothing that looks like a result
            path = Path(out.format(**values))
            if path.exists() and not (path.is_dir() and not any(path.iterdir())):
                problems.append(f"left {path}")
    elif isinstance(expect, Warn):
        warnings = [line for line in stderr.splitlines() if line.startswith("WARNING")]
        if code != 0:
            problems.append(f"exit {code}, not 0")
        if not any(re.search(expect.text, line) for line in warnings):
            problems.append(f"no WARNING matching {expect.text!r}")
    else:
        if code != 0:
            problems.append(f"exit {code}")
    return problems


@pytest.mark.e2e
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, env: dict, tmp_path: Path) -> None:
    values = dict(env, tmp=str(tmp_path), out=str(tmp_path / "out"))
    if case.prepare is not None:
        values.update(case.prepare(tmp_path, env))
    argv = _fill(case.argv, values)
    code, stdout, stderr = run_in_process(case.module, argv)
    problems = _check(case, code, stderr, values)
    assert not problems, f"{case.id}: {'; '.join(problems)}\nstderr: {stderr[-2500:]}\nstdout: {stdout[-800:]}"


def test_the_probe_is_big_enough() -> None:
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)
