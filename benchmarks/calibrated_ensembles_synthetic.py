"""Calibrated ensemble vs seed ensemble vs dropout on the synthetic RIGA-like or HECKTOR-like set (CPU recipe).

Runs the documented command sequence of ``bundles/calibrated_ensemble_<dataset>`` (train every fold, fit the
coefficients, train the two baselines, ``evaluate_heatmaps.json``) with the CPU recipe and the given overrides in a
work folder, then (unless ``--no-lexu``) trains ``lexu_<dataset>`` with the same overrides and runs the calibrated
ensemble bundle's ``calibrate_heads.json`` on it (LEXU's heads with and without the least-squares calibration; its
Dice estimate uses the mean of LEXU's head masks as ŷ). RIGA: one LEXU model, heads fitted on the validation section;
HECKTOR: LEXU on every fold, heads fitted out of fold on folds 1 and 2 and evaluated on fold 0 (the calibrated
ensemble's own protocol). It times every step and writes the heatmap summary (ECE, Parzen distance to the diagonal,
union sensitivity, intersection precision, Dice-estimate r / MAE, seconds per case x members) with the timings to a
JSON file and a Markdown table on stdout. The synthetic data are the bundles' own generators, untouched.

The steps form a dependency graph; ``--jobs N`` runs up to N at once (steps that share a checkpoint folder never run
together). Each step logs to ``<work>/<dataset>/logs/<step>.log``; a finished step leaves
``<work>/<dataset>/steps/<step>.json``, so running the same command again resumes after the last finished step (delete
the work folder to start over; a step interrupted midway starts again from its beginning).

Examples (RIGA-like, reduced: 128 px images, 20 epochs; about 15 minutes on 2 shared CPU cores; HECKTOR-like, 200
epochs, two steps at a time: about 1.5 h on 2 shared cores)::

    python benchmarks/calibrated_ensembles_synthetic.py --dataset riga --epochs 20 --threads 1
    python benchmarks/calibrated_ensembles_synthetic.py --dataset hecktor --epochs 200 --threads 1 --jobs 2 \\
        --work-dir benchmarks/work/ce_synthetic
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


class Step(NamedTuple):
    """One bundle command of the sequence: its configs and overrides, the steps it needs, and its lane (steps of one
    lane share a checkpoint folder, so they never run at the same time)."""

    configs: list[str]
    overrides: dict
    needs: tuple[str, ...] = ()
    lane: str = ""


def _command(step: Step) -> list[str]:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(step.configs)]
    for key, value in step.overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return cmd


def _run(name: str, step: Step, threads: int, work: Path) -> float:
    """Run one step with its log in ``<work>/logs/<name>.log``; write ``<work>/steps/<name>.json`` when it succeeds
    (what makes a re-run skip it). Raises naming the log when the command fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log = work / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(_command(step), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"step {name} failed (exit {proc.returncode}); its log: {log}\n{tail}")
    marker = work / "steps" / f"{name}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seconds": seconds, "command": _command(step)}, indent=2) + "\n")
    return seconds


