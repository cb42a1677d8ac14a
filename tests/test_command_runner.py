"""tests/command_runner.py: a command forked from the preloaded server behaves as in a fresh
interpreter. The expectation is the fresh interpreter's own behaviour (the same probe run by
``subprocess``), not the runner's."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.command_runner import run_command

_PROBE = '''
import atexit
import multiprocessing
import os
import sys
import warnings

print("argv", [os.path.basename(sys.argv[0]), *sys.argv[1:]], "name", __name__)
print("cwd", os.getcwd(), "path0", sys.path[0])
print("env", os.environ.get("PROBE_VALUE"))
print("ours imported before", "trainers.config" in sys.modules, "search_space" in sys.modules)
import torch
print("threads", torch.get_num_threads())
# a DataLoader's workers start by it (through the forkserver, they re-imported __main__)
print("start method", multiprocessing.get_start_method())
warnings.warn("hidden by PYTHONWARNINGS=ignore")
sys.stdout.flush()
os.write(1, b"written at the descriptor\\n")
print("to stderr", file=sys.stderr)
atexit.register(lambda: print("atexit ran"))
mode = sys.argv[1]
if mode == "exit3":
    sys.exit(3)
if mode == "message":
    sys.exit("a message for stderr")
if mode == "raise":
    raise ValueError("boom")
'''


def _fresh(args, cwd, env):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("mode", ["ok", "exit3", "message", "raise"])
@pytest.mark.parametrize("as_module", [False, True])
def test_a_forked_command_behaves_as_a_fresh_interpreter(tmp_path, mode, as_module):
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probe.py").write_text(_PROBE)
    work = tmp_path / "work"
    work.mkdir()
    # torch's threads from OMP_NUM_THREADS (MKL_NUM_THREADS, which the suite sets, would win)
    env = {k: v for k, v in os.environ.items()
           if k not in ("POSENAS_TEST_FRESH_PROCESSES", "MKL_NUM_THREADS")}
    env.update(PROBE_VALUE="42", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="2")
    if as_module:  # python -m finds the package from the working directory
        args, cwd = ("-m", "probe_pkg.probe", mode), tmp_path
    else:
        args, cwd = (str(package / "probe.py"), mode), work
    fresh = _fresh(args, cwd, env)
    forked = run_command(args, cwd, env, timeout=120)
    status = {"ok": 0, "exit3": 3, "message": 1, "raise": 1}[mode]
    assert forked.returncode == fresh.returncode == status
    assert forked.stdout == fresh.stdout
    assert "ours imported before False False" in fresh.stdout and "threads 2" in fresh.stdout
    if mode == "raise":  # the traceback shows the runner's frames too; its start and end agree
        for r in (fresh, forked):
            lines = r.stderr.strip().splitlines()
            assert lines[0] == "to stderr" and lines[1] == "Traceback (most recent call last):"
            assert lines[-1] == "ValueError: boom"
    else:
        assert forked.stderr == fresh.stderr


def test_c_code_and_the_switch_get_a_fresh_interpreter(tmp_path, monkeypatch):
    """``-c`` (the torch-free checks hide torch from a new interpreter) and
    POSENAS_TEST_FRESH_PROCESSES=1 do not fork: torch is not yet imported there."""
    code = "import sys; print('torch' in sys.modules)"
    env = dict(os.environ)
    assert run_command(("-c", code), tmp_path, env, timeout=60).stdout.split() == ["False"]
    (tmp_path / "s.py").write_text(code)
    assert run_command(("s.py",), tmp_path, env, timeout=60).stdout.split() == ["True"]  # forked
    env["POSENAS_TEST_FRESH_PROCESSES"] = "1"
    monkeypatch.setenv("POSENAS_TEST_FRESH_PROCESSES", "1")
    assert run_command(("s.py",), tmp_path, env, timeout=60).stdout.split() == ["False"]


def test_a_command_past_its_timeout_is_killed(tmp_path):
    (tmp_path / "s.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        run_command(("s.py",), tmp_path, dict(os.environ), timeout=3)
    assert "started" in caught.value.output
