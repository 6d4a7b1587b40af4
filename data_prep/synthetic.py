"""Command line: write the synthetic multi-rater data sets of :mod:`monai_lexu.data.synthetic`.

Examples::

    python -m data_prep.synthetic jungo --out data/jungo --num-samples 100 --size 128 --seed 0
    python -m data_prep.synthetic riga-like --root data/riga_like/raw --size 256 --seed 0 \\
        --num-per-source BinRushed=40 MESSIDOR=60 Magrabia=30
    python data_prep/riga.py --root data/riga_like/raw --out data/riga_like   # then convert like real RIGA
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from monai_lexu.data.synthetic import write_jungo_dataset, write_riga_like

__all__ = ["build_parser", "main"]


def _source_count(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    if not sep or not name or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected SOURCE=COUNT (e.g. MESSIDOR=60), got {text!r}")
    return name, int(count)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands ``jungo`` and ``riga-like``)."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.synthetic",
        description="Write seeded synthetic multi-rater segmentation data sets (PNG/TIFF files + datalists).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    jungo = sub.add_parser(
        "jungo",
        help="Jungo et al. 2018 synthetic set: 5 observers, unperturbed + perturbed grey images, datalists.",
        description="Write the synthetic multi-observer set of Jungo et al. (MICCAI 2018, sec. 3.2) to OUT: "
        "images_unperturbed/, images_perturbed/, masks/, datalist_unperturbed.json, datalist_perturbed.json.",
    )
    jungo.add_argument("--out", required=True, help="output directory (created)")
    jungo.add_argument("--num-samples", type=int, default=100, help="number of samples (default: 100, as the paper)")
    jungo.add_argument("--size", type=int, default=128, help="image height and width in pixels (default: 128)")
    jungo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    jungo.add_argument(
        "--train-fraction", type=float, default=0.8, help="fraction of samples in 'training', rest 'test' (default 0.8)"
    )

    riga = sub.add_parser(
        "riga-like",
        help="RIGA-like fundus disc/cup set with 6 raters, in the layout of the RIGA release.",
        description="Write a RIGA-like synthetic set (Glaucoma_multirater_*.csv, DiscCrop/, FinalLabel/, "
        "Rater1..6/) to ROOT; convert it with `python data_prep/riga.py --root ROOT --out OUT`.",
    )
    riga.add_argument("--root", required=True, help="output directory (created)")
    riga.add_argument("--size", type=int, default=256, help="image height and width in pixels (default: 256)")
    riga.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    riga.add_argument(
        "--num-per-source",
        type=_source_count,
        nargs="+",
        default=None,
        metavar="SOURCE=COUNT",
        help="images per source (default: BinRushed=40 MESSIDOR=60 Magrabia=30)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "jungo":
        if not 0.0 < args.train_fraction <= 1.0:
            raise SystemExit(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
        splits = {"training": args.train_fraction, "test": 1.0 - args.train_fraction}
        out = write_jungo_dataset(args.out, args.num_samples, args.size, args.seed, splits=splits)
        print(f"Wrote {args.num_samples} Jungo samples to {out}")
    else:
        counts = dict(args.num_per_source) if args.num_per_source else None
        root = write_riga_like(args.root, num_per_source=counts, size=args.size, seed=args.seed)
        print(f"Wrote RIGA-like synthetic data to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
