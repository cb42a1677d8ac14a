"""Write a synthetic dataset in the official COCO or MPII layout.

    python -m trainers.data.synthetic --format coco|mpii --out DIR [--train N --val M --seed S]
                                      [--if-missing]

``--if-missing`` leaves a complete dataset at DIR as it is (an nnictl experiment's trials all
ask for it; the first writes it, into a temporary folder renamed into place, so trials started
together never see half a dataset).
"""
from __future__ import annotations

import argparse
import sys

from trainers.atomic import atomic_dir
from trainers.data.synthetic.writers import write_coco, write_mpii
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors, nonnegative_int, output_dir, positive_int
from trainers.report import format_table

#: a folder that only one layout has
_LAYOUT_MARKERS = {"coco": "annotations", "mpii": "annot"}


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.data.synthetic", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=["coco", "mpii"], required=True)
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
    other = _LAYOUT_MARKERS["mpii" if args.format == "coco" else "coco"]
    if (out / other).exists():
        raise UserInputError(str(out), f"holds a {'MPII' if args.format == 'coco' else 'COCO'} "
                             f"dataset ({other}/): write the {args.format.upper()} one to another "
                             "folder", field="--out")
    writer = write_coco if args.format == "coco" else write_mpii
    if args.if_missing:
        if (out / _LAYOUT_MARKERS[args.format]).is_dir():
            print(f"{out} already holds a {args.format.upper()} dataset: left as it is")
            return 0
        try:
            with atomic_dir(out) as tmp:
                counts = writer(tmp, args.train, args.val, args.seed)
        except FileExistsError:
            if not (out / _LAYOUT_MARKERS[args.format]).is_dir():
                raise UserInputError(str(out), "appeared meanwhile and holds no "
                                     f"{args.format.upper()} dataset", field="--out") from None
            print(f"{out} was written meanwhile by another process: left as it is")
            return 0
    else:
        counts = writer(args.out, args.train, args.val, args.seed)
    print(format_table(["what", "count"], sorted(counts.items())))
    print(f"wrote a synthetic {args.format.upper()} dataset to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
