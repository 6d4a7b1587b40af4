"""Reproduce LEXU Table 2 / Fig. 3 and Jungo et al. Table 1, CPU-sized, on the embedded synthetic data.

Trains and evaluates, each through its real bundle configs (``python -m monai.bundle run``, one subprocess per
stage):

- RIGA-like set: ``lexu_riga``, ``layer_ensemble_riga`` (seeds ``--seeds``) and ``deep_ensemble_riga`` (seeds
  ``--de-seeds``; the paper has one DE run) with their ``cpu_small.json`` recipe, all on one shared data folder;
- Jungo et al.'s synthetic set: ``mcdropout_fusion_synthetic`` for every fusion mode x image variant;

then writes, with :mod:`monai_lexu.report`, ``table2_uncertainty.{md,csv,json}`` (with parameters and inference
time per image measured side by side in this process), ``table1_fusion.{md,csv,json}``, ``fig3_methods.png``,
``cost_hecktor.{md,json}`` (the 3D recipe networks of LEXU, LE and DE timed side by side on one 96^3 window) and
``reproduce.json`` (timings, settings) into ``--out``. Finished runs (checkpoint and evaluation JSON present) are
skipped, so the script can be resumed; ``--force`` redoes them.

``--betas`` adds LEXU runs with other DGM weights (Table 3; ``lexu_riga_beta<b>_seed<s>``, beta 5 is the
``lexu_riga_seed<s>`` run); ``--analyses`` evaluates every RIGA run again with ``--keep_head_maps true`` on the
clean test set and on copies with 50 % and 100 % of its images distorted (``<work>/analyses/<run>/level<NNN>``,
read by ``python -m monai_lexu.report``). The Jungo runs pass ``--seed`` (``--jungo-seed``) explicitly.

Example::

    python benchmarks/reproduce_tables.py                       # everything (about 1.5 h on 2 CPU cores)
    python benchmarks/reproduce_tables.py --only riga --seeds 27  # one seed of LEXU/LE plus DE
    python benchmarks/reproduce_tables.py --seeds 27 28 29 --betas 0 3 10 --beta-seeds 27 28 --analyses  # make report
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without an install, like the bundle subprocesses (cwd = REPO)
BUNDLES = REPO / "bundles"
RIGA_METHODS = {"LEXU": "lexu_riga", "LE": "layer_ensemble_riga", "DE": "deep_ensemble_riga"}
CALIBRATED = "calibrated_ensemble_riga"
# methods of the calibrated-ensemble bundle (no paper row in Table 2): run-folder name stem, training stages (config
# lists, each with its extra overrides), the weights the run writes, evaluation configs and overrides. Both evaluate
# through monai_lexu.inferers.CalibratedEnsembleInferer, so --keep_head_maps keeps the members / dropout samples.
RIGA_EXTRA: dict[str, dict] = {
    "MCD": {  # the bundle's dropout baseline: p = 0.1 after every convolution, T = 7 passes, equal weights
        "stem": f"{CALIBRATED}_dropout",
        "train": [(("train.json", "cpu_small.json", "dropout.json"), {})],
        "weights": "models/dropout/model.pt",
        "evaluate": ("train.json", "dropout.json", "evaluate.json", "cpu_small.json"),
        "eval_overrides": {
            "val_inferer#coefficients": "$monai_lexu.inferers.equal_coefficients(7, @num_structures)",
            "val_inferer#num_heads": 7,
            "val_inferer#mc_samples": 7,
        },
    },
    "CE": {  # the calibrated ensemble: base + 7 shifted members per fold (3 folds), coefficients out of fold
        "stem": CALIBRATED,
        "train": [(("train.json", "cpu_small.json"), {"fold": k}) for k in range(3)]
        + [(("train.json", "cpu_small.json", "fit_calibration.json"), {})],
        "weights": "models/calibration.json",
        "evaluate": ("train.json", "evaluate.json", "cpu_small.json"),
        "eval_overrides": {},
    },
}
FUSIONS = ("random", "majority", "staple", "union", "intersection")
NUM_THREADS = {"value": 1}  # torch threads of every bundle run (--num-threads), passed explicitly as --num_threads
VARIANTS = ("unperturbed", "perturbed")


def _configs(bundle: str, *names: str) -> str:
    files = [str(BUNDLES / bundle / "configs" / n) for n in names]
    return "[" + ",".join(f"'{f}'" for f in files) + "]"


def _run_bundle(config_files: str, overrides: dict[str, object], log: Path) -> float:
    """Run ``python -m monai.bundle run`` with overrides; its output goes to ``log``. Returns seconds."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_files]
    overrides = {"num_threads": NUM_THREADS["value"], **overrides}
    for key, value in overrides.items():
        cmd += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}); last lines of {log}:\n{tail}")
    return time.perf_counter() - start


