"""Write a synthetic dataset in the official COCO or MPII layout.

    python -m trainers.data.synthetic --format coco|mpii --out DIR [--train N --val M --seed S]
"""
from __future__ import annotations

import argparse
import sys

from trainers.data.synthetic.writers import write_coco, write_mpii
from search_space.errors import UserInputError
from trainers.cli import cli_errors
from trainers.report import format_table

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.data.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=["coco", "mpii"], required=True)
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--train", type=int, default=400, help="training images (default 400)")
    p.add_argument("--val", type=int, default=100, help="validation images (default 100)")
    p.add_argument("--seed", type=int, default=0)
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.train < 1 or args.val < 1:
        raise UserInputError("argument", "--train and --val must be at least 1")
    writer = write_coco if args.format == "coco" else write_mpii
    counts = writer(args.out, args.train, args.val, args.seed)
    print(format_table(["what", "count"], sorted(counts.items())))
    print(f"wrote a synthetic {args.format.upper()} dataset to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
