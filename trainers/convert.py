"""``python -m trainers.convert``: a released checkpoint (official HRNet, PoseNFS, ImageNet, timm)
into a posenas checkpoint, with an arch file where the network was searched.

The command lives in :mod:`trainers.weights.convert`; this module keeps the documented path.
"""
import sys

from trainers.weights.convert import command

if __name__ == "__main__":
    sys.exit(command())