def _resume(ckpt_dir: Path) -> dict[str, object]:
    """``{"resume": True}`` when a stopped training left ``ckpt_dir/checkpoint.pt`` (on CPU a resumed training ends
    with the weights of an uninterrupted one, see monai_lexu.handlers.ResumableCheckpoint), else nothing."""
    return {"resume": True} if (ckpt_dir / "checkpoint.pt").is_file() else {}


def _train_and_evaluate(
    bundle: str, run_dir: Path, overrides: dict[str, object], eval_json: str, force: bool, extra: Sequence[str] = ()
) -> dict[str, float]:
    """Train (``train.json`` + ``extra``) then evaluate one run into ``run_dir``; skipped when already done."""
    ckpt, out = run_dir / "models", run_dir / "eval"
    over = {**overrides, "ckpt_dir": str(ckpt), "output_dir": str(out)}
    timing: dict[str, float] = {}
    if force or not (ckpt / "model.pt").is_file():
        resume = {} if force else _resume(ckpt)
        print(f"  train {run_dir.name}{' (resumed)' if resume else ''} ...", flush=True)
        log = run_dir / ("train_resumed.log" if resume else "train.log")  # the first log keeps the start
        timing["train_s"] = _run_bundle(_configs(bundle, "train.json", *extra), {**over, **resume}, log)
    if force or not (out / eval_json).is_file():
        print(f"  evaluate {run_dir.name} ...", flush=True)
        timing["evaluate_s"] = _run_bundle(
            _configs(bundle, "train.json", "evaluate.json", *extra), over, run_dir / "evaluate.log"
        )
    if timing:
        print(f"  {run_dir.name}: " + ", ".join(f"{k} {v:.0f}" for k, v in timing.items()), flush=True)
    return timing


