"""OCHuman (Zhang et al., "Pose2Seg: Detection Free Human Instance Segmentation", CVPR 2019;
https://github.com/liruilong940607/OCHumanApi): heavily occluded people, COCO's 17 joints, a
validation and a test set only (models train on COCO), evaluated on ground-truth boxes:

    ROOT/ochuman_coco_format_{val,test}_range_0.00_1.00.json   (or under ROOT/annotations/)
    ROOT/images/*.jpg

pycocotools' COCOeval with COCO's sigmas suffices (COCO-format areas), as for COCO. The split
names are ``val`` and ``test``; with neither set in the config a run "trains" on ``val``, which
is only useful to fine-tune: point ``dataset.train_set`` elsewhere, or train on COCO and test
here (``test.py --cfg`` with ``dataset.name ochuman``).
"""
from __future__ import annotations

from pathlib import Path

from trainers.data.coco import CocoKeypoints

__all__ = ["OCHumanKeypoints"]


class OCHumanKeypoints(CocoKeypoints):
    """OCHuman in its COCO-format release."""

    default_sets = ("val", "test")
    title = "OCHuman"

    @classmethod
    def annotation_files(cls, root: Path, image_set: str) -> list[Path]:
        name = f"ochuman_coco_format_{image_set}_range_0.00_1.00.json"
        return [root / name, root / "annotations" / name]

    @classmethod
    def image_folders(cls, root: Path, image_set: str) -> list[Path]:
        return [root / "images"]
