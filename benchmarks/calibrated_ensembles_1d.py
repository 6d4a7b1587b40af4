"""Fig. 1 of Buddenkotte et al. in 1-D: a seed ensemble vs a calibrated ensemble against the classification probability.

Two classes, ``x ~ N(-1, 1)`` (class 0) and ``x ~ N(1, 1)`` (class 1), 1000 samples each; the analytic
classification probability is ``P(x in C1) = p1 / (p0 + p1) = sigmoid(2x)``.

Setup, following the reference's own script for this figure (``minimal_examples_UQ.py`` of ThomasBudd/ovseg, branch
``my_branch``) where the paper is silent:

- **Classifier**: logistic regression ``sigmoid(a x + b)`` (the reference: ``torch.nn.Linear(1, 2)`` + softmax, the
  same model class), zero-initialised, so one decision boundary ``x = -b / a`` per model.
- **Training, stopped early**: plain SGD, minibatches of half the training set drawn without replacement every step,
  a linear warm-up of 50 steps to ``lr = 0.01`` and 1000 steps of cosine decay to 0 (the reference's schedule).
  Deliberate difference: the gradient is zeroed every step; the reference never calls ``zero_grad`` (its gradients
  accumulate over the whole run, an undamped momentum), which we take for a bug.
- **Loss**: the paper's ``L_w`` (Eq. 1, :class:`monai_lexu.losses.ParametricCalibrationLoss`'s terms, one minibatch
  as one "image"). The reference script uses a per-sample Dice variant with the weights swapped and a weight-normalised
  CE; we test the method of the paper, i.e. Eq. 1.
- **Seed ensemble** (the paper's uncalibrated ensemble): ``K = 7`` models at ``w_DSC = 0`` (the reference script:
  ``W = zeros``), differing by their minibatch draws (zero init, as the reference), trained on all data; heatmap =
  mean of their binary predictions (the paper's uncalibrated heatmap).
- **Calibrated ensemble**: members at ``w = w_DSC + delta``, ``delta in {-3, ..., 3}`` (the reference script:
  ``W = linspace(-3, 3, 7)``). ``--recipe scratch`` (default, the reference script): every member trains its whole
  schedule at its ``w``. ``--recipe branch`` (the paper's segmentation recipe): one base model at ``w_DSC`` for the
  first 3/4 of the steps, then each member continues it (weights; plain SGD has no state) at its ``w`` for the last
  quarter. Both: 4 cross-validation folds; the members' out-of-fold binary predictions of the training set give the
  coefficients ``a`` (:func:`monai_lexu.inferers.fit_ensemble_coefficients`, Eq. 2: least squares over the occurring
  vote patterns, rows ``n_b * b`` against ``t_b``, all-zero pattern excluded; binary class labels as the target);
  at test time member ``k`` is the four fold models' mean probability thresholded at 0.5 (the reference's 4-fold
  ``SegmentationEnsemble``) and ``h = sum_k a_k s_k`` (Eq. 3). The reference script does not fit ``a`` (its
  "calibrated ensemble" is the plain mean of the members' probabilities); that curve is reported as
  ``calibrated_mean_prob`` for information, with ``seed_mean_prob`` likewise.
- **w_DSC**: 0 by default (the reference script); ``--w-dsc cv`` is the paper's choice, the ``w`` with the highest
  mean Dice in cross-validation (:func:`choose_w_dsc`: the same 4 folds, -3..3 in steps of 0.5, per repeat).
- **Evaluation**: ``|h - P|`` on a uniform grid of ``[-3, 3]`` (the reference's plotting range; 601 points): L1 = its
  mean, and its maximum. Also reported: the grid ``[-4, 4]`` and the mean weighted by the data density
  ``(p0 + p1) / 2``. Repeated over ``--repeats`` seeds (data, fold split and minibatch draws); the acceptance figure
  is the ratio of the calibrated to the seed ensemble's L1, per repeat and as mean +- sd.

Earlier version (before this setup was aligned with the reference script): a 1-8-1 tanh MLP with random init,
full-batch Adam, 800 steps, one seed, grid ``[-4, 4]``: ratio 0.361. The asymmetry found then still holds: ``L_w``'s
decision boundary is not symmetric in ``w`` (the CE term alone would put it at ``w / 2``; the Dice term counts only
foreground overlap), so the precise end of ``delta = -3..3`` stops short of the sensitive end's mirror image.

Single-threaded torch; all members of an ensemble train at once as one vectorised model (each receives exactly the
gradient it would get alone). About 10 s per repeat on one core.

Example::

    python benchmarks/calibrated_ensembles_1d.py                  # 10 repeats, recipe scratch
    python benchmarks/calibrated_ensembles_1d.py --recipe branch --output /tmp/fig1_branch.json
    python benchmarks/calibrated_ensembles_1d.py --w-dsc cv --output results/calibrated_ensembles_1d_wdsc_cv.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from monai_lexu.inferers import calibrated_heatmap, fit_ensemble_coefficients
from monai_lexu.losses.parametric import parametric_loss

RESULTS = Path(__file__).resolve().parent / "results"
GRIDS = {"grid_3": (-3.0, 3.0, 601), "grid_4": (-4.0, 4.0, 801)}


def _lr(step: int, warmup: int, decay: int, lr_max: float) -> float:
    """The reference's schedule: linear warm-up to ``lr_max``, then cosine decay to 0."""
    if step < warmup:
        return lr_max * (step + 1) / warmup
    return lr_max * math.cos(math.pi / 2 * (step - warmup) / decay)


