"""``python -m trainers.demo``: the whole loop on synthetic data (search, Prune, train, test, draw).

The command lives in :mod:`visualize.loop` (it reaches every layer, so it sits in the top one); this file keeps the documented path working. It
runs that module as ``__main__`` instead of importing it, so the layers stay one way.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("visualize.loop", run_name="__main__", alter_sys=True)
