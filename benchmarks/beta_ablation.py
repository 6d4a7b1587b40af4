"""Table 3 of the LEXU paper on the embedded data: the effect of the DGM weight beta, measured in one run.

Trains and evaluates the lexu_riga bundle once per (beta, seed) with the same configs and overrides (by default
the CPU-sized recipe on the synthetic RIGA-like set), then collects every run's test-set table into one JSON file
and prints a Markdown table of SR, DC, NCC, soft Dice and NLL per structure (mean ± std over seeds).
beta = 0 with MRO still on is the paper's "beta = 0" row.

Example (about 5 minutes per run on 2 CPU cores)::

    python benchmarks/beta_ablation.py --betas 0 5 --seeds 27 28 --epochs 60
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from monai_lexu.report import markdown_table, mean_std

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "lexu_riga" / "configs"
METRICS = ("SR", "DC", "NCC", "soft_dice", "NLL")


def _run(configs: list[str], overrides: dict) -> None:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(configs)]
    for key, value in overrides.items():
        cmd += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 5.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[27])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--override", default=str(CONFIGS / "cpu_small.json"), help="override config ('' for none)")
    parser.add_argument("--dataset-dir", default=str(REPO / "bundles" / "lexu_riga" / "data" / "riga"))
    parser.add_argument("--work-dir", default="/tmp/lexu_beta_ablation")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "beta_ablation.json"))
    args = parser.parse_args(argv)
    extra = [args.override] if args.override else []
    runs = []
    for beta in args.betas:
        for seed in args.seeds:
            out = Path(args.work_dir) / f"beta{beta:g}_seed{seed}"
            overrides = {
                "beta": beta,
                "seed": seed,
                "epochs": args.epochs,
                "dataset_dir": args.dataset_dir,
                "ckpt_dir": str(out),
                "output_dir": str(out),
            }
            start = time.perf_counter()
            _run([str(CONFIGS / "train.json"), *extra], overrides)
            train_s = time.perf_counter() - start
            _run([str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json"), *extra], overrides)
            result = json.loads((out / "metrics_test.json").read_text())
            runs.append({"beta": beta, "seed": seed, "train_seconds": train_s, **result})
            print(f"beta={beta:g} seed={seed}: {json.dumps(result['mean'])}", flush=True)
    structures = list(runs[0]["mean"])
    rows = []
    for beta in args.betas:
        row: dict[str, object] = {"beta": f"{beta:g}"}
        for metric in METRICS:
            for s in structures:
                row[f"{metric} {s}"] = mean_std([r["mean"][s][metric] for r in runs if r["beta"] == beta])
        rows.append(row)
    table = markdown_table(rows)
    summary = {"config": vars(args), "runs": runs, "table_markdown": table}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(summary, indent=2))
    print(table)
    return summary


if __name__ == "__main__":
    main()
