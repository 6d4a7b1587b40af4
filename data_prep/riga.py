"""Command line: convert the RIGA release (or a RIGA-like synthetic set) to PNGs and a multi-rater datalist.

Example::

    python -m data_prep.riga --root /data/DiscRegion --out data/riga --size 256 --seed 27
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from monai_lexu.data.riga import convert_riga

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.riga",
        description="Convert RIGA (Glaucoma_multirater_{BinRushed,MESSIDOR,Magrabia}.csv + images + 6 rater masks) "
        "to OUT/images/*.png, OUT/masks/*_r{1..6}.png and OUT/datalist.json. Training/validation: random_split of "
        "BinRushed+MESSIDOR (80/20, seed 27 as the LEXU code); test: Magrabia. The input is not modified.",
    )
    parser.add_argument("--root", required=True, help="folder holding the Glaucoma_multirater_*.csv files")
    parser.add_argument("--out", required=True, help="output folder (created); may equal --root")
    parser.add_argument("--size", type=int, default=256, help="output height and width (default: 256)")
    parser.add_argument("--seed", type=int, default=27, help="train/validation split seed (default: 27)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="validation fraction of BinRushed+MESSIDOR (default: 0.2)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    path = convert_riga(args.root, args.out, size=args.size, seed=args.seed, val_fraction=args.val_fraction)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
