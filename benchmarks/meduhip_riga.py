"""MedUHIP on the RIGA-like optic cup (issue 14, acceptance): Dice after k, Table 1, Table 3 (NoC), Table 4, a figure.

Per training seed: the CPU recipe of ``bundles/meduhip_riga`` (``configs/cpu_small.json``: 64 x 64 disc crops, the
small network, ``iterations`` training iterations of batch 8, 3 interaction rounds each) is trained on RIGA-like
synthetic images (``monai_lexu.datasets.riga.make_riga_like_sample``, 6 raters with set-wide rater biases, the cup),
built in memory (same generator and sizes as the bundle's synthetic fallback; data seed fixed, training seed
varies); then every test case is run through the interaction loop (``monai_lexu.interactive.run_interaction``):

* Dice after k = 0..6 per strategy (target: a random subset of 1..6 raters per case, majority-fused);
* Table 1: Dice after 3 interactions, columns = number of raters fused into the target (1..6), rows = strategies;
* Table 3: NoC at Dice thresholds (at most 6 interactions, 10 when not reached) per strategy;
* Table 4: MedUHIP's strategy with the sampling space fixed / + mean-variance / + weight / full (Dice after 0/3/6);
  (all from ``monai_lexu.interactive.evaluate_interactive``, the bundle's evaluate.json computes the same)
* a figure following one test case (image and clicks, the K candidate regions with the selected one, P_soft
  against the target, per step).

Results: ``benchmarks/results/meduhip_riga.json`` (per seed and mean ± std over seeds) and
``benchmarks/results/meduhip_riga_case.png``.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/meduhip_riga.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from monai_lexu.datasets.riga import make_riga_like_sample
from monai_lexu.interactive import (
    evaluate_interactive,
    meduhip_train_step,
    plot_interaction_case,
    rater_subset_target,
)
from monai_lexu.networks import MedUHIPNet

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: the CPU recipe (kept equal to bundles/meduhip_riga/configs/train.json + cpu_small.json)
RECIPE = {
    "size": 64,
    "network": {
        "features": [16, 32, 64],
        "embed_dim": 32,
        "num_samples": 8,
        "num_components": 4,
        "sample_dim": 8,
        "decoder_depth": 2,
    },
    "batch_size": 8,
    "rounds": 3,
    "num_candidates": 4,
    "learning_rate": 1e-3,
}
MEAN = np.array([0.485, 0.456, 0.406])[:, None, None]
STD = np.array([0.229, 0.224, 0.225])[:, None, None]


def make_set(n: int, seed: int, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` RIGA-like crops: images ``(n, 3, S, S)`` normalised as the bundle does, cup raters ``(n, 6, S, S)``."""
    rng = np.random.default_rng(seed)
    bias = np.random.default_rng(1000).normal(0.0, 0.5, 6)  # one set of rater biases for train and test
    images, cups = [], []
    for _ in range(n):
        s = make_riga_like_sample(rng, size=size, rater_bias=bias)
        images.append((s["image"].transpose(2, 0, 1) / 255.0 - MEAN) / STD)
        cups.append(s["cup"].astype(np.float32))
    return torch.as_tensor(np.stack(images), dtype=torch.float32), np.stack(cups)


def train(seed: int, images: torch.Tensor, raters: np.ndarray, iterations: int) -> tuple[MedUHIPNet, list]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = MedUHIPNet(in_channels=3, seed=seed, **RECIPE["network"])
    opt = torch.optim.Adam(net.parameters(), lr=RECIPE["learning_rate"])
    rat = torch.as_tensor(raters)
    log = []
    for it in range(iterations):
        idx = rng.choice(len(images), RECIPE["batch_size"], replace=False)
        out = meduhip_train_step(
            net, opt, images[idx], rat[idx], rounds=RECIPE["rounds"], num_candidates=RECIPE["num_candidates"], rng=rng
        )
        if it % 50 == 0 or it == iterations - 1:
            log.append({"iteration": it, **{k: round(v, 5) for k, v in out.items()}})
            print(f"seed {seed} it {it}: {log[-1]}", flush=True)
    return net.eval(), log


def _mean_std(values: list) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def summarise(per_seed: list[dict]) -> dict:
    """Mean ± std over seeds of every number in the per-seed records (same nesting)."""

    def walk(items):
        first = items[0]
        if isinstance(first, dict):
            return {k: walk([it[k] for it in items]) for k in first}
        if isinstance(first, list):
            return [walk([it[j] for it in items]) for j in range(len(first))]
        return _mean_std(items)

    return walk([p["eval"] for p in per_seed])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--train", type=int, default=96)
    ap.add_argument("--test", type=int, default=32)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.85, 0.9])
    ap.add_argument("--output", default=str(RESULTS / "meduhip_riga.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    size = RECIPE["size"]
    x_tr, r_tr = make_set(args.train, 0, size)
    x_te, r_te = make_set(args.test, 1, size)
    out = {"recipe": RECIPE, "args": vars(args), "load_before": os.getloadavg()[0], "per_seed": []}
    for seed in args.seeds:
        t0 = time.process_time()
        w0 = time.time()
        net, log = train(seed, x_tr, r_tr, args.iterations)
        t1 = time.process_time()
        weights = ROOT / "benchmarks" / "work" / f"meduhip_riga_seed{seed}.pt"  # not committed (gitignored)
        weights.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), weights)
        with torch.no_grad():
            ev = evaluate_interactive(net, list(x_te), list(r_te), seed, args.thresholds)
        out["per_seed"].append(
            {
                "seed": seed,
                "train_log": log,
                "eval": ev,
                "train_cpu_s": t1 - t0,
                "eval_cpu_s": time.process_time() - t1,
                "wall_s": time.time() - w0,
            }
        )
        print(json.dumps({"seed": seed, "eval": ev}, indent=1), flush=True)
        if seed == args.seeds[0]:
            case = min(3, len(x_te) - 1)
            tgt = rater_subset_target(r_te[case], 3, np.random.default_rng(5))[0]
            rgb = np.clip(x_te[case].numpy() * STD + MEAN, 0, 1).transpose(1, 2, 0)
            dice = plot_interaction_case(
                net, x_te[case], r_te[case], tgt, RESULTS / "meduhip_riga_case.png", steps=4, display=rgb
            )
            out["figure_case"] = {"case": case, "raters_fused": 3, "dice": dice}
    out["summary"] = summarise(out["per_seed"])
    out["load_after"] = os.getloadavg()[0]
    path = Path(args.output)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
