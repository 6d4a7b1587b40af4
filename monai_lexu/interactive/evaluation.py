"""MedUHIP's evaluation (§4.3): Dice after k, Table 1, Table 3 (NoC), Table 4 (ablation), a case figure.

:func:`evaluate_interactive` runs every case through :func:`~monai_lexu.interactive.loop.run_interaction`:

* ``dice_after_k``: per strategy, the mean Dice after ``k = 0..num_interactions`` interactions; the target of each
  case is a random subset of 1..R raters (majority-fused), the same for every strategy;
* ``noc``: per threshold and strategy, the mean number of clicks to reach it (at most 6, 10 when not reached;
  :func:`monai_lexu.metrics.interaction.number_of_clicks`) on those curves;
* ``table1_dice_after_3``: per strategy and number ``r = 1..R`` of raters fused into the target (a random subset of
  ``r`` raters per case), the Dice after ``table1_interactions`` (3) interactions, and their mean over ``r``;
* ``table4``: MedUHIP's strategy with the sampling space fixed (``sampling``), ``+ mean_variance``, ``+ weight`` and
  both (``full``), Dice after 0, 3 and 6 interactions on the random-size targets. Ours: the rows are one trained
  model with the components switched off at inference (the paper trains each variant);
* ``sampling``: :func:`sampling_diagnostics`, how much the samples differ and whether the network uses them.

Every draw is seeded from ``seed`` and the case index, so strategies see the same targets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_lexu.interactive.clicks import CLICK_STRATEGIES
from monai_lexu.interactive.loop import ABLATIONS, run_interaction
from monai_lexu.interactive.targets import rater_subset_target
from monai_lexu.metrics.interaction import NOC_MAX_INTERACTIONS, number_of_clicks
from monai_lexu.networks.meduhip import MedUHIPNet

__all__ = [
    "evaluate_interactive",
    "sampling_diagnostics",
    "interactive_report_markdown",
    "plot_interaction_case",
    "run_interactive_evaluation",
]


@torch.no_grad()
def evaluate_interactive(
    net: MedUHIPNet,
    images: Sequence[torch.Tensor],
    raters: Sequence[np.ndarray],
    seed: int = 0,
    thresholds: Sequence[float] = (0.85, 0.9),
    num_interactions: int = NOC_MAX_INTERACTIONS,
    table1_interactions: int = 3,
    num_candidates: int = 4,
    strategies: Sequence[str] = CLICK_STRATEGIES,
    ablations: Mapping[str, tuple[bool, bool]] = ABLATIONS,
) -> dict[str, Any]:
    """The figures of the module docstring for the cases ``images[i] (C, H, W)``, ``raters[i] (R, H, W)``."""
    n = len(images)
    if n == 0 or n != len(raters):
        raise ValueError(f"evaluate_interactive: need as many rater sets as images (>= 1), got {n} and {len(raters)}.")

    def run(i: int, target: np.ndarray, strategy: str, k: int, rng: list[int], mv: bool = True, wt: bool = True):
        return run_interaction(
            net, images[i], target, raters[i], strategy, k, num_candidates, mv, wt, np.random.default_rng(rng)
        ).dice

    targets = [rater_subset_target(raters[i], None, np.random.default_rng([seed, i]))[0] for i in range(n)]
    curves = {
        s: np.array([run(i, targets[i], s, num_interactions, [seed, i, 7]) for i in range(n)]) for s in strategies
    }
    out: dict[str, Any] = {"num_cases": n, "seed": seed, "num_interactions": num_interactions}
    out["dice_after_k"] = {s: [float(v) for v in c.mean(0)] for s, c in curves.items()}
    out["dice_after_k_std"] = {s: [float(v) for v in c.std(0)] for s, c in curves.items()}
    out["noc"] = {
        str(t): {s: float(np.mean([number_of_clicks(d, t) for d in c])) for s, c in curves.items()} for t in thresholds
    }
    num_r = min(int(np.asarray(r).shape[0]) for r in raters)
    table1: dict[str, dict[str, float]] = {s: {} for s in strategies}
    for r in range(1, num_r + 1):
        tg = [rater_subset_target(raters[i], r, np.random.default_rng([seed, i, r]))[0] for i in range(n)]
        for s in strategies:
            d = [run(i, tg[i], s, table1_interactions, [seed, i, r])[table1_interactions] for i in range(n)]
            table1[s][str(r)] = float(np.mean(d))
    for s in strategies:
        table1[s]["mean"] = float(np.mean([table1[s][str(r)] for r in range(1, num_r + 1)]))
    out["table1_dice_after_3"] = table1
    table4 = {}
    for name, (mv, wt) in ablations.items():
        c = curves["meduhip"] if (mv, wt) == (True, True) and "meduhip" in curves else None
        if c is None:
            c = np.array([run(i, targets[i], "meduhip", num_interactions, [seed, i, 7], mv, wt) for i in range(n)])
        table4[name] = {f"dice_after_{k}": float(c[:, k].mean()) for k in (0, 3, num_interactions)}
    out["table4"] = table4
    out["sampling"] = sampling_diagnostics(net, images, num_candidates)
    return out


@torch.no_grad()
def sampling_diagnostics(net: MedUHIPNet, images: Sequence[torch.Tensor], num_candidates: int = 4) -> dict[str, Any]:
    """How much the sampling space matters, per case before any click (means over cases):

    * ``mean``, ``var``: the Mean-Variance Network's component means and variances (sorted by mean);
    * ``disagreement_fraction``: pixels where the ``N`` sample masks disagree (``0 < f < 1``) over the pixels any
      of them marks;
    * ``pairwise_dice``: mean Dice between two of the ``N`` sample masks;
    * ``num_candidates``: distinct K-means candidate regions offered;
    * ``extreme_components_dice`` / ``area_ratio``: ``P_soft`` with every sample drawn from the lowest-mean
      component against every sample from the highest-mean one (Dice, and foreground area high / low): 1 and 1 mean
      the Segmentation Net ignores the sample, so no weighting of the mixture can change the answer.
    """
    from monai_lexu.interactive.candidates import kmeans_candidates
    from monai_lexu.metrics.heatmap import binary_dice
    from monai_lexu.networks.meduhip import majority_soft_prediction

    net.eval()
    rows: dict[str, list] = {k: [] for k in ("mean", "var", "dis", "pair", "cands", "ext", "area")}
    for image in images:
        x = image[None].to(next(net.parameters()).device).float()
        h, w = x.shape[2], x.shape[3]
        emb = net.encode_image(x)
        tokens, valid = net.encode_prompts(None, None, 1, h, w)
        mean, var = net.sampling_space(emb, tokens, valid)
        order = torch.argsort(mean[0])
        rows["mean"].append(mean[0][order].cpu().numpy())
        rows["var"].append(var[0][order].cpu().numpy())
        samples, _ = net.draw(net.uniform_weights(1), mean, var, True)
        logits = net.decode(emb, tokens, samples, h, w)
        masks = (torch.sigmoid(logits[0]) > 0.5).cpu().numpy()
        f = masks.mean(0)
        rows["dis"].append(float(((f > 0) & (f < 1)).sum() / max(1, (f > 0).sum())))
        n = masks.shape[0]
        pairs = [binary_dice(masks[i][None], masks[j][None])[0] for i in range(n) for j in range(i + 1, n)]
        rows["pair"].append(float(np.mean(pairs)) if pairs else 1.0)
        rows["cands"].append(len(kmeans_candidates(masks.astype(np.float32), num_candidates).sizes))
        soft = []
        for m in (order[0], order[-1]):
            onehot = torch.zeros_like(mean)
            onehot[0, m] = 1.0
            s, _ = net.draw(onehot, mean, var, True)
            soft.append(majority_soft_prediction(net.decode(emb, tokens, s, h, w))[0][0].cpu().numpy())
        rows["ext"].append(float(binary_dice(soft[0][None], soft[1][None])[0]))
        rows["area"].append(float(soft[1].sum() / max(1.0, soft[0].sum())))
    return {
        "mean": [float(v) for v in np.mean(rows["mean"], 0)],
        "var": [float(v) for v in np.mean(rows["var"], 0)],
        "disagreement_fraction": float(np.mean(rows["dis"])),
        "pairwise_dice": float(np.mean(rows["pair"])),
        "num_candidates": float(np.mean(rows["cands"])),
        "extreme_components_dice": float(np.mean(rows["ext"])),
        "area_ratio": float(np.mean(rows["area"])),
    }


def interactive_report_markdown(result: Mapping[str, Any]) -> str:
    """Markdown tables of one :func:`evaluate_interactive` result."""
    lines = [f"# MedUHIP interactive evaluation ({result['num_cases']} cases, seed {result['seed']})", ""]
    k = result["num_interactions"]
    lines += ["## Dice after k interactions", "", "| strategy | " + " | ".join(f"k={j}" for j in range(k + 1)) + " |"]
    lines.append("|---" * (k + 2) + "|")
    for s, vals in result["dice_after_k"].items():
        lines.append(f"| {s} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    t1 = result["table1_dice_after_3"]
    cols = [c for c in next(iter(t1.values()))]
    lines += ["", "## Table 1: Dice after 3 interactions by raters fused into the target", ""]
    lines += ["| strategy | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for s, row in t1.items():
        lines.append(f"| {s} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    lines += ["", "## Table 3: number of clicks (at most 6, 10 when not reached)", ""]
    ths = list(result["noc"])
    lines += ["| strategy | " + " | ".join(f"NoC@{t}" for t in ths) + " |", "|---" * (len(ths) + 1) + "|"]
    for s in result["dice_after_k"]:
        lines.append(f"| {s} | " + " | ".join(f"{result['noc'][t][s]:.2f}" for t in ths) + " |")
    lines += ["", "## Table 4: ablation (MedUHIP's strategy)", ""]
    keys = list(next(iter(result["table4"].values())))
    lines += ["| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in result["table4"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in keys) + " |")
    if "sampling" in result:
        d = result["sampling"]
        lines += ["", "## Sampling space before any click (means over cases)", ""]
        lines += [f"- component means {[round(v, 3) for v in d['mean']]}, variances {[round(v, 3) for v in d['var']]}"]
        lines += [
            f"- pixels where the N samples disagree / pixels any marks: {d['disagreement_fraction']:.3f}; "
            f"mean pairwise Dice of two samples: {d['pairwise_dice']:.3f}; "
            f"candidates offered: {d['num_candidates']:.2f}",
            f"- all samples from the lowest- vs the highest-mean component: Dice {d['extreme_components_dice']:.3f}, "
            f"area ratio {d['area_ratio']:.3f}",
        ]
    return "\n".join(lines) + "\n"


def plot_interaction_case(
    net: MedUHIPNet,
    image: torch.Tensor,
    raters: np.ndarray,
    target: np.ndarray,
    path: str | os.PathLike,
    steps: int = 4,
    display: np.ndarray | None = None,
    num_candidates: int = 4,
) -> list[float]:
    """A PNG following one case through ``steps`` MedUHIP interactions: per row (step) the image with the target
    outline and the clicks so far (green foreground, red background), the candidate regions offered (the selected
    one framed red) and the vote fraction with ``P_soft`` (red) against the target (green). Returns the Dice per step.

    Args:
        display: ``(H, W, 3)`` or ``(H, W)`` image to show (default: the first input channel).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = run_interaction(net, image, target, raters, "meduhip", steps, num_candidates, rng=0, keep_maps=True)
    k = max(len(c) for c in rec.candidates)
    fig, axes = plt.subplots(steps + 1, k + 2, figsize=(2.0 * (k + 2), 2.0 * (steps + 1)), squeeze=False)
    shown = image[0].cpu().numpy() if display is None else display
    for t in range(steps + 1):
        ax = axes[t, 0]
        ax.imshow(shown, cmap=None if shown.ndim == 3 else "gray")
        ax.contour(target, levels=[0.5], colors="white", linewidths=0.8)
        for r, c, lab in rec.clicks[:t]:
            ax.plot(c, r, "o", color="lime" if lab else "red", markersize=5, markeredgecolor="black")
        ax.set_title(f"step {t}: {min(t, len(rec.clicks))} click(s)", fontsize=8)
        for j in range(k):
            ax = axes[t, 1 + j]
            if t < len(rec.candidates) and j < len(rec.candidates[t]):
                ax.imshow(rec.candidates[t][j], cmap="viridis", vmin=0, vmax=1)
                chosen = rec.selected[t] == j
                ax.set_title(
                    f"candidate {j + 1}" + (" (selected)" if chosen else ""),
                    fontsize=8,
                    color="red" if chosen else "black",
                )
                if chosen:
                    for side in ax.spines.values():
                        side.set_edgecolor("red")
                        side.set_linewidth(2.5)
            else:
                ax.set_facecolor("0.9")
                ax.set_title("(none)", fontsize=7)
        ax = axes[t, k + 1]
        ax.imshow(rec.votes[t], cmap="gray", vmin=0, vmax=1)
        ax.contour(target, levels=[0.5], colors="lime", linewidths=0.8)
        if rec.masks[t].any():
            ax.contour(rec.masks[t], levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"votes, P_soft (red), target (green)\nDice {rec.dice[t]:.3f}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("MedUHIP: clicks, candidate regions (mean of each K-means cluster), P_soft per step", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return rec.dice


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_interactive_evaluation(
    network: MedUHIPNet,
    dataset: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    structure_index: int = 1,
    seed: int = 0,
    thresholds: Sequence[float] = (0.85, 0.9),
    num_interactions: int = NOC_MAX_INTERACTIONS,
    num_candidates: int = 4,
    figure_case: int | None = 0,
) -> dict[str, Any]:
    """The bundle's evaluation: every case of ``dataset`` (dicts with ``"image" (C, H, W)`` and ``"raters"
    (R, L, H, W)``; the structure ``structure_index`` is segmented) through :func:`evaluate_interactive`; writes
    ``interactive_summary.json``, ``interactive_tables.md`` and (``figure_case``) ``interactive_case.png`` to
    ``output_dir``. Returns the summary."""
    images, raters = [], []
    for item in dataset:
        images.append(torch.as_tensor(item["image"]).float())
        r = np.asarray(torch.as_tensor(item["raters"]).cpu())[:, structure_index]
        valid = item.get("rater_valid")
        if valid is not None:
            r = r[np.asarray(torch.as_tensor(valid).cpu(), dtype=bool)]
        raters.append((r >= 0.5).astype(np.float32))
    network.eval()
    result = evaluate_interactive(
        network, images, raters, seed, thresholds, num_interactions, num_candidates=num_candidates
    )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if figure_case is not None and images:
        case = min(int(figure_case), len(images) - 1)
        target = rater_subset_target(raters[case], None, np.random.default_rng([seed, case]))[0]
        result["figure"] = {
            "case": case,
            "dice": plot_interaction_case(network, images[case], raters[case], target, out / "interactive_case.png"),
        }
    _write_text(out / "interactive_summary.json", json.dumps(result, indent=2) + "\n")
    _write_text(out / "interactive_tables.md", interactive_report_markdown(result))
    return result
