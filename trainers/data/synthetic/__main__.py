"""Write a synthetic dataset in an official layout.

    python -m trainers.data.synthetic --format FORMAT --out DIR [--train N --val M --seed S]
                                      [--if-missing]

FORMAT: coco, mpii, crowdpose, ochuman, aic (the release's own JSON), coco_wholebody, or custom
(COCO format with a 12-keypoint layout of its own, names and skeleton in ``categories``).

``--if-missing`` leaves a complete dataset at DIR as it is (an nnictl experiment's trials all
ask for it; the first writes it, into a temporary folder renamed into place, so trials started
together never see half a dataset).
"""
from __future__ import annotations

import argparse
import sys

from trainers.atomic import atomic_dir
from trainers.data.synthetic.coco_family import COCO_FAMILY_FORMATS, write_coco_family
from trainers.data.synthetic.writers import write_coco, write_mpii
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors, nonnegative_int, output_dir, positive_int
from trainers.report import format_table

#: format → (writer, the file that says a dataset of this format is there)
_WRITERS = {
    "coco": (write_coco, "annotations/person_keypoints_val2017.json"),
    "mpii": (write_mpii, "annot/gt_valid.mat"),
    **{fmt: (lambda out, n, m, seed, fmt=fmt: write_coco_family(fmt, out, n, m, seed),
             layout.annotation(layout.sets[1]))
       for fmt, layout in COCO_FAMILY_FORMATS.items()},
}


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.data.synthetic", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=list(_WRITERS), required=True)
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--train", type=positive_int, default=400, help="training images (default 400)")
    p.add_argument("--val", type=positive_int, default=100, help="validation images (default 100)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="NumPy seed (0 … 2^32-1)")
    p.add_argument("--if-missing", action="store_true",
                   help="do nothing when DIR already holds a dataset of this format")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = output_dir(args.out, "--out")
    writer, marker = _WRITERS[args.format]
    other = next((fmt for fmt, (_, m) in _WRITERS.items() if m != marker and (out / m).exists()), None)
    if other is not None:
        raise UserInputError(str(out), f"holds a {other} dataset ({_WRITERS[other][1]}): write "
                             f"the {args.format} one to another folder", field="--out")
    name = args.format.upper() if args.format in ("coco", "mpii") else args.format
    if args.if_missing:
        if (out / marker).is_file():
            print(f"{out} already holds a {name} dataset: left as it is")
            return 0
        try:
            with atomic_dir(out) as tmp:
                counts = writer(tmp, args.train, args.val, args.seed)
        except FileExistsError:
            if not (out / marker).is_file():
                raise UserInputError(str(out), f"appeared meanwhile and holds no {name} dataset",
                                     field="--out") from None
            print(f"{out} was written meanwhile by another process: left as it is")
            return 0
    else:
        counts = writer(args.out, args.train, args.val, args.seed)
    print(format_table(["what", "count"], sorted(counts.items())))
    print(f"wrote a synthetic {name} dataset to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
