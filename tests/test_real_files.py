"""Files as users have them: COCO as it unzips, JPEGs with EXIF orientation, crowd
annotations, output file modes."""
import json
import os
import shutil

import numpy as np
import pytest

from tests.conftest import REPO, run_module, tiny_config
from trainers.data.registry import build_dataset
from trainers.data.images import read_image


def test_exif_orientation_is_not_applied(tmp_path):
    """A 40×20 photo, left half red, tagged 'rotate 90° CW to display' (orientation 6): COCO's
    annotations are in the stored frame, so it must come back 20 high, 40 wide, red on the left."""
    from PIL import Image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "tagged.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    assert Image.open(path).getexif()[0x0112] == 6
    image = read_image(path)  # RGB
    assert image.shape == (20, 40, 3)
    assert image[10, 5, 0] > 200 and image[10, 5, 2] < 60 and image[10, 35, 0] < 60


def test_crowd_annotations_are_skipped(coco_root, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(coco_root, root)
    ann_file = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(ann_file.read_text())
    people = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    crowd = people[0]
    crowd["iscrowd"] = 1  # keeps its keypoints: must still not become a person
    ann_file.write_text(json.dumps(data))
    before = build_dataset(tiny_config("coco", coco_root), "val")
    after = build_dataset(tiny_config("coco", root), "val")
    ids = {r.annotation_id for r in after.records}
    assert len(after.records) == len(before.records) - 1 and crowd["id"] not in ids


def test_coco_as_it_unzips_reads_the_same_records(coco_root, tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for name in ("person_keypoints_train2017.json", "person_keypoints_val2017.json"):
        shutil.copy(coco_root / "annotations" / name, root / "annotations" / name)
    for image_set in ("train2017", "val2017"):
        shutil.copytree(coco_root / "images" / image_set, root / image_set)
    hrnet = build_dataset(tiny_config("coco", coco_root), "val")
    unzipped = build_dataset(tiny_config("coco", root), "val")
    assert len(unzipped.records) == len(hrnet.records) > 0
    assert all(os.path.isfile(r.image) and str(root / "val2017") in r.image for r in unzipped.records)
    a, b = hrnet[(0, 0)], unzipped[(0, 0)]
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["trainers/test.py", "trainers/train_derived.py"])
def test_a_root_without_images_is_one_clear_error(coco_root, tmp_path, command):
    root = tmp_path / "coco"
    shutil.copytree(coco_root / "annotations", root / "annotations")
    cfg = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")
    extra = ["--weights", str(tmp_path / "none.ckpt")] if command.endswith("test.py") else []
    if extra:  # a real checkpoint, so that the data is what fails
        from search_space.models import build_model
        import torch

        torch.save(build_model("hrnet_tiny", "coco").state_dict(), tmp_path / "none.ckpt")
    r = run_module(command, "--cfg", cfg, "--out", str(tmp_path / "out"), *extra,
                   "dataset.root", str(root), "train.num_workers", "0", "train.epochs", "1")
    assert r.returncode == 2, (r.stdout[-2000:], r.stderr[-2000:])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "dataset.root" in last
    assert str(root / "val2017") in last or str(root / "train2017") in last
    assert "images" in last and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "best.ckpt").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_outputs_get_the_umask_mode(tmp_path, umask, mode):
    from trainers.atomic import write_json_atomic

    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == mode
