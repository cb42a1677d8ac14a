"""``python -m search_space.export``: NNI's search-space JSON of a config, for nnictl.

The command lives in :mod:`strategies.nnictl.space_json` (an nnictl piece, beside the trial and collect); this file keeps the documented path working. It
runs that module as ``__main__`` instead of importing it, so the layers stay one way.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("strategies.nnictl.space_json", run_name="__main__", alter_sys=True)
