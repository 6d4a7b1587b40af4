"""Calibrated ensemble vs seed ensemble vs dropout on the synthetic RIGA-like or HECKTOR-like set (CPU recipe).

Runs the documented command sequence of ``bundles/calibrated_ensemble_<dataset>`` (train every fold, fit the
coefficients, train the two baselines, ``evaluate_heatmaps.json``) with the CPU recipe and the given overrides in a
work folder, then (unless ``--no-lexu``) trains ``lexu_<dataset>`` with the same overrides and runs
``calibrate_heads.json`` on it (LEXU's heads with and without the least-squares calibration; its Dice estimate uses
the mean of LEXU's head masks as ŷ), times every step, and writes the heatmap summary (ECE, Parzen distance to the
diagonal, union sensitivity, intersection precision, Dice-estimate r / MAE, seconds per case x members) with the
timings to a JSON file and a Markdown table on stdout. The synthetic data are the bundles' own generators, untouched.

Example (RIGA-like, reduced: 128 px images, 20 epochs; about 15 minutes on 2 shared CPU cores)::

    python benchmarks/calibrated_ensembles_synthetic.py --dataset riga --epochs 20 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def _run(configs: list[str], overrides: dict, threads: int) -> float:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(configs)]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("riga", "hecktor"), default="riga")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work-dir", default="/tmp/calibrated_ensembles_synthetic")
    parser.add_argument("--threads", type=int, default=1, help="torch/OMP threads per run (set explicitly)")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides id=json-value, e.g. image_size=[64,64]")
    parser.add_argument("--output", default=None, help="JSON file (default results/calibrated_ensembles_<ds>.json)")
    parser.add_argument(
        "--no-lexu",
        action="store_true",
        help="skip LEXU (lexu_<dataset> trained with the same overrides, its heads calibrated by calibrate_heads.json)",
    )
    args = parser.parse_args(argv)
    bundle = REPO / "bundles" / f"calibrated_ensemble_{args.dataset}"
    cfg = bundle / "configs"
    work = Path(args.work_dir) / args.dataset
    work.mkdir(parents=True, exist_ok=True)
    overrides: dict = {
        "bundle_root": str(bundle),
        "dataset_dir": str(work / "data"),
        "make_synthetic": True,
        "models_dir": str(work / "models"),
        "output_dir": str(work / "eval"),
        "epochs": args.epochs,
        "val_interval": args.epochs,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    base = [str(cfg / "train.json"), str(cfg / "cpu_small.json")]
    timings = {}
    for k in range(3):
        timings[f"train_fold{k}"] = _run(base, {**overrides, "fold": k}, args.threads)
    timings["fit"] = _run(base + [str(cfg / "fit_calibration.json")], overrides, args.threads)
    timings["seed_ensemble"] = _run(base + [str(cfg / "seed_ensemble.json")], overrides, args.threads)
    timings["dropout"] = _run(base + [str(cfg / "dropout.json")], overrides, args.threads)
    timings["evaluate"] = _run(base + [str(cfg / "evaluate_heatmaps.json")], overrides, args.threads)
    heat = work / "eval" / ("heatmaps" if args.dataset == "riga" else "heatmaps_fold0")
    summary = json.loads((heat / "summary.json").read_text())
    md = (heat / "summary.md").read_text()
    if not args.no_lexu:
        lexu_cfg = REPO / "bundles" / f"lexu_{args.dataset}" / "configs"
        lexu = [str(lexu_cfg / "train.json"), str(lexu_cfg / "cpu_small.json")]
        lexu_over = {k: v for k, v in overrides.items() if k not in ("bundle_root", "models_dir")}
        lexu_over.update(
            bundle_root=str(REPO / "bundles" / f"lexu_{args.dataset}"),
            ckpt_dir=str(work / "lexu" / "models"),
            output_dir=str(work / "lexu" / "eval"),
        )
        timings["lexu_train"] = _run(lexu, lexu_over, args.threads)
        timings["lexu_calibrate_heads"] = _run(lexu + [str(cfg / "calibrate_heads.json")], lexu_over, args.threads)
        heads = work / "lexu" / "eval" / "heatmaps_heads"
        head_summary = json.loads((heads / "summary.json").read_text())
        for name, row in head_summary["methods"].items():
            summary["methods"][f"lexu_{name}"] = {**row, "prediction_from": f"lexu_{head_summary['prediction_from']}"}
        md += "\nLEXU (heads fitted on the validation section):\n\n" + (heads / "summary.md").read_text()
    result = {"dataset": args.dataset, "overrides": overrides, "threads": args.threads, "seconds": timings, **summary}
    out = Path(args.output) if args.output else RESULTS / f"calibrated_ensembles_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(result, indent=4) + "\n")
    tmp.replace(out)
    print(md)
    print("seconds:", {k: round(v) for k, v in timings.items()})
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