def _schedule(steps: dict[str, Step], threads: int, jobs: int, work: Path) -> dict[str, float]:
    """Run the steps in dependency order, at most ``jobs`` at a time and one per lane; a step with a marker from an
    earlier run is skipped (its recorded seconds are kept). Prints one line per start and end with the elapsed time."""
    timings: dict[str, float] = {}
    for name in steps:
        marker = work / "steps" / f"{name}.json"
        if marker.is_file():
            timings[name] = json.loads(marker.read_text())["seconds"]
            print(f"[skip] {name}: done in an earlier run ({timings[name]:.0f} s)", flush=True)
    begin = time.perf_counter()
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while len(timings) < len(steps):
            busy = {steps[n].lane for n in running.values() if steps[n].lane}
            for name, step in steps.items():
                if len(running) >= jobs:
                    break
                if name in timings or name in running.values() or (step.lane and step.lane in busy):
                    continue
                if all(dep in timings for dep in step.needs):
                    print(f"[{time.perf_counter() - begin:6.0f} s] start {name}", flush=True)
                    running[pool.submit(_run, name, step, threads, work)] = name
                    busy.add(step.lane)
            if not running:
                raise RuntimeError(f"nothing can run: {sorted(set(steps) - set(timings))}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                timings[name] = future.result()
                left = len(steps) - len(timings)
                print(
                    f"[{time.perf_counter() - begin:6.0f} s] done {name} in {timings[name]:.0f} s ({left} left)",
                    flush=True,
                )
    return timings


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("riga", "hecktor"), default="riga")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work-dir", default="/tmp/calibrated_ensembles_synthetic")
    parser.add_argument("--threads", type=int, default=1, help="torch/OMP threads per run (set explicitly)")
    parser.add_argument("--jobs", type=int, default=1, help="bundle commands run at once (each with --threads)")
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
    folds = ("fold0", "fold1", "fold2")
    steps: dict[str, Step] = {"data": Step(base, {**overrides, "run_id": "datalist"})}
    for k, fold in enumerate(folds):
        steps[f"train_{fold}"] = Step(base, {**overrides, "fold": k}, ("data",), "members")
    steps["fit"] = Step(base + [str(cfg / "fit_calibration.json")], overrides, tuple(f"train_{f}" for f in folds))
    steps["seed_ensemble"] = Step(base + [str(cfg / "seed_ensemble.json")], overrides, ("data",), "seed")
    steps["dropout"] = Step(base + [str(cfg / "dropout.json")], overrides, ("data",), "dropout")
    steps["evaluate"] = Step(
        base + [str(cfg / "evaluate_heatmaps.json")], overrides, ("fit", "seed_ensemble", "dropout")
    )
    if not args.no_lexu:
        lexu_cfg = REPO / "bundles" / f"lexu_{args.dataset}" / "configs"
        lexu = [str(lexu_cfg / "train.json"), str(lexu_cfg / "cpu_small.json")]
        lexu_over = {k: v for k, v in overrides.items() if k not in ("bundle_root", "models_dir")}
        lexu_over.update(
            bundle_root=str(REPO / "bundles" / f"lexu_{args.dataset}"),
            ckpt_dir=str(work / "lexu" / "models"),
            output_dir=str(work / "lexu" / "eval"),
        )
        # RIGA: one model, its heads fitted on the validation section; HECKTOR: the out-of-fold protocol of the
        # calibrated ensemble (folds 1 and 2 fit, fold 0 evaluates), so LEXU trains every fold.
        lexu_folds = ("",) if args.dataset == "riga" else folds
        for k, fold in enumerate(lexu_folds):
            steps[f"lexu_train{'_' + fold if fold else ''}"] = Step(
                lexu, {**lexu_over, **({"fold": k} if fold else {})}, ("data",), "lexu"
            )
        lexu_steps = tuple(n for n in steps if n.startswith("lexu_train"))
        steps["lexu_calibrate_heads"] = Step(lexu + [str(cfg / "calibrate_heads.json")], lexu_over, lexu_steps)
    timings = _schedule(steps, args.threads, args.jobs, work)
    heat = work / "eval" / ("heatmaps" if args.dataset == "riga" else "heatmaps_fold0")
    summary = json.loads((heat / "summary.json").read_text())
    md = (heat / "summary.md").read_text()
    if not args.no_lexu:
        heads = work / "lexu" / "eval" / ("heatmaps_heads" if args.dataset == "riga" else "heatmaps_heads_fold0")
        head_summary = json.loads((heads / "summary.json").read_text())
        for name, row in head_summary["methods"].items():
            summary["methods"][f"lexu_{name}"] = {**row, "prediction_from": f"lexu_{head_summary['prediction_from']}"}
        fitted_on = "the validation section" if args.dataset == "riga" else "folds 1 and 2, out of fold"
        md += f"\nLEXU (heads fitted on {fitted_on}):\n\n" + (heads / "summary.md").read_text()
    result = {
        "dataset": args.dataset,
        "overrides": overrides,
        "threads": args.threads,
        "jobs": args.jobs,
        "seconds": timings,
        **summary,
    }
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
