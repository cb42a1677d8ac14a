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


def test_a_module_fixture_is_built_once_across_two_workers(tmp_path):
    # the marking hook of tests/conftest.py, as the suite has it
    (tmp_path / "conftest.py").write_text("from tests.xdist_groups import pytest_collection_modifyitems\n")
    (tmp_path / "test_shared.py").write_text(_TESTS)
    builds = tmp_path / "builds.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(BUILDS_FILE=str(builds),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                        "--dist", "loadgroup", "--rootdir", str(tmp_path), str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "16 passed" in r.stdout
    # 8 tests over 2 workers without groups built it on both (measured: gw0 and gw1)
    assert builds.read_text().split() in (["gw0"], ["gw1"]), builds.read_text()