def reproduce_riga(
    work: Path,
    out: Path,
    seeds: Sequence[int],
    de_seeds: Sequence[int],
    force: bool,
    methods: Sequence[str] = tuple(RIGA_METHODS),
    betas: Sequence[float] = (),
    analyses: bool = False,
    beta_seeds: Sequence[int] | None = None,
    extra: Sequence[str] = (),
    extra_seeds: Sequence[int] = (27,),
) -> dict:
    """Train/evaluate ``methods`` (of LEXU, LE, DE) on the RIGA-like set; write Table 2 and Fig. 3.

    ``extra`` (of :data:`RIGA_EXTRA`: ``MCD``, ``CE``) trains and evaluates those methods of the calibrated-ensemble
    bundle too (seeds ``extra_seeds``; with ``analyses``, their per-sample/member maps clean and distorted).

    The cost columns (parameters, time per image) are always measured for all three methods side by side.
    """
    from monai_lexu.report import bundle_inference_cost, expand_runs, uncertainty_table, write_table

    data = work / "data" / "riga"
    timings: dict[str, dict[str, float]] = {}
    runs: dict[str, list[Path]] = {}
    for name, bundle in RIGA_METHODS.items():
        if name not in methods:
            continue
        for seed in de_seeds if name == "DE" else seeds:
            run_dir = work / "runs" / f"{bundle}_seed{seed}"
            print(f"[riga] {name} seed {seed}", flush=True)
            timings[run_dir.name] = _train_and_evaluate(
                bundle,
                run_dir,
                {"dataset_dir": str(data), "seed": seed, "make_synthetic": True},
                "metrics_test.json",
                force,
                ["cpu_small.json"],
            )
            runs.setdefault(name, []).append(run_dir / "eval" / "metrics_test.json")
    for beta in betas if "LEXU" in methods else ():  # Table 3: the DGM weight (beta 5 is the LEXU run itself)
        for seed in seeds if beta_seeds is None else beta_seeds:
            run_dir = work / "runs" / f"lexu_riga_beta{beta:g}_seed{seed}"
            print(f"[riga] LEXU beta {beta:g} seed {seed}", flush=True)
            timings[run_dir.name] = _train_and_evaluate(
                "lexu_riga",
                run_dir,
                {"dataset_dir": str(data), "seed": seed, "beta": beta, "make_synthetic": True},
                "metrics_test.json",
                force,
                ["cpu_small.json"],
            )
    for name in extra:
        for seed in extra_seeds:
            run_dir = work / "runs" / f"{RIGA_EXTRA[name]['stem']}_seed{seed}"
            print(f"[riga] {name} seed {seed}", flush=True)
            timings[run_dir.name] = _extra_train_and_evaluate(name, run_dir, data, seed, force)
    if analyses:
        for run_dir in sorted((work / "runs").glob("*_riga_seed*")):  # Table 2's runs (not the beta sweep)
            if run_dir.name.startswith(CALIBRATED):
                continue
            if (run_dir / "models" / "model.pt").is_file():
                timings[run_dir.name + "_analyses"] = _analysis_evaluations(work, run_dir, data, force)
        for name in extra:
            spec = RIGA_EXTRA[name]
            for seed in extra_seeds:
                run_dir = work / "runs" / f"{spec['stem']}_seed{seed}"
                if (run_dir / spec["weights"]).is_file():
                    timings[run_dir.name + "_analyses"] = _analysis_evaluations(
                        work,
                        run_dir,
                        data,
                        force,
                        configs=_configs(CALIBRATED, *spec["evaluate"]),
                        overrides={"models_dir": str(run_dir / "models"), **spec["eval_overrides"]},
                    )
    runs_by_method = {name: expand_runs([str(p) for p in paths]) for name, paths in runs.items()}
    print("[riga] measuring parameters and inference time side by side", flush=True)
    costs = bundle_inference_cost(
        {
            name: [BUNDLES / b / "configs" / "train.json", BUNDLES / b / "configs" / "cpu_small.json"]
            for name, b in RIGA_METHODS.items()
        },
        input_shape=(3, 128, 128),
        repeats=20,
        warmup=2,
    )
    runs_by_method.update({name: [] for name in RIGA_METHODS if name not in runs_by_method})  # cost only
    rows, records = uncertainty_table(runs_by_method, costs=costs)
    caption = (
        "RIGA-like synthetic set (monai_lexu.datasets.riga.synthetic), CPU recipe (cpu_small.json: plain U-Net "
        f"16-256, 128x128, 60 epochs, lr 1e-3). Trained: {', '.join(n for n in RIGA_METHODS if n in methods)}; "
        f"LEXU/LE seeds {list(seeds)}, DE seeds {list(de_seeds)} (5 members); a method with 0 runs has its cost only. "
        "Mean ± std over runs of each run's value on the Magrabia-like test set. Parameters and median inference "
        "seconds per 128x128 image (20 interleaved repeats, batch 1, CPU) measured side by side in one process."
    )
    write_table(rows, records, out, "table2_uncertainty", "LEXU Table 2 on the RIGA-like set", caption)
    _figure(work, out, seeds[0] if seeds else de_seeds[0], de_seeds[0], [m for m in RIGA_METHODS if m in methods])
    return {"timings": timings, "costs": costs}


