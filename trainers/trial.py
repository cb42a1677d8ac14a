"""``python trainers/trial.py``: one nnictl trial (NNI's parameters → train → report).

The command lives in :mod:`strategies.nnictl.trial` (an nnictl piece, beside the space export and collect); this file keeps the documented path working. It
runs that module as ``__main__`` instead of importing it, so the layers stay one way.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("strategies.nnictl.trial", run_name="__main__", alter_sys=True)
