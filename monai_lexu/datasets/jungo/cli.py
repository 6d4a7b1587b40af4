"""Command line: write the synthetic multi-observer set of Jungo et al. 2018 (:mod:`.synthetic`).

Run as ``python -m monai_lexu.datasets.jungo --out DIR`` or through the thin entry point
``python -m data_prep.synthetic jungo --out DIR``. The exit code is 0 when the set was written, 1 when the run was
refused (``--train-fraction`` outside (0, 1]), 2 on a usage error. Example::

    python -m monai_lexu.datasets.jungo --out data/jungo --num-samples 100 --size 128 --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = ["DESCRIPTION", "EXIT_CODES", "HELP", "PROG", "add_arguments", "build_parser", "main", "run"]

PROG = "python -m monai_lexu.datasets.jungo"
"""Program name shown in the usage line."""

HELP = "Jungo et al. 2018 synthetic set: 5 observers, unperturbed + perturbed grey images, datalists."
"""One-line summary (e.g. the help of a ``jungo`` sub-command)."""

DESCRIPTION = (
    "Write the synthetic multi-observer set of Jungo et al. (MICCAI 2018, sec. 3.2) to OUT: "
    "images_unperturbed/, images_perturbed/, masks/, datalist_unperturbed.json, datalist_perturbed.json."
)
"""Description of the command line."""

EXIT_CODES = "exit code: 0 written, 1 refused (e.g. --train-fraction outside (0, 1]), 2 usage error."
"""Exit codes, for ``--help``."""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of the Jungo writer to ``parser`` (also used by ``data_prep.synthetic jungo``)."""
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--num-samples", type=int, default=100, help="number of samples (default: 100, as the paper)")
    parser.add_argument("--size", type=int, default=128, help="image height and width in pixels (default: 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--train-fraction", type=float, default=0.8, help="fraction of samples in 'training', rest 'test' (default 0.8)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the set for parsed ``args``; returns the exit code.

    Raises:
        SystemExit: if ``--train-fraction`` is not in (0, 1].
    """
    from monai_lexu.datasets.jungo.synthetic import write_jungo_dataset

    if not 0.0 < args.train_fraction <= 1.0:
        raise SystemExit(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
    splits = {"training": args.train_fraction, "test": 1.0 - args.train_fraction}
    out = write_jungo_dataset(args.out, args.num_samples, args.size, args.seed, splits=splits)
    print(f"Wrote {args.num_samples} Jungo samples to {out}")
    return 0


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser; ``prog`` is the program name of the usage line."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=examples_epilog(__doc__, PROG, prog, extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    return add_arguments(parser)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command line; returns the exit code."""
    return run(build_parser(prog).parse_args(argv))
