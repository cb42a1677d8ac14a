"""The speed benchmarks run, and what they compare is the same computation."""
import json

import pytest

from tests.conftest import run_module


@pytest.mark.e2e  # runs the benchmark command
def test_train_step_benchmark_compares_the_same_function_as_the_official_network():
    """benchmarks/train_step.py at a tiny size: every case runs and reports; in float32 NCHW,
    posenas's trainer computes the first step's heatmaps of the official network bit for bit
    (the same weights, converted), channels-last to float rounding; bf16 autocast differs but stays the same function."""
    r = run_module("-m", "benchmarks.train_step", "--size", "64x64", "--batch", "2", "--steps", "1",
                   "--warmup", "1", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(result) == {"official", "posenas_nchw", "posenas", "posenas_bf16"}
    for case in result.values():
        assert case["seconds"] > 0 and case["peak_bytes"] > 100 * 2**20
    assert result["official"]["max_rel_diff"] == 0.0
    assert result["posenas_nchw"]["max_rel_diff"] == 0.0
    assert result["posenas"]["max_rel_diff"] < 1e-4
    assert 0.0 < result["posenas_bf16"]["max_rel_diff"] < 1.0  # bf16: 8 bits of mantissa
