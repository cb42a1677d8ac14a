"""The suite's scheduling hook: the tests sharing a module-scoped fixture stay on one
pytest-xdist worker, and the slowest modules are handed out first (tests/conftest.py registers
it; kept free of torch so tests/test_suite_grouping.py can run it in a bare pytest)."""
from __future__ import annotations

import pytest

# the modules with the most test time (``--durations`` of a whole run on 2 cores, 2026-12-06:
# 610, 300, 220, 200, 180 and 80 s), first: xdist hands out work in collection order, and a long
# test started last is the run's tail while the other worker idles
SLOW_FIRST = ("test_nnictl", "test_search_quality", "test_distributed", "test_training",
              "test_benchmark_scripts", "test_benchmarks")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Tests that share a module-scoped fixture (a trained network, an export) go to one
    worker under ``--dist loadgroup``, so it is built once; the others spread test by test.
    Then the modules of ``SLOW_FIRST`` move to the front, in that order.

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
    # whole modules move (a module's tests stay together and in order: its fixtures stay shared)
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def module_rank(item) -> int:
        module = getattr(item, "module", None)
        return rank.get(module.__name__.rpartition(".")[2] if module else "", len(rank))

    items.sort(key=module_rank)
