"""A learnable synthetic pose dataset, written in the official COCO or MPII layout.

    python -m trainers.data.synthetic --format coco|mpii --out DIR [--train N --val M --seed S]

Each image shows 1-3 articulated, human-like figures facing the camera (so a person's left is on
the image right, as in frontal photos) over a cluttered background: limbs drawn as shaded tubes,
torso, neck, head with eyes, nose and ears, random joint angles, scale, lean and position, some
figures cut by the image border. Joints hidden by another body part or figure are labelled
``v=1``; joints outside the image are unlabelled (``v=0``, x=y=0), as COCO does. Boxes and areas
come from the rendered masks; COCO gets a detection-results file (jittered boxes, misses and
false positives with scores) and MPII gets ``gt_valid.mat``. The output is a deterministic
function of the seed.

The pieces: :mod:`~trainers.data.synthetic.figure` (the articulated figure),
:mod:`~trainers.data.synthetic.render` (drawing it, occlusion), :mod:`~trainers.data.synthetic.writers`
(the COCO and MPII layouts); ``python -m trainers.data.synthetic`` is
:mod:`~trainers.data.synthetic.__main__`.
"""
from trainers.data.synthetic.figure import Figure
from trainers.data.synthetic.render import render_image
from trainers.data.synthetic.writers import write_coco, write_mpii

__all__ = ["Figure", "render_image", "write_coco", "write_mpii"]
