"""Command line: convert HECKTOR 2022 PET/CT (layout A NIfTI or DICOM, multi-rater) to processed NIfTI + a datalist.

A thin entry point over :mod:`monai_lexu.datasets.hecktor.cli` (same options as
``python -m monai_lexu.datasets.hecktor``). Examples::

    python -m data_prep.hecktor --root /data/hecktor2022 --out data/hecktor
    python -m data_prep.hecktor --synthetic 9 --out data/hecktor_synthetic      # writes OUT/raw first
    python -m data_prep.hecktor --dicom /data/hecktor_dicom --out data/hecktor   # DICOM -> OUT/raw_dicom -> OUT
    python -m data_prep.hecktor --root R --out O --spacing 1 1 1 --box-mm 200 200 310 --folds 3 --seed 27 --device cuda

The exit code is 0 when every case was converted, 1 when some case failed (the others are converted; see
``OUT/errors.json``) or the run was refused (e.g. an unwritable ``--out``, checked before any work; one line
``error: ...`` naming the file, ``--debug`` adds the traceback), 2 on a usage error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from monai_lexu.datasets.hecktor import cli

__all__ = ["PROG", "build_parser", "main"]

PROG = "python -m data_prep.hecktor"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    return cli.build_parser(PROG)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    return cli.main(argv, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
