"""``python -m strategies.collect``: an nnictl experiment's trials as a history and the best arch file.

The command lives in :mod:`strategies.nnictl.collect`; this module keeps the documented path.
"""
import sys

from strategies.nnictl.collect import main

if __name__ == "__main__":
    sys.exit(main())