def _extra_train_and_evaluate(name: str, run_dir: Path, data: Path, seed: int, force: bool) -> dict[str, float]:
    """Train (every stage of :data:`RIGA_EXTRA` ``[name]``) then evaluate one run; finished stages are skipped."""
    spec = RIGA_EXTRA[name]
    over = {
        "dataset_dir": str(data),
        "seed": seed,
        "make_synthetic": True,
        "models_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
    }
    timing: dict[str, float] = {}
    if force or not (run_dir / spec["weights"]).is_file():
        for i, (configs, extra) in enumerate(spec["train"]):
            done = run_dir / f"train{i}.done"
            if done.is_file() and not force:
                continue
            ckpt = run_dir / spec["weights"].rsplit("/", 1)[0]  # MCD: models/dropout; CE: models[/fold<k>]
            if extra.get("fold"):
                ckpt = run_dir / "models" / f"fold{extra['fold']}"
            resume = {} if force or "fit_calibration.json" in configs else _resume(ckpt)
            note = " (resumed)" if resume else ""
            print(f"  train {run_dir.name} stage {i + 1}/{len(spec['train'])}{note} ...", flush=True)
            log = run_dir / (f"train{i}_resumed.log" if resume else f"train{i}.log")
            timing[f"train{i}_s"] = _run_bundle(_configs(CALIBRATED, *configs), {**over, **extra, **resume}, log)
            done.write_text(f"{timing[f'train{i}_s']:.1f}\n")
    if force or not (run_dir / "eval" / "metrics_test.json").is_file():
        print(f"  evaluate {run_dir.name} ...", flush=True)
        timing["evaluate_s"] = _run_bundle(
            _configs(CALIBRATED, *spec["evaluate"]), {**over, **spec["eval_overrides"]}, run_dir / "evaluate.log"
        )
    if timing:
        print(f"  {run_dir.name}: " + ", ".join(f"{k} {v:.0f}" for k, v in timing.items()), flush=True)
    return timing


def _analysis_evaluations(
    work: Path,
    run_dir: Path,
    data: Path,
    force: bool,
    seed: int = 0,
    configs: str | None = None,
    overrides: dict[str, object] | None = None,
) -> dict[str, float]:
    """Evaluate one trained run with every head's maps kept, on the clean and the 50 % / 100 % distorted test set.

    ``configs`` (default: the run's bundle's ``train.json``, ``evaluate.json``, ``cpu_small.json``) and
    ``overrides`` (added to the data set, checkpoint and output folders) serve the calibrated-ensemble methods.
    """
    import shutil

    from monai_lexu.report.analyses import DISTORTION_LEVELS, level_name, write_distorted_dataset

    bundle = run_dir.name.split("_seed")[0].split("_beta")[0]
    if configs is None:
        configs = _configs(bundle, "train.json", "evaluate.json", "cpu_small.json")
    timing: dict[str, float] = {}
    for level in DISTORTION_LEVELS:
        out = work / "analyses" / run_dir.name / level_name(level)
        if not force and (out / "metrics_test.json").is_file():
            continue
        dataset = data
        if level > 0:
            dataset = work / "analyses" / "data" / f"{level_name(level)}_seed{seed}"
            write_distorted_dataset(data, dataset, level, seed)
        over = {
            "dataset_dir": str(dataset),
            "ckpt_dir": str(run_dir / "models"),
            "output_dir": str(out),
            "keep_head_maps": True,
        }
        if overrides:  # the calibrated bundle derives its checkpoint folder from models_dir
            over = {k: v for k, v in over.items() if k != "ckpt_dir"} | overrides
        print(f"  evaluate {run_dir.name} at {level_name(level)} (per-head maps) ...", flush=True)
        timing[level_name(level)] = _run_bundle(configs, over, out.parent / f"{out.name}.log")
        if level > 0:
            shutil.copyfile(dataset / "distortion.json", out / "distortion.json")
    return timing


