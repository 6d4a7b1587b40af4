"""Write one report of every method: ``python -m monai_lexu.report``.

Reads a reproduction work folder (``benchmarks/reproduce_tables.py --work``: the runs' evaluations and the
per-head-map analyses) and writes ``report.html`` (self-contained, figures embedded), ``report.md`` with
``figures/*.png`` and ``report.json`` (see :mod:`monai_lexu.report.html`).

Examples::

    python -m monai_lexu.report --work benchmarks/work --out benchmarks/results/report
    python -m monai_lexu.report --method "CE=bundles/calibrated_ensemble_riga/eval/metrics_test.json"
    make report    # trains and evaluates what is missing (CPU recipes), then writes the report
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.cli_help import HelpFormatter, examples_epilog


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; exit codes: 0 written, 1 an error (missing work folder, unreadable evaluation), 2 usage."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_lexu.report",
        description="Write one HTML page (figures embedded) and a Markdown copy of the reproduced tables beside the "
        "papers' numbers (with whether the papers' orderings hold), the quality-control, distortion-agreement and "
        "GED analyses, and the provenance (commit, configs, seeds, machine, timings).",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.report", extra="exit codes: 0 written; 1 an error "
                               "(missing work folder, unreadable evaluation); 2 usage"),
        formatter_class=HelpFormatter,
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work"), help="reproduction work folder")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/report"), help="output folder")
    parser.add_argument("--title", default="monai-lexu: reproduction and analyses", help="page title")
    parser.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME=GLOB",
        help="another method's evaluation JSON(s) on the same RIGA-like test set, added to Table 2 (repeatable)",
    )
    args = parser.parse_args(argv)
    extra = {}
    for item in args.method:
        name, sep, pattern = item.partition("=")
        paths = sorted(glob.glob(pattern))
        if not sep or not name or not paths:
            print(f"error: --method {item!r}: expected NAME=GLOB matching evaluation JSON files", file=sys.stderr)
            return 1
        extra[name] = paths
    if not (args.work / "runs").is_dir():
        print(f"error: {args.work / 'runs'} does not exist (run benchmarks/reproduce_tables.py first)", file=sys.stderr)
        return 1
    from monai_lexu.report.html import build_report

    try:
        result = build_report(args.work, args.out, args.title, extra)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {result['html']} and {result['markdown']}: {len(result['tables'])} tables, "
          f"{len(result['figures'])} figures")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
