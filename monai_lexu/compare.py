"""Command line: compare methods from their bundles' evaluation outputs (LEXU Table 2, Jungo Table 1, LEXU Fig. 3).

Examples::

    # LEXU Table 2 (RIGA): runs are UncertaintyReport JSONs (one per seed or fold); cost measured side by side
    python -m monai_lexu.compare uncertainty --out eval/compare \\
        --method "LEXU=runs/lexu_seed*/metrics_test.json" --method "LE=runs/le_seed*/metrics_test.json" \\
        --method "DE=runs/de_seed*/metrics_test.json" \\
        --cost "LEXU=bundles/lexu_riga/configs/train.json,bundles/lexu_riga/configs/cpu_small.json" \\
        --cost "LE=bundles/layer_ensemble_riga/configs/train.json,bundles/layer_ensemble_riga/configs/cpu_small.json" \\
        --cost "DE=bundles/deep_ensemble_riga/configs/train.json,bundles/deep_ensemble_riga/configs/cpu_small.json" \\
        --input-shape 3,128,128

    # calibrated ensemble (its evaluate.json writes metrics_test.json) and LEXU with calibrated heads (LEXU's
    # evaluate.json + calibrated_ensemble_riga's evaluate_calibrated_heads.json, --output_dir eval_calibrated_heads);
    # cost: append evaluate.json / evaluate_calibrated_heads.json to the --cost configs to time their inferer
    python -m monai_lexu.compare uncertainty --out eval/compare \\
        --method "CE=bundles/calibrated_ensemble_riga/eval/metrics_test.json" \\
        --method "LEXU-cal=bundles/lexu_riga/eval_calibrated_heads/metrics_test.json"

    # Jungo Table 1: one evaluation per fusion mode and image variant (folders <fusion>_<variant>/metrics_test.json)
    python -m monai_lexu.compare fusion --root bundles/mcdropout_fusion_synthetic/eval --out eval/compare

    # LEXU Fig. 3: the same test image's saved maps from each method
    python -m monai_lexu.compare figure --out eval/compare/fig3.png --structures disc cup \\
        --maps "LEXU=runs/lexu_seed27/metrics_test_maps" --maps "LE=runs/le_seed27/metrics_test_maps" --case M_003

The exit code is 0 when the table or figure was written, 1 when the run was refused (a missing input, no evaluation
found, ``--cost`` without ``--input-shape``; one line naming it), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = ["build_parser", "main"]

EXIT_CODES = (
    "exit code: 0 written, 1 refused (a missing input, no evaluation found; one line naming it), 2 usage error."
)
"""Exit codes, for ``--help``."""

FUSION_ORDER = ("random", "majority", "staple", "union", "intersection")
FUSION_LABELS = {"random": "no fusion (random rater)"}


def _named(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 3,128,128, got {text!r}") from e
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--input-shape is (C, H, W) or (C, H, W, D), got {text!r}")
    return shape


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands ``uncertainty``, ``fusion``, ``figure``)."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_lexu.compare",
        description="Compare uncertainty methods from their bundles' evaluation outputs (UncertaintyReport files).",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.compare", extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    unc = sub.add_parser(
        "uncertainty",
        help="LEXU Table 2: SR, DC, NCC, soft Dice, NLL per structure, mean ± std over runs; params and s/image.",
        description="Write <out>/<name>.md/.csv/.json: one row per method, mean ± std over its runs (seeds or folds).",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.compare uncertainty", extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    unc.add_argument(
        "--method",
        type=_named,
        action="append",
        required=True,
        metavar="NAME=GLOB[,GLOB]",
        help="a method and the evaluation JSONs of its runs (repeat per method; row order = argument order)",
    )
    unc.add_argument(
        "--cost",
        type=_named,
        action="append",
        default=[],
        metavar="NAME=CONFIG[,CONFIG]",
        help="bundle config files of a method: its network and evaluation inferer are timed side by side",
    )
    unc.add_argument("--input-shape", type=_shape, default=None, help="(C,H,W[,D]) of one image for --cost")
    unc.add_argument("--repeats", type=int, default=5, help="timed inferences per method (default 5; median)")
    unc.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    unc.add_argument("--structures", nargs="+", default=None, help="structure names (default: from the JSONs)")
    unc.add_argument("--out", required=True, help="output folder")
    unc.add_argument("--name", default="table2_uncertainty", help="output file stem (default table2_uncertainty)")
    unc.add_argument("--title", default="Correlation with expert disagreement and segmentation (LEXU Table 2)")

    fus = sub.add_parser(
        "fusion",
        help="Jungo Table 1: WME, ME, Dice per fusion mode, unperturbed/perturbed images (mean ± std over images).",
        description="Write <out>/<name>.md/.csv/.json: WME, ME and Dice per fusion mode and image variant. Runs come "
        "from --root (folders <fusion>_<variant>/<prefix>.json) and/or --run entries.",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.compare fusion", extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    fus.add_argument("--root", default=None, help="folder with <fusion>_<variant>/ evaluation folders")
    fus.add_argument("--prefix", default="metrics_test", help="evaluation file stem (default metrics_test)")
    fus.add_argument(
        "--run", type=_named, action="append", default=[], metavar="FUSION:VARIANT=JSON", help="one evaluation JSON"
    )
    fus.add_argument("--out", required=True, help="output folder")
    fus.add_argument("--name", default="table1_fusion", help="output file stem (default table1_fusion)")
    fus.add_argument("--title", default="Label fusion and MC-dropout uncertainty (Jungo et al. 2018, Table 1)")

    fig = sub.add_parser(
        "figure",
        help="LEXU Fig. 3: rater contours, ground-truth variance and each method's variance map for one image.",
        description="Write the PNG --out (LEXU Fig. 3): one test image's rater contours and ground-truth variance, "
        "then each method's variance map, from the maps each method's evaluation saved (<prefix>_maps/<case>.npz).",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.compare figure", extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    fig.add_argument(
        "--maps",
        type=_named,
        action="append",
        required=True,
        metavar="NAME=DIR_OR_NPZ",
        help="a method and its <prefix>_maps folder (or one .npz); repeat per method",
    )
    fig.add_argument("--case", default=None, help="case id (default: the first case every method has)")
    fig.add_argument("--structures", nargs="+", required=True, help="structure names, e.g. disc cup")
    fig.add_argument("--out", required=True, help="output PNG")
    fig.add_argument("--title", default="")
    return parser


def _uncertainty(args: argparse.Namespace) -> int:
    from monai_lexu.report import bundle_inference_cost, expand_runs, uncertainty_table, write_table

    methods = {name: expand_runs(value.split(",")) for name, value in args.method}
    costs = None
    if args.cost:
        unknown = [name for name, _ in args.cost if name not in methods]
        if unknown:
            raise SystemExit(f"--cost names {unknown} are not --method names {list(methods)}")
        if args.input_shape is None:
            raise SystemExit("--cost needs --input-shape (C,H,W[,D]) of one image")
        bundles = {name: value.split(",") for name, value in args.cost}
        costs = bundle_inference_cost(bundles, args.input_shape, device=args.device, repeats=args.repeats)
    rows, records = uncertainty_table(methods, args.structures, costs=costs)
    caption = (
        "Per method: mean ± std over its runs (seeds or folds) of each run's value; SR/DC across the run's images, "
        "NCC/soft Dice/NLL averaged over its images."
    )
    if costs:
        caption += (
            f" Parameters and median inference seconds per image measured side by side in one process on an input "
            f"of shape {tuple(args.input_shape)} ({args.repeats} interleaved repeats)."
        )
    paths = write_table(rows, records, args.out, args.name, args.title, caption)
    print(Path(paths["md"]).read_text())
    return 0


def _fusion(args: argparse.Namespace) -> int:
    from monai_lexu.report import fusion_table, load_evaluation, write_table

    runs: dict[tuple[str, str], dict] = {}
    if args.root:
        root = Path(args.root)
        if not root.is_dir():
            raise SystemExit(f"--root {root} is not a folder")
        found = {}
        for path in sorted(root.glob(f"*_*/{args.prefix}.json")):
            fusion, _, variant = path.parent.name.rpartition("_")
            found[(fusion, variant)] = load_evaluation(path)
        order = {f: i for i, f in enumerate(FUSION_ORDER)}
        for key in sorted(found, key=lambda k: (order.get(k[0], len(order)), k[0], k[1] != "unperturbed")):
            runs[key] = found[key]
    for spec, path in args.run:
        fusion, sep, variant = spec.partition(":")
        if not sep:
            raise SystemExit(f"--run expects FUSION:VARIANT=JSON, got {spec}={path}")
        runs[(fusion, variant)] = load_evaluation(path)
    if not runs:
        raise SystemExit("no evaluation found: give --root with <fusion>_<variant>/ folders or --run entries")
    rows, records = fusion_table(runs)
    caption = (
        "Mean ± std over the test images. WME: predictive entropy weighted by the raters' entropy; ME: mean "
        "predictive entropy (bits); Dice: prob >= 0.5 against the known true mask. U/P: unperturbed/perturbed images. "
        "'random' is the paper's 'no fusion' (a random rater per training sample)."
    )
    paths = write_table(rows, records, args.out, args.name, args.title, caption)
    print(Path(paths["md"]).read_text())
    return 0


def _figure(args: argparse.Namespace) -> int:
    from monai_lexu.report import load_case_maps, plot_method_comparison

    sources = {name: Path(value) for name, value in args.maps}
    for name, src in sources.items():
        if not src.exists():
            raise SystemExit(f"--maps {name}: {src} does not exist")
    if args.case is None:
        common = None
        for src in sources.values():
            ids = {src.stem} if src.is_file() else {p.stem for p in src.glob("*.npz")}
            common = ids if common is None else common & ids
        if not common:
            raise SystemExit("the methods' map folders share no case id: evaluate them on the same data")
        case = sorted(common)[0]
    else:
        case = args.case
    maps = {name: load_case_maps(src if src.is_file() else src / f"{case}.npz") for name, src in sources.items()}
    out = plot_method_comparison(maps, args.out, args.structures, title=args.title or f"case {case}")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return {"uncertainty": _uncertainty, "fusion": _fusion, "figure": _figure}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