def train_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    w: list[float],
    g: torch.Generator,
    steps: tuple[int, int] = (50, 1000),
    lr: float = 0.01,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    step_range: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train ``K = len(w)`` logistic regressions at once with plain minibatch SGD on ``L_w``.

    Args:
        x: ``(N,)`` samples; y: ``(N,)`` labels in {0, 1}.
        w: loss weight per model.
        g: generator for the minibatch draws (each model draws its own half of the data every step).
        steps: (warm-up, cosine-decay) steps of the schedule.
        lr: peak learning rate.
        start: initial ``(slope (K,), bias (K,))``; default zeros.
        step_range: the steps ``[s0, s1)`` of the schedule to run (default all).

    Returns:
        ``(slope (K,), bias (K,))``.
    """
    k, n = len(w), x.numel()
    bs = n // 2
    a = torch.zeros(k) if start is None else start[0].clone()
    b = torch.zeros(k) if start is None else start[1].clone()
    a.requires_grad_(True)
    b.requires_grad_(True)
    total = sum(steps)
    s0, s1 = step_range or (0, total)
    for step in range(s0, s1):
        idx = torch.rand(k, n, generator=g).argsort(1)[:, :bs]
        z = (a[:, None] * x[idx] + b[:, None])[None]  # (1, K, bs): model k = "structure" k
        ce, dice = parametric_loss(z, y[idx][None], w)
        loss = k * (ce + dice)  # = sum_k L_{w_k}(model k): the CE and the Dice are means over the K models
        ga, gb = torch.autograd.grad(loss, (a, b))
        with torch.no_grad():
            rate = _lr(step, steps[0], steps[1], lr)
            a -= rate * ga
            b -= rate * gb
    return a.detach(), b.detach()


def _prob(model: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> np.ndarray:
    a, b = model
    return torch.sigmoid(a[:, None] * x[None] + b[:, None]).numpy()  # (K, N)


def _sample(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.cat([torch.randn(n, generator=g) - 1.0, torch.randn(n, generator=g) + 1.0])
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    return x, y


def _errors(h: np.ndarray, grid: np.ndarray) -> dict[str, float]:
    p = 1.0 / (1.0 + np.exp(-2.0 * grid))
    dens = 0.5 * (np.exp(-0.5 * (grid + 1) ** 2) + np.exp(-0.5 * (grid - 1) ** 2)) / math.sqrt(2 * math.pi)
    err = np.abs(h - p)
    return {"l1": float(err.mean()), "l1_density": float(np.sum(err * dens) / np.sum(dens)), "max": float(err.max())}


W_DSC_CANDIDATES = tuple(float(v) for v in np.linspace(-3.0, 3.0, 13))
"""The ``--w-dsc cv`` sweep: -3 .. 3 in steps of 0.5."""


def choose_w_dsc(
    x: torch.Tensor,
    y: torch.Tensor,
    fold_of: torch.Tensor,
    g: torch.Generator,
    steps: tuple[int, int],
    lr: float,
    candidates: tuple[float, ...] = W_DSC_CANDIDATES,
) -> tuple[float, list[float]]:
    """The paper's choice of ``w_DSC``: the ``w`` whose models have the highest mean Dice in cross-validation.

    For every fold one model per candidate trains on the other folds (all candidates at once, the same schedule as
    the ensembles) and predicts the held-out fold (``sigmoid >= 0.5``); Dice of class 1 per fold
    (``2 TP / (2 TP + FP + FN)``), averaged over the folds; the first maximum wins.

    Returns:
        ``(w_DSC, mean Dice per candidate)``.
    """
    folds = int(fold_of.max()) + 1
    dice = np.zeros(len(candidates))
    for f in range(folds):
        tr, te = fold_of != f, fold_of == f
        pred = _prob(train_logistic(x[tr], y[tr], list(candidates), g, steps, lr), x[te]) >= 0.5  # (C, N_te)
        t = y[te].numpy().astype(bool)[None]
        tp, fp, fn = (pred & t).sum(1), (pred & ~t).sum(1), (~pred & t).sum(1)
        dice += 2 * tp / np.maximum(2 * tp + fp + fn, 1) / folds
    return float(candidates[int(np.argmax(dice))]), dice.tolist()


def run_once(
    seed: int,
    samples: int = 1000,
    members: int = 7,
    shifts: tuple[float, ...] = (-3, -2, -1, 0, 1, 2, 3),
    steps: tuple[int, int] = (50, 1000),
    lr: float = 0.01,
    folds: int = 4,
    w_dsc: float | None = 0.0,
    recipe: str = "scratch",
) -> dict:
    """One repeat: both ensembles, their heatmaps on the grids and their errors (see the module docstring).

    ``w_dsc=None`` chooses it by :func:`choose_w_dsc` on this repeat's folds; the seed ensemble and the calibrated
    ensemble's shifts then both use it."""
    g = torch.Generator().manual_seed(seed)
    x, y = _sample(samples, g)
    grids = {name: np.linspace(lo, hi, num) for name, (lo, hi, num) in GRIDS.items()}
    grids_t = {name: torch.as_tensor(v, dtype=torch.float32) for name, v in grids.items()}

    def split() -> torch.Tensor:
        order = torch.randperm(x.numel(), generator=g)
        fold_of = torch.empty_like(order)
        fold_of[order] = torch.arange(order.numel()) % folds
        return fold_of

    sweep = None
    if w_dsc is None:  # the folds first: the sweep uses them
        fold_of = split()
        w_dsc, sweep = choose_w_dsc(x, y, fold_of, g, steps, lr)
        seed_model = train_logistic(x, y, [w_dsc] * members, g, steps, lr)
    else:  # the draw order of the fixed-w_DSC runs recorded before the sweep existed
        seed_model = train_logistic(x, y, [w_dsc] * members, g, steps, lr)
        fold_of = split()
    ws = [w_dsc + d for d in shifts]
    oof = np.zeros((len(shifts), x.numel()), dtype=bool)
    test_probs = {name: np.zeros((len(shifts), v.size)) for name, v in grids.items()}
    branch = int(round(sum(steps) * 0.75))
    for f in range(folds):
        tr, te = fold_of != f, fold_of == f
        if recipe == "scratch":
            model = train_logistic(x[tr], y[tr], ws, g, steps, lr)
        else:
            a0, b0 = train_logistic(x[tr], y[tr], [w_dsc], g, steps, lr, step_range=(0, branch))
            start = (a0.expand(len(ws)).clone(), b0.expand(len(ws)).clone())
            model = train_logistic(x[tr], y[tr], ws, g, steps, lr, start=start, step_range=(branch, sum(steps)))
        oof[:, te.numpy()] = _prob(model, x[te]) >= 0.5
        for name in grids:
            test_probs[name] += _prob(model, grids_t[name]) / folds
    a = fit_ensemble_coefficients(oof, y.numpy())

    out: dict = {"seed": seed, "w_dsc": w_dsc, "coefficients": [float(v) for v in a], "errors": {}, "curves": {}}
    if sweep is not None:
        out["w_dsc_sweep"] = {"candidates": list(W_DSC_CANDIDATES), "mean_cv_dice": sweep}
    for name, grid in grids.items():
        seed_p = _prob(seed_model, grids_t[name])
        curves = {
            "seed_ensemble": (seed_p >= 0.5).mean(0),
            "calibrated_ensemble": calibrated_heatmap(test_probs[name] >= 0.5, a).numpy(),
            "seed_mean_prob": seed_p.mean(0),
            "calibrated_mean_prob": test_probs[name].mean(0),
        }
        out["errors"][name] = {k: _errors(v, grid) for k, v in curves.items()}
        out["curves"][name] = {k: v.tolist() for k, v in curves.items()}
    out["ratio"] = {
        name: e["calibrated_ensemble"]["l1"] / e["seed_ensemble"]["l1"] for name, e in out["errors"].items()
    }
    out["ratio"]["density"] = (
        out["errors"]["grid_3"]["calibrated_ensemble"]["l1_density"]
        / out["errors"]["grid_3"]["seed_ensemble"]["l1_density"]
    )
    sa, sb = seed_model
    out["decision_boundaries"] = {
        "seed": sorted(float(-bb / aa) for aa, bb in zip(sa.tolist(), sb.tolist())),
        "calibrated_test_members": [
            float(grids["grid_4"][np.argmax(v)]) if v.any() else None for v in test_probs["grid_4"] >= 0.5
        ],
    }
    return out


