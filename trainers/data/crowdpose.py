"""CrowdPose (Li et al., "CrowdPose: Efficient Crowded Scenes Pose Estimation and A New
Benchmark", CVPR 2019; https://github.com/Jeff-sjtu/CrowdPose), top-down, in its release layout:

    ROOT/json/crowdpose_{train,val,trainval,test}.json   (or ROOT/annotations/, or mmpose's
                                                         ROOT/annotations/mmpose_crowdpose_*.json)
    ROOT/images/*.jpg

14 joints (:data:`search_space.joints.CROWDPOSE`). Trained on ``trainval``, tested on ``test``
(the paper's protocol). Evaluated by xtcocotools' ``keypoints_crowd``: AP, AP50, AP75, AR, AR50,
AR75 and AP on easy / medium / hard images by their ``crowdIndex``
(:func:`trainers.evaluation.xtcoco.evaluate_crowd`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from search_space.errors import UserInputError
from trainers.data.coco import CocoKeypoints
from trainers.evaluation.xtcoco import evaluate_crowd

__all__ = ["CrowdPoseKeypoints", "check_crowd_index"]


def check_crowd_index(data: dict[str, Any], source: str) -> None:
    """Every image of CrowdPose annotations ``data`` has its numeric ``crowdIndex``.

    Raises:
        UserInputError: naming ``source`` and the first image without it.
    """
    for img in data["images"]:
        if not isinstance(img.get("crowdIndex"), (int, float)):
            raise UserInputError(source, "missing 'crowdIndex' (CrowdPose's crowd index, "
                                 "which splits AP into easy/medium/hard)",
                                 field=f"image id={img['id']}")


class CrowdPoseKeypoints(CocoKeypoints):
    """CrowdPose: COCO-format annotations with a crowd index per image."""

    default_sets = ("trainval", "test")
    title = "CrowdPose"

    @classmethod
    def annotation_files(cls, root: Path, image_set: str) -> list[Path]:
        return [root / "json" / f"crowdpose_{image_set}.json",
                root / "annotations" / f"crowdpose_{image_set}.json",
                root / "annotations" / f"mmpose_crowdpose_{image_set}.json"]

    @classmethod
    def image_folders(cls, root: Path, image_set: str) -> list[Path]:
        return [root / "images"]

    def load_annotations(self, path: Path) -> dict[str, Any]:
        data = super().load_annotations(path)
        check_crowd_index(data, str(path))
        return data

    def score_results(self, results: list[dict[str, Any]]) -> dict[str, float]:
        return evaluate_crowd(self.gt, results, self.spec.sigmas)
