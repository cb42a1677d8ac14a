"""``python -m trainers.infer``: torch-free inference of an exported ONNX model on an image.

The command lives in :mod:`trainers.deploy.infer`; this module keeps the documented path.
"""
import sys

from trainers.deploy.infer import main

if __name__ == "__main__":
    sys.exit(main())
