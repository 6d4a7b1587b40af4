"""Command line: write the synthetic multi-rater data sets (Jungo et al. 2018; RIGA-like).

A thin entry point over :mod:`monai_lexu.datasets.jungo.cli` (``jungo``) and :mod:`monai_lexu.datasets.riga.cli`
(``riga-like``). Examples::

    python -m data_prep.synthetic jungo --out data/jungo --num-samples 100 --size 128 --seed 0
    python -m data_prep.synthetic riga-like --root data/riga_like/raw --size 256 --seed 0 \\
        --num-per-source BinRushed=40 MESSIDOR=60 Magrabia=30
    python -m data_prep.riga --root data/riga_like/raw --out data/riga_like   # then convert like real RIGA
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from monai_lexu.cli_help import HelpFormatter, examples_epilog
from monai_lexu.datasets.jungo import cli as jungo_cli
from monai_lexu.datasets.riga import cli as riga_cli

__all__ = ["PROG", "build_parser", "main"]

PROG = "python -m data_prep.synthetic"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands ``jungo`` and ``riga-like``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write seeded synthetic multi-rater segmentation data sets (PNG/TIFF files + datalists).",
        epilog=examples_epilog(
            __doc__, PROG, extra="exit codes: those of the sub-command (see its --help); 2 usage error."
        ),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    jungo = sub.add_parser(
        "jungo",
        help=jungo_cli.HELP,
        description=jungo_cli.DESCRIPTION,
        epilog=examples_epilog(__doc__, f"{PROG} jungo", extra=jungo_cli.EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    jungo_cli.add_arguments(jungo).set_defaults(run=jungo_cli.run)
    riga = sub.add_parser(
        "riga-like",
        help=riga_cli.SYNTHETIC_HELP,
        description=riga_cli.SYNTHETIC_DESCRIPTION,
        epilog=examples_epilog(__doc__, f"{PROG} riga-like", extra=riga_cli.SYNTHETIC_EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    riga_cli.add_synthetic_arguments(riga).set_defaults(run=riga_cli.run_synthetic)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
