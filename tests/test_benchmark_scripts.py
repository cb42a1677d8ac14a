"""The benchmark scripts: the GPU check runs its smoke form on CPU and prints its one table,
the training step in it computing the official network's function; the scaling benchmark's
line fit on hand-worked points; the int8 latency benchmark's report; the compression
benchmark's per-seed verdicts on hand-worked differences."""
from __future__ import annotations

import json
import subprocess

import pytest

from benchmarks.compress import paired_difference, verdict
from benchmarks.scaling import fit_line
from tests.conftest import REPO


def test_fit_line_hand_worked():
    # y = 2 + 3x exactly: intercept 2, slope 3, R² 1
    assert fit_line([1, 2, 3], [5, 8, 11]) == pytest.approx({"a": 2.0, "b": 3.0, "r2": 1.0})
    # (0, 0), (1, 1), (2, 1): slope 0.5, intercept 1/6; residuals 1/6, 1/3, 1/6 → SSE 1/6,
    # SST 2/3, R² 0.75
    fit = fit_line([0, 1, 2], [0, 1, 1])
    assert fit == pytest.approx({"a": 1 / 6, "b": 0.5, "r2": 0.75})


def test_compress_verdicts_on_hand_worked_differences():
    # int8 vs float per seed: −1, 0, −2 points → mean −1, std 1; t(0.975, 2 dof) = 4.3027, so
    # the half-width is 4.3027 / √3 = 2.4841: [−3.484, +1.484] straddles the −1.0 target
    d = paired_difference([0.40, 0.41, 0.39], [0.41, 0.41, 0.41], -1.0)
    assert d["points"] == pytest.approx([-1.0, 0.0, -2.0])
    assert (d["mean"], d["std"]) == pytest.approx((-1.0, 1.0))
    assert (d["low"], d["high"]) == pytest.approx((-3.4841, 1.4841), abs=1e-4)
    assert d["verdict"] == "undecided"
    # +0.4 … +0.6 points over 5 seeds: all of the interval above −1.0 (met), below +1.0 (missed)
    a, b = [0.355, 0.356, 0.354, 0.355, 0.355], [0.35] * 5
    assert paired_difference(a, b, -1.0)["verdict"] == "met"
    assert paired_difference(a, b, 1.0)["verdict"] == "missed"
    assert (verdict(-1.0, 2.0, -1.0), verdict(-3.0, -1.01, -1.0)) == ("met", "missed")
    assert paired_difference(a, b)["verdict"] is None  # no target, no verdict
    with pytest.raises(ValueError):
        paired_difference([0.1, 0.2], [0.1], 0.0)


def test_gpu_check_bad_arguments_are_one_line():
    r = subprocess.run(["bash", "benchmarks/gpu.sh", "--device", "tpu"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--device" in r.stderr
    # --help: the header comment, every line of it and nothing of the script
    r = subprocess.run(["bash", "benchmarks/gpu.sh", "--help"], cwd=REPO, capture_output=True,
                       text=True)
    header = (REPO / "benchmarks" / "gpu.sh").read_text().splitlines()[1:]
    header = header[:next(i for i, line in enumerate(header) if not line.startswith("#"))]
    assert r.returncode == 0 and r.stdout.splitlines() == header


@pytest.mark.e2e  # ~90 s: every benchmark of the GPU check, tiny, on CPU
def test_gpu_check_smoke_on_cpu_prints_its_table():
    """The GPU check's smoke run on CPU prints its table; its training step (benchmarks/
    train_step.py at 64x64, batch 2: every case) shows that in float32 NCHW posenas's trainer
    computes the first step's heatmaps of the official network bit for bit (the same weights,
    converted), channels-last to float rounding; bf16 autocast differs but stays the same
    function. One run for both (the train step alone took 59 s of the suite)."""
    r = subprocess.run(["bash", "benchmarks/gpu.sh", "--device", "cpu", "--smoke", "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    table = r.stdout.split("[3/3]")[1]
    for row in ("official", "posenas_nchw", "posenas_bf16", "posenfs", "darts", "data loader"):
        assert f"| {row}" in table or f" {row} " in table, row
    assert "device cpu" in r.stdout
    result = json.loads(r.stdout.strip().splitlines()[-1])
    train = result["train"]
    assert set(train) == {"official", "posenas_nchw", "posenas", "posenas_bf16"}
    for case in train.values():
        assert case["seconds"] > 0 and case["peak_bytes"] > 100 * 2**20
        # the memory held before the first step: the interpreter and torch at least, below the peak
        assert 100 * 2**20 < case["start_bytes"] <= case["peak_bytes"]
    assert train["official"]["max_rel_diff"] == 0.0
    assert train["posenas_nchw"]["max_rel_diff"] == 0.0
    assert train["posenas"]["max_rel_diff"] < 1e-4
    assert 0.0 < train["posenas_bf16"]["max_rel_diff"] < 1.0  # bf16: 8 bits of mantissa
    assert set(result["search"]) == {"posenfs", "darts"}
    assert all(c["seconds"] > 0 for c in result["search"].values())
    assert result["data"]["samples_per_s"] > 0


@pytest.mark.e2e  # ~30 s: two networks exported float and int8, 10 timed runs each
def test_int8_latency_benchmark_reports_every_network_with_its_interval(tmp_path):
    """Every network gets its row and its JSON entry: two searches' ``derived.json`` files
    (the same name in two folders) are two networks, not one."""
    import json
    import sys

    from search_space.supernet import build
    from tests.conftest import random_sample
    from trainers.config.experiment import load_config
    from trainers.network.arch_file import ArchFile, save_arch

    cfg = load_config(REPO / "configs" / "search" / "synthetic_tiny.yaml")
    choices = random_sample(build(cfg.space, cfg.dataset.name), 0)
    arch = []
    for run in ("s0", "s1"):
        arch += ["--arch", str(tmp_path / run / "derived.json")]
        save_arch(tmp_path / run / "derived.json", ArchFile(cfg, choices, kind="derived"))
    r = subprocess.run([sys.executable, "-m", "benchmarks.int8_latency", "--archs", "1",
                        "--runs", "10", "--json", *arch], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    assert sorted(results) == ["hrnet_tiny", "random arch 0", "s0/derived.json",
                               "s1/derived.json"]
    assert "of 4" in r.stdout
    for row in results.values():
        assert row["ms_float"] > 0 and row["ms_int8"] > 0
        assert row["ratio"] == pytest.approx(row["ms_int8"] / row["ms_float"], rel=1e-12)
        assert 0 < row["ratio_95"][0] <= row["ratio_95"][1]
    assert "| hrnet_tiny" in r.stdout and "int8 faster on" in r.stdout
