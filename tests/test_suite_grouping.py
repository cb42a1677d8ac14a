"""The suite's own scheduling: under ``make test`` (pytest-xdist, ``--dist loadgroup``) the tests
sharing a module-scoped fixture (a trained network) run on one worker, so it is built once.

Both ways this broke silently are covered: tests/conftest.py's hook marking the tests after
xdist had read the marks, and pytest 9 ignoring the group xdist writes into the node ID. Either
way every worker built the fixture again (the trained network of tests/test_training.py twice,
about 100 s each on 2 cores)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

_TESTS = '''
import os
import pytest


@pytest.fixture(scope="module")
def built():
    with open(os.environ["BUILDS_FILE"], "a") as f:  # one line per build, whichever worker
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
    return 1


@pytest.mark.parametrize("i", range(8))
def test_shares(built, i):
    pass


@pytest.mark.parametrize("i", range(8))
def test_alone(i):
    pass
'''


def _use_the_suites_hook(folder) -> None:
    """A conftest that registers tests/conftest.py's scheduling hook, and nothing else."""
    (folder / "conftest.py").write_text(
        "from tests.xdist_groups import pytest_collection_modifyitems\n")


def _pytest(folder, *args: str, **env_vars: str) -> subprocess.CompletedProcess:
    """A bare pytest over ``folder`` (no xdist worker variables of this run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(env_vars,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                           "--rootdir", str(folder), str(folder)],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=300)


def test_a_module_fixture_is_built_once_across_two_workers(tmp_path):
    # the marking hook of tests/conftest.py, as the suite has it
    _use_the_suites_hook(tmp_path)
    (tmp_path / "test_shared.py").write_text(_TESTS)
    builds = tmp_path / "builds.txt"
    r = _pytest(tmp_path, "-n", "2", "--dist", "loadgroup", BUILDS_FILE=str(builds))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "16 passed" in r.stdout
    # 8 tests over 2 workers without groups built it on both (measured: gw0 and gw1)
    assert builds.read_text().split() in (["gw0"], ["gw1"]), builds.read_text()


def test_the_slowest_modules_are_handed_out_first_and_stay_whole(tmp_path):
    _use_the_suites_hook(tmp_path)
    for name in ("test_alpha", "test_training", "test_nnictl"):  # the last two are in SLOW_FIRST
        (tmp_path / f"{name}.py").write_text("def test_one():\n    pass\n\n\n"
                                             "def test_two():\n    pass\n")
    r = _pytest(tmp_path, "--collect-only")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ids = [line for line in r.stdout.splitlines() if "::" in line]
    assert ids == [f"{m}.py::test_{t}" for m in ("test_nnictl", "test_training", "test_alpha")
                   for t in ("one", "two")]
