"""``python -m trainers.export``: a checkpoint to ONNX (float, QDQ or int8) with deployment metadata.

The command lives in :mod:`trainers.deploy.export`; this module keeps the documented path.
"""
import sys

from trainers.deploy.export import main

if __name__ == "__main__":
    sys.exit(main())