def _figure(work: Path, out: Path, seed: int, de_seed: int, methods: Sequence[str]) -> None:
    from monai_lexu.report import load_case_maps, plot_method_comparison

    folders = {
        name: work / "runs" / f"{bundle}_seed{de_seed if name == 'DE' else seed}" / "eval" / "metrics_test_maps"
        for name, bundle in RIGA_METHODS.items()
        if name in methods
    }
    common = set.intersection(*({p.stem for p in f.glob("*.npz")} for f in folders.values()))
    if not common:
        print("[riga] no common saved case maps: figure skipped", flush=True)
        return
    # the case where the raters disagree most: the figure is about disagreement
    first = next(iter(folders.values()))
    case = max(sorted(common), key=lambda c: float(load_case_maps(first / f"{c}.npz")["rater_var"].sum()))
    maps = {name: load_case_maps(f / f"{case}.npz") for name, f in folders.items()}
    plot_method_comparison(maps, out / "fig3_methods.png", ["disc", "cup"], title=f"RIGA-like test image {case}")


def reproduce_jungo(work: Path, out: Path, force: bool, seed: int = 27) -> dict:
    """Train/evaluate the MC-dropout U-Net for every fusion mode and image variant; write Table 1."""
    from monai_lexu.report import fusion_table, load_evaluation, write_table

    data = work / "data" / "jungo_64"
    timings, runs = {}, {}
    for variant in VARIANTS:
        for fusion in FUSIONS:
            run_dir = work / "runs" / f"mcdropout_{fusion}_{variant}"
            print(f"[jungo] {fusion} / {variant}", flush=True)
            timings[run_dir.name] = _train_and_evaluate(
                "mcdropout_fusion_synthetic",
                run_dir,
                {
                    "dataset_dir": str(data),
                    "fusion": fusion,
                    "image_variant": variant,
                    "seed": seed,
                    "make_synthetic": True,  # a fresh work folder: generated once, then read as is
                },
                "metrics_test.json",
                force,
                ["cpu_small.json"],
            )
            runs[(fusion, variant)] = load_evaluation(run_dir / "eval" / "metrics_test.json")
    ordered = {(f, v): runs[(f, v)] for f in FUSIONS for v in VARIANTS}
    rows, records = fusion_table(ordered)
    caption = (
        "Jungo et al. 2018 synthetic set, CPU recipe (cpu_small.json: 100 samples of 64x64 instead of 128x128, 80 "
        "training / 20 test; 60 epochs instead of 100), MC-dropout U-Net (16 filters, 2 poolings, p = 0.2, Adam 1e-3, "
        f"batch 8), T = 20, training seed {seed}. Mean ± std over the 20 test images; 'random' = no fusion (a random "
        "rater per sample)."
    )
    write_table(rows, records, out, "table1_fusion", "Jungo et al. Table 1 on the synthetic set", caption)
    return {"timings": timings}


