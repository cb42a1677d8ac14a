"""The suite's hook that keeps the tests sharing a module-scoped fixture on one pytest-xdist
worker (tests/conftest.py registers it; kept free of torch so tests/test_suite_grouping.py can
run it in a bare pytest)."""
from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Tests that share a module-scoped fixture (a trained network, an export) go to one
    worker under ``--dist loadgroup``, so it is built once; the others spread test by test.

    ``tryfirst``: pytest-xdist turns the marks into groups in its own hook of this name, which
    pluggy would otherwise call before this one (a conftest registers before xdist's worker
    plugin), and the marks came too late: every such fixture was built on both workers. xdist
    3.8 writes the group into ``item._nodeid``, which pytest 9 no longer reads, hence pytest < 9
    (setup.cfg). tests/test_suite_grouping.py checks both."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
