"""Command line: convert the RIGA release (or a RIGA-like synthetic set) to PNGs and a multi-rater datalist.

A thin entry point over :mod:`monai_lexu.datasets.riga.cli` (``python -m monai_lexu.datasets.riga convert``).
Example::

    python -m data_prep.riga --root /data/DiscRegion --out data/riga --size 256 --seed 27

The exit code is 0 when every image was converted, 1 when some image failed (the others are converted; see
``OUT/errors.json``) or the run was refused (e.g. an unwritable ``--out``, checked before any work; one line
``error: ...`` naming the file, ``--debug`` adds the traceback), 2 on a usage error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from monai_lexu.cli_help import HelpFormatter, examples_epilog
from monai_lexu.datasets.riga import cli

__all__ = ["PROG", "build_parser", "main"]

PROG = "python -m data_prep.riga"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=cli.CONVERT_DESCRIPTION,
        epilog=examples_epilog(__doc__, PROG, extra=cli.CONVERT_EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    return cli.add_convert_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    return cli.run_convert(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