def summarise(repeats: list[dict]) -> dict:
    """Mean, sd, min and max over the repeats of every error and ratio."""

    def stats(values: list[float]) -> dict[str, float]:
        v = np.asarray(values, dtype=np.float64)
        return {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()),
            "max": float(v.max()),
        }

    first = repeats[0]
    errors = {
        grid: {
            method: {m: stats([r["errors"][grid][method][m] for r in repeats]) for m in first["errors"][grid][method]}
            for method in first["errors"][grid]
        }
        for grid in first["errors"]
    }
    ratios = {name: stats([r["ratio"][name] for r in repeats]) for name in first["ratio"]}
    passes = {name: int(sum(r["ratio"][name] <= 1 / 3 for r in repeats)) for name in first["ratio"]}
    return {"errors": errors, "ratio_calibrated_to_seed": ratios, "repeats_with_ratio_at_most_one_third": passes}


def plot(rep: dict, path: Path) -> None:
    """Fig. 1 (first repeat, grid [-3, 3]): analytic probability, the two ensembles' heatmaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi, num = GRIDS["grid_3"]
    grid = np.linspace(lo, hi, num)
    e = rep["errors"]["grid_3"]
    c = rep["curves"]["grid_3"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(grid, 1 / (1 + np.exp(-2 * grid)), "k-", label="P(x in C1) = p1/(p0+p1)")
    ax.step(grid, c["seed_ensemble"], "C0--", where="mid", label=f"seed ensemble (L1 {e['seed_ensemble']['l1']:.3f})")
    label = f"calibrated ensemble (L1 {e['calibrated_ensemble']['l1']:.3f})"
    ax.step(grid, c["calibrated_ensemble"], "C3-", where="mid", label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("probability of class 1")
    ax.set_title(f"1-D example (Buddenkotte et al., Fig. 1), repeat seed {rep['seed']}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000, help="training samples per class")
    parser.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    parser.add_argument("--decay", type=int, default=1000, help="cosine-decay steps (the early stop)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--members", type=int, default=7, help="seed-ensemble size")
    parser.add_argument("--shifts", type=float, nargs="+", default=[-3, -2, -1, 0, 1, 2, 3])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument(
        "--w-dsc",
        default="0",
        help="w_DSC: a number (default 0, the reference script), or 'cv' for the paper's choice (highest mean Dice "
        "in cross-validation over -3..3 in steps of 0.5, per repeat)",
    )
    parser.add_argument("--recipe", choices=("scratch", "branch"), default="scratch")
    parser.add_argument("--repeats", type=int, default=10, help="seeds 0 .. repeats-1")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (set explicitly)")
    parser.add_argument("--output", default=str(RESULTS / "calibrated_ensembles_1d.json"))
    args = parser.parse_args(argv)
    try:
        w_dsc = None if args.w_dsc == "cv" else float(args.w_dsc)
    except ValueError:
        parser.error(f"--w-dsc: expected a number or 'cv', got {args.w_dsc!r}")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    reps = [
        run_once(
            s,
            args.samples,
            args.members,
            tuple(args.shifts),
            (args.warmup, args.decay),
            args.lr,
            args.folds,
            w_dsc,
            args.recipe,
        )
        for s in range(args.repeats)
    ]
    summary = summarise(reps)
    settings = {k: v for k, v in vars(args).items() if k not in ("output",)}
    settings["torch_threads"] = torch.get_num_threads()
    res = {
        "settings": settings,
        **summary,
        "acceptance_mean_ratio_at_most_one_third": bool(summary["ratio_calibrated_to_seed"]["grid_3"]["mean"] <= 1 / 3),
        "repeats": [{k: v for k, v in r.items() if k != "curves"} for r in reps],
        "seconds": time.perf_counter() - start,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(reps[0], out.with_suffix(".png"))
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(res, indent=4) + "\n")
    tmp.replace(out)
    print(f"recipe {args.recipe}, {args.repeats} repeats; L1 mean +- sd (max error mean)")
    print("| heatmap | L1 [-3, 3] | L1 [-4, 4] | L1 (data density) | max error [-3, 3] |")
    print("|---|---|---|---|---|")
    e3, e4 = summary["errors"]["grid_3"], summary["errors"]["grid_4"]
    for name in e3:
        print(
            f"| {name} | {e3[name]['l1']['mean']:.4f} +- {e3[name]['l1']['sd']:.4f} | {e4[name]['l1']['mean']:.4f} | "
            f"{e3[name]['l1_density']['mean']:.4f} | {e3[name]['max']['mean']:.4f} |"
        )
    for name, st in summary["ratio_calibrated_to_seed"].items():
        passes = summary["repeats_with_ratio_at_most_one_third"][name]
        print(
            f"ratio calibrated / seed ({name}): {st['mean']:.3f} +- {st['sd']:.3f} [{st['min']:.3f}, {st['max']:.3f}]"
            f", <= 1/3 in {passes}/{args.repeats} repeats"
        )
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return res


if __name__ == "__main__":
    main()