def cost_hecktor(out: Path, repeats: int = 3) -> dict:
    """Parameters and time of the 3D recipe networks (train.json, not cpu_small) of LEXU, LE and DE, side by side.

    Input: one 96^3 two-channel window (the recipe's sliding-window roi), so the figures are per window; a
    whole HECKTOR volume is about 27 such windows at overlap 0.5 (see benchmarks/results/inference_3d.json).
    """
    from monai_lexu.report import bundle_inference_cost, markdown_table, write_markdown

    bundles = {"LEXU": "lexu_hecktor", "LE": "layer_ensemble_hecktor", "DE": "deep_ensemble_hecktor"}
    print("[hecktor] parameters and time per 96^3 window of the 3D recipe networks", flush=True)
    costs = bundle_inference_cost(
        {name: [BUNDLES / b / "configs" / "train.json"] for name, b in bundles.items()},
        input_shape=(2, 96, 96, 96),
        repeats=repeats,
        warmup=1,
        overrides={name: {"sw_batch_size": 1} for name in bundles},
    )
    rows = [
        {
            "method": name,
            "params (M)": f"{c['parameters'] / 1e6:.2f}",
            "x LEXU params": f"{c['parameters'] / costs['LEXU']['parameters']:.2f}",
            "s / window": f"{c['seconds_per_image']:.2f}",
            "x LEXU time": f"{c['seconds_per_image'] / costs['LEXU']['seconds_per_image']:.2f}",
        }
        for name, c in costs.items()
    ]
    write_markdown(
        out / "cost_hecktor.md",
        "# 3D recipe networks (HECKTOR bundles' train.json), measured side by side\n\n"
        f"One 2x96x96x96 window (the sliding-window roi), batch 1, CPU, median of {repeats} interleaved repeats.\n\n"
        + markdown_table(rows),
    )
    (out / "cost_hecktor.json").write_text(json.dumps(costs, indent=2))
    return costs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work", default=str(REPO / "benchmarks" / "work"), help="runs and data (default benchmarks/work)"
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "reproduce"), help="tables and figure")
    parser.add_argument("--seeds", type=int, nargs="+", default=[27, 28], help="LEXU/LE seeds (default 27 28)")
    parser.add_argument("--de-seeds", type=int, nargs="+", default=[27], help="DE seeds (default 27, as the paper)")
    parser.add_argument(
        "--methods", nargs="+", choices=tuple(RIGA_METHODS), default=list(RIGA_METHODS), help="RIGA methods to train"
    )
    parser.add_argument("--betas", type=float, nargs="*", default=[], help="extra LEXU DGM weights (Table 3)")
    parser.add_argument(
        "--beta-seeds", type=int, nargs="+", default=None, help="seeds of the beta runs (default --seeds)"
    )
    parser.add_argument("--analyses", action="store_true", help="per-head-map evaluations, clean and distorted")
    parser.add_argument(
        "--extra",
        nargs="*",
        choices=tuple(RIGA_EXTRA),
        default=[],
        help="calibrated-ensemble bundle methods on the RIGA-like set too: MCD (its MC-dropout baseline), CE",
    )
    parser.add_argument("--extra-seeds", type=int, nargs="+", default=[27], help="seeds of --extra (default 27)")
    parser.add_argument("--jungo-seed", type=int, default=27, help="training seed of the Jungo runs (default 27)")
    parser.add_argument("--only", choices=("riga", "jungo", "cost3d"), default=None, help="run one part only")
    parser.add_argument("--force", action="store_true", help="retrain and re-evaluate finished runs")
    parser.add_argument(
        "--num-threads", type=int, default=1, help="torch threads of this process and of every bundle run (default 1)"
    )
    args = parser.parse_args(argv)
    if args.num_threads < 1:
        parser.error(f"--num-threads must be >= 1, got {args.num_threads}")
    NUM_THREADS["value"] = args.num_threads
    import torch

    torch.set_num_threads(args.num_threads)
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result: dict[str, object] = {"seeds": args.seeds, "de_seeds": args.de_seeds}
    if args.only in (None, "riga"):
        result["riga"] = reproduce_riga(
            work,
            out,
            args.seeds,
            args.de_seeds,
            args.force,
            args.methods,
            args.betas,
            args.analyses,
            args.beta_seeds,
            args.extra,
            args.extra_seeds,
        )
    if args.only in (None, "jungo"):
        result["jungo"] = reproduce_jungo(work, out, args.force, args.jungo_seed)
    if args.only in (None, "cost3d"):
        result["cost3d"] = cost_hecktor(out)
    result["total_s"] = time.perf_counter() - start
    (out / f"reproduce{'_' + args.only if args.only else ''}.json").write_text(json.dumps(result, indent=2))
    for part, name in (("riga", "table2_uncertainty.md"), ("jungo", "table1_fusion.md"), ("cost3d", "cost_hecktor.md")):
        if args.only in (None, part):
            print((out / name).read_text())
    print(f"done in {result['total_s'] / 60:.1f} min; outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
