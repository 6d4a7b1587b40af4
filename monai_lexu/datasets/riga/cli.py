"""Command line: convert the RIGA release to PNGs + a multi-rater datalist, or write the RIGA-like synthetic set.

Run as ``python -m monai_lexu.datasets.riga {convert,synthetic}`` or through the thin entry points
``python -m data_prep.riga`` (convert) and ``python -m data_prep.synthetic riga-like`` (synthetic). Examples::

    python -m monai_lexu.datasets.riga convert --root /data/DiscRegion --out data/riga --size 256 --seed 27
    python -m monai_lexu.datasets.riga synthetic --root data/riga_like/raw --size 256 --seed 0 \\
        --num-per-source BinRushed=40 MESSIDOR=60 Magrabia=30
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = [
    "CONVERT_DESCRIPTION",
    "CONVERT_EXIT_CODES",
    "PROG",
    "SYNTHETIC_DESCRIPTION",
    "SYNTHETIC_HELP",
    "add_convert_arguments",
    "add_synthetic_arguments",
    "build_parser",
    "main",
    "run_convert",
    "run_synthetic",
]

PROG = "python -m monai_lexu.datasets.riga"
"""Program name shown in the usage line."""

CONVERT_DESCRIPTION = (
    "Convert RIGA (Glaucoma_multirater_{BinRushed,MESSIDOR,Magrabia}.csv + images + 6 rater masks) "
    "to OUT/images/*.png, OUT/masks/*_r{1..6}.png and OUT/datalist.json. Training/validation: random_split of "
    "BinRushed+MESSIDOR (80/20, seed 27 as the LEXU code); test: Magrabia. The input is not modified. An unreadable "
    "image or mask fails its case only: the others are converted, OUT/errors.json lists the failures, the exit code "
    "is 1. Errors are one line naming the file (--debug: with the traceback)."
)
"""Description of the converter."""

SYNTHETIC_HELP = "RIGA-like fundus disc/cup set with 6 raters, in the layout of the RIGA release."
"""One-line summary of the synthetic writer (e.g. the help of a sub-command)."""

SYNTHETIC_DESCRIPTION = (
    "Write a RIGA-like synthetic set (Glaucoma_multirater_*.csv, DiscCrop/, FinalLabel/, "
    "Rater1..6/) to ROOT; convert it with `python -m data_prep.riga --root ROOT --out OUT`."
)
"""Description of the synthetic writer."""

CONVERT_EXIT_CODES = (
    "exit code: 0 every image converted, 1 some image failed (the others are converted, see OUT/errors.json) "
    "or the run was refused (e.g. an unwritable --out), 2 usage error."
)
"""Exit codes of the converter, for its ``--help``."""


def _source_count(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    if not sep or not name or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected SOURCE=COUNT (e.g. MESSIDOR=60), got {text!r}")
    return name, int(count)


def add_convert_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the converter's options to ``parser`` (also used by ``data_prep.riga``)."""
    parser.add_argument("--root", required=True, help="folder holding the Glaucoma_multirater_*.csv files")
    parser.add_argument("--out", required=True, help="output folder (created); may equal --root")
    parser.add_argument("--size", type=int, default=256, help="output height and width (default: 256)")
    parser.add_argument("--seed", type=int, default=27, help="train/validation split seed (default: 27)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="validation fraction of BinRushed+MESSIDOR (default: 0.2)"
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {text}"


def run_convert(args: argparse.Namespace) -> int:
    """Convert for parsed ``args``; returns the exit code: 0 all images converted, 1 some image failed (the others
    are converted, see ``OUT/errors.json``) or the run was refused (one line ``error: ...`` on stderr)."""
    from monai_lexu.datasets.riga.convert import convert_riga

    try:
        path = convert_riga(args.root, args.out, size=args.size, seed=args.seed, val_fraction=args.val_fraction)
    except Exception as e:  # one line naming the file; the traceback only with --debug
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    print(f"Wrote {path}")
    errors_file = Path(args.out) / "errors.json"
    errors = json.loads(errors_file.read_text(encoding="utf-8")) if errors_file.is_file() else {}
    if errors:
        print(f"{len(errors)} image(s) failed (see {errors_file}):", file=sys.stderr)
        for cid, msg in errors.items():
            print(f"  {cid}: {' '.join(str(msg).split())}", file=sys.stderr)
        return 1
    return 0


def add_synthetic_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the synthetic writer's options to ``parser`` (also used by ``data_prep.synthetic riga-like``)."""
    parser.add_argument("--root", required=True, help="output directory (created)")
    parser.add_argument("--size", type=int, default=256, help="image height and width in pixels (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--num-per-source",
        type=_source_count,
        nargs="+",
        default=None,
        metavar="SOURCE=COUNT",
        help="images per source (default: BinRushed=40 MESSIDOR=60 Magrabia=30)",
    )
    return parser


SYNTHETIC_EXIT_CODES = (
    "exit code: 0 written, 1 the set could not be written (e.g. an unwritable folder), 2 usage error."
)


def run_synthetic(args: argparse.Namespace) -> int:
    """Write the RIGA-like set for parsed ``args``; returns the exit code."""
    from monai_lexu.datasets.riga.synthetic import write_riga_like

    counts = dict(args.num_per_source) if args.num_per_source else None
    root = write_riga_like(args.root, num_per_source=counts, size=args.size, seed=args.seed)
    print(f"Wrote RIGA-like synthetic data to {root}")
    return 0


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser (sub-commands ``convert`` and ``synthetic``); ``prog`` is the program name."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="RIGA: convert the release, or write a RIGA-like set.",
        epilog=examples_epilog(
            __doc__, PROG, prog, extra="exit codes: those of the sub-command (see its --help); 2 usage error."
        ),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser(
        "convert",
        help="RIGA release -> PNGs + datalist.json",
        description=CONVERT_DESCRIPTION,
        epilog=examples_epilog(__doc__, f"{PROG} convert", f"{prog} convert", extra=CONVERT_EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    add_convert_arguments(convert).set_defaults(run=run_convert)
    synthetic = sub.add_parser(
        "synthetic",
        help=SYNTHETIC_HELP,
        description=SYNTHETIC_DESCRIPTION,
        epilog=examples_epilog(__doc__, f"{PROG} synthetic", f"{prog} synthetic", extra=SYNTHETIC_EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    add_synthetic_arguments(synthetic).set_defaults(run=run_synthetic)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    return args.run(args)
