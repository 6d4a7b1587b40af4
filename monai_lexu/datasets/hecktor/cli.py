"""Command line: convert HECKTOR 2022 PET/CT (layout A NIfTI or DICOM, multi-rater) to processed NIfTI + a datalist.

Run as ``python -m monai_lexu.datasets.hecktor`` or through the thin entry point ``python -m data_prep.hecktor``.
Examples::

    python -m data_prep.hecktor --root /data/hecktor2022 --out data/hecktor
    python -m data_prep.hecktor --synthetic 9 --out data/hecktor_synthetic      # writes OUT/raw first
    python -m data_prep.hecktor --dicom /data/hecktor_dicom --out data/hecktor   # DICOM -> OUT/raw_dicom -> OUT
    python -m data_prep.hecktor --root R --out O --spacing 1 1 1 --box-mm 200 200 310 --folds 3 --seed 27 --device cuda

The preprocessing defaults come from :mod:`monai_lexu.datasets.hecktor.recipe` (``--spacing`` / ``--box-mm``
override them); the recipe used is written to ``OUT/preprocessing.json``.

The exit code is 0 when every case was converted, 1 when some case failed (the others are converted; see
``OUT/errors.json``) or the run was refused (an unwritable output folder, no input: checked before any work),
2 on a usage error. Errors are printed as one line ``error: ...`` naming the file or case; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.cli_help import HelpFormatter, examples_epilog
from monai_lexu.datasets.hecktor.format import HECKTOR_LABELS
from monai_lexu.datasets.hecktor.recipe import default_recipe

__all__ = ["PROG", "build_parser", "main"]

PROG = "python -m monai_lexu.datasets.hecktor"
"""Program name shown in the usage line."""


def _numbers(values: Sequence[float]) -> str:
    return " ".join(f"{v:g}" for v in values)


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser; ``prog`` is the program name of the usage line."""
    real, synthetic = default_recipe(), default_recipe(synthetic=True)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Convert HECKTOR 2022 PET/CT to OUT/images/<Case>__CT|__PT.nii.gz (same grid), "
            "OUT/labels/<rater>/<Case>.nii.gz and OUT/datalist.json (image = [CT, PT], raters, fold), plus "
            "OUT/summary.csv / summary.md (volumes, inter-rater Dice per fold) and OUT/errors.json. "
            "Input layout: ROOT/imagesTr/<Case>__CT.nii.gz, ROOT/imagesTr/<Case>__PT.nii.gz and "
            "ROOT/labelsTr/<rater>/<Case>.nii.gz (2-4 raters; "
            + ", ".join(f"label {v} = {k}" for k, v in HECKTOR_LABELS.items())
            + ") or the single-rater "
            "ROOT/labelsTr/<Case>.nii.gz. Processing (MONAI's HECKTOR 2022 recipe): RAS, CT and masks resampled to "
            "--spacing (bilinear / nearest), PET resampled onto the CT grid, head-and-neck crop of --box-mm found on "
            "the PET. Intensities are kept raw (HU, SUV); the recipe (spacing, box and the CT/PET normalisation used "
            "at training and inference) is written to OUT/preprocessing.json. The input is never modified; a second "
            "run skips finished cases."
        ),
        epilog=examples_epilog(
            __doc__,
            "python -m data_prep.hecktor",
            prog,
            extra="exit code: 0 all cases converted, 1 some case failed (all others done) or the run was refused "
            "(e.g. an unwritable --out, checked before any work), 2 usage error (e.g. no --root).",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--root", help="HECKTOR folder (imagesTr/, labelsTr/); with --synthetic: where to write it")
    parser.add_argument("--out", required=True, help="output folder (created); may equal --root")
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        default=None,
        metavar=("SX", "SY", "SZ"),
        help=f"output voxel spacing in mm (default: {_numbers(real.spacing)}; with --synthetic: "
        f"{_numbers(synthetic.spacing)})",
    )
    parser.add_argument(
        "--box-mm",
        type=float,
        nargs=3,
        default=None,
        metavar=("BX", "BY", "BZ"),
        help=f"head-and-neck crop box in mm (default: {_numbers(real.box_mm)}; with --synthetic: "
        f"{_numbers(synthetic.box_mm)})",
    )
    parser.add_argument("--folds", type=int, default=3, help="patient-level cross-validation folds (default: 3)")
    parser.add_argument("--seed", type=int, default=27, help="fold seed over the sorted case ids (default: 27)")
    parser.add_argument("--device", default=None, help="device of the resampling, e.g. cuda or cpu (default: cpu)")
    parser.add_argument("--overwrite", action="store_true", help="re-convert cases whose outputs already exist")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=None,
        metavar="N",
        help="first write N synthetic PET/CT cases (2-4 raters) to --root (default: OUT/raw), then convert them",
    )
    parser.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic set (default: 0)")
    parser.add_argument(
        "--dicom",
        default=None,
        metavar="DIR",
        help="DICOM input instead of --root: one folder per case with a CT series, a PET series (SUV computed from "
        "its tags) and one RTSTRUCT or DICOM-SEG file per rater (see monai_lexu.datasets.hecktor.dicom); converted to "
        "NIfTI in --root (default: OUT/raw_dicom), then processed like NIfTI input",
    )
    parser.add_argument(
        "--allow-uid-mismatch",
        action="store_true",
        help="with --dicom: accept rater files of another patient or frame of reference than the CT (default: "
        "such a case fails, naming the file and the UIDs)",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {text}"


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command line; returns the exit code (``prog``: the program name of the usage line)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not args.root and args.synthetic is None and args.dicom is None:
        parser.error("--root is required (unless --synthetic N or --dicom DIR is given)")
    if args.synthetic is not None and args.synthetic < 1:
        parser.error(f"--synthetic needs N >= 1, got {args.synthetic}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except Exception as e:  # one line naming the file / case; the traceback only with --debug
        if args.debug:
            traceback.print_exc()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from monai_lexu.datasets._io import check_writable_dir
    from monai_lexu.datasets.hecktor.convert import convert_hecktor

    check_writable_dir(args.out)  # before any work (synthetic data, DICOM staging, conversion)
    if args.synthetic is not None or args.dicom is not None:
        default = "raw" if args.synthetic is not None else "raw_dicom"
        check_writable_dir(args.root or Path(args.out) / default, "input staging folder")
    dicom_errors: dict[str, str] = {}
    if args.synthetic is not None:
        from monai_lexu.datasets.hecktor.synthetic import write_synthetic_hecktor

        root = Path(args.root) if args.root else Path(args.out) / "raw"
        write_synthetic_hecktor(root, num_cases=args.synthetic, seed=args.synthetic_seed)
        print(f"Wrote {args.synthetic} synthetic PET/CT cases to {root}")
    elif args.dicom is not None:
        from monai_lexu.datasets.hecktor.dicom import dicom_to_layout_a

        root = Path(args.root) if args.root else Path(args.out) / "raw_dicom"
        converted, dicom_errors = dicom_to_layout_a(args.dicom, root, allow_uid_mismatch=args.allow_uid_mismatch)
        print(f"DICOM: {len(converted)} case(s) converted to NIfTI in {root}")
        for case_id, msg in dicom_errors.items():
            print(f"  {case_id}: {msg}", file=sys.stderr)
        if not converted:
            print("error: no DICOM case could be read", file=sys.stderr)
            return 1
    else:
        root = Path(args.root)
    recipe = default_recipe(synthetic=args.synthetic is not None).replace(spacing=args.spacing, box_mm=args.box_mm)
    path = convert_hecktor(
        root,
        args.out,
        recipe=recipe,
        folds=args.folds,
        seed=args.seed,
        device=args.device,
        overwrite=args.overwrite,
    )
    out = Path(args.out)
    summary = out / "summary.md"
    if summary.is_file():
        print(summary.read_text(encoding="utf-8"))
    errors = json.loads((out / "errors.json").read_text(encoding="utf-8"))
    print(f"Wrote {path}")
    if dicom_errors:
        errors = {**dicom_errors, **errors}
    if errors:
        print(f"{len(errors)} case(s) failed (see {out / 'errors.json'}):", file=sys.stderr)
        for case_id, msg in errors.items():
            print(f"  {case_id}: {msg}", file=sys.stderr)
        return 1
    return 0
