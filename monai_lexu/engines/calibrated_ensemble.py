"""Workflow steps of the calibrated-ensemble bundles: cross-validation folds, the coefficient fit on out-of-fold
predictions, and the heatmap evaluation (calibrated ensemble vs seed ensemble vs dropout, Buddenkotte et al.).

The bundle configs call these functions (``configs/fit_calibration.json``, ``configs/evaluate_heatmaps.json``); the
definitions of every figure are in :mod:`monai_lexu.metrics.heatmap`, the fit in :mod:`monai_lexu.inferers.calibrated`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader, Dataset

from monai_lexu.inferers.calibrated import (
    VotePatternCounts,
    _ProbPredictor,
    calibrated_heatmap,
    heads_to_votes,
    save_coefficients,
)
from monai_lexu.metrics.calibration import pooled_expected_calibration_error
from monai_lexu.metrics.estimated_dice import estimated_dice
from monai_lexu.metrics.heatmap import (
    ParzenCurve,
    binary_dice,
    dice_estimate_agreement,
    parzen_calibration_curve,
    quantile_summary,
    trainee_error_heatmap_values,
    union_intersection_counts,
    union_sensitivity_intersection_precision,
)

__all__ = ["FIT_TARGETS", "fold_cases", "predict_votes", "fit_calibration", "evaluate_heatmaps"]

FIT_TARGETS = ("soft", "majority")
logger = logging.getLogger("monai_lexu")


def fold_cases(cases: Sequence[Mapping[str, Any]], fold: int, num_folds: int, held_out: bool = False) -> list[Any]:
    """The training (or held-out) cases of one cross-validation fold.

    A case's fold is its ``"fold"`` entry (the HECKTOR datalist) or else its index modulo ``num_folds`` (RIGA: the
    order of the datalist's ``training`` section). ``fold < 0`` means no fold: every case trains, none is held out.

    Args:
        cases: the training section.
        fold: the held-out fold ``k`` (``-1``: none).
        num_folds: ``F``.
        held_out: return the cases of fold ``k`` instead of the others.
    """
    if fold < 0:
        return [] if held_out else list(cases)
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be in [0, num_folds={num_folds}) or -1 (all cases), got {fold}.")
    return [c for i, c in enumerate(cases) if (int(c.get("fold", i % num_folds)) == fold) == held_out]


def _loader(cases: Sequence[Any], transform: Callable) -> DataLoader:
    from monai_lexu.data import pad_rater_collate

    return DataLoader(Dataset(list(cases), transform), batch_size=1, shuffle=False, collate_fn=pad_rater_collate)


def _load(network: torch.nn.Module, path: str | os.PathLike, device: Any) -> torch.nn.Module:
    from monai_lexu.utils import check_checkpoint, load_checkpoint

    check_checkpoint(path, network)
    network.load_state_dict(load_checkpoint(path))
    return network.to(device).eval()


@torch.no_grad()
def predict_votes(
    network: Callable[..., torch.Tensor],
    image: torch.Tensor,
    num_heads: int,
    base_inferer: Any = None,
    mc_samples: int = 1,
) -> torch.Tensor:
    """Binary votes ``(B, K, L, *S)`` of every head: the (blended) sigmoids thresholded at 0.5.

    Args:
        network: head-major network.
        image: ``(B, C, *S)``.
        num_heads: ``K`` (with ``mc_samples = T``: ``T`` times the network's heads).
        base_inferer: MONAI inferer (e.g. a Gaussian sliding window); ``None`` calls the network once.
        mc_samples: Monte-Carlo dropout passes stacked as heads.
    """
    from monai.inferers import SimpleInferer

    from monai_lexu.inferers.multihead import mc_dropout

    predictor = _ProbPredictor(network, mc_samples)
    base = SimpleInferer() if base_inferer is None else base_inferer
    if mc_samples > 1:
        with mc_dropout(network):  # type: ignore[arg-type]
            probs = base(image, predictor)  # type: ignore[arg-type]
    else:
        probs = base(image, predictor)  # type: ignore[arg-type]
    return heads_to_votes(torch.as_tensor(probs), num_heads, logits=False)


def _fit_target(batch: Mapping[str, Any], target: str) -> torch.Tensor:
    soft = torch.as_tensor(batch["soft_label"]).float()
    return soft if target == "soft" else (soft > 0.5).float()


def fit_calibration(
    network: torch.nn.Module,
    checkpoints: Sequence[str | os.PathLike],
    fold_data: Sequence[Sequence[Any]],
    transform: Callable,
    structures: Sequence[str],
    output: str | os.PathLike,
    num_heads: int,
    base_inferer: Any = None,
    target: str = "soft",
    device: Any = "cpu",
    info: Mapping[str, Any] | None = None,
    fold_ids: Sequence[int] | None = None,
) -> np.ndarray:
    """Fit the coefficients of a calibrated ensemble on out-of-fold predictions and write them as JSON.

    For every fold ``k``: the weights ``checkpoints[k]`` (trained without fold ``k``) predict the held-out cases
    ``fold_data[k]``; their votes and the target are pooled into one :class:`VotePatternCounts` per structure over
    all folds, solved by least squares (Eq. 2, :func:`monai_lexu.inferers.fit_ensemble_coefficients`) and written
    with :func:`monai_lexu.inferers.save_coefficients` (with the pattern tables, the folds and ``info``).

    Args:
        network: the ensemble network (``K`` heads, e.g. :class:`monai_lexu.networks.SharedBaseEnsemble`).
        checkpoints: one weights file per fold.
        fold_data: the held-out cases of each fold (datalist dicts).
        transform: the evaluation preprocessing (gives ``image`` and ``soft_label``).
        structures: the ``L`` structure names.
        output: the JSON file (e.g. ``<models>/calibration.json``).
        num_heads: ``K``.
        base_inferer: e.g. the bundle's Gaussian sliding window (3D).
        target: ``"soft"`` (the raters' soft label; this project's default) or ``"majority"`` (the paper's binary
            reference, strict majority of the raters).
        device: torch device.
        info: further JSON entries (``w_dsc``, ``shifts`` ...).
        fold_ids: the fold number of each entry (for the JSON and the log; default ``0 .. F - 1``).

    Returns:
        the ``L x K`` coefficients.
    """
    if target not in FIT_TARGETS:
        raise ValueError(f"target must be one of {FIT_TARGETS}, got {target!r}.")
    if len(checkpoints) != len(fold_data):
        raise ValueError(f"{len(checkpoints)} checkpoints for {len(fold_data)} folds.")
    counts = [VotePatternCounts(num_heads) for _ in structures]
    folds = []
    ids = list(range(len(checkpoints))) if fold_ids is None else [int(k) for k in fold_ids]
    for k, ckpt, cases in zip(ids, checkpoints, fold_data):
        if not cases:
            raise ValueError(f"fold {k} holds no case: the out-of-fold predictions need every fold.")
        net = _load(network, ckpt, device)
        for batch in _loader(cases, transform):
            votes = predict_votes(net, batch["image"].to(device), num_heads, base_inferer).cpu()
            y = _fit_target(batch, target)
            for s, c in enumerate(counts):
                c.update(votes[0, :, s], y[0, s])
        folds.append({"fold": k, "checkpoint": os.path.basename(str(ckpt)), "cases": len(cases)})
        logger.info("calibration fit: fold %d, %d held-out cases predicted by %s", k, len(cases), ckpt)
    coef = np.stack([c.solve() for c in counts])
    tables = {name: c.pattern_table(a) for name, c, a in zip(structures, counts, coef)}
    save_coefficients(
        output,
        coef.tolist(),
        structures,
        num_members=num_heads,
        target=target,
        folds=folds,
        **(info or {}),
        patterns=tables,
    )
    logger.info("calibration coefficients written to %s: %s", output, np.round(coef, 4).tolist())
    return coef


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _plots(out: Path, curves: dict, dice_rows: list[dict], structures: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(structures), figsize=(4.5 * len(structures), 4), squeeze=False)
    for s, name in enumerate(structures):
        ax = axes[0, s]
        ax.plot([0, 1], [0, 1], "k-", lw=1, label="perfect calibration")
        for method, per_struct in curves.items():
            c: ParzenCurve = per_struct[name]
            keep = (c.weight > 0) & (c.nodes <= 1.0 + 1e-9)
            ax.plot(c.nodes[keep], c.frequency[keep], "o--", label=method)
        ax.set_xlabel("heatmap value (node)")
        ax.set_ylabel("frequency of the target")
        ax.set_title(f"{name}: Parzen calibration curve")
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = out / ".calibration_curves.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out / "calibration_curves.png")

    fig, axes = plt.subplots(1, len(structures), figsize=(4.5 * len(structures), 4), squeeze=False)
    for s, name in enumerate(structures):
        ax = axes[0, s]
        ax.plot([0, 1], [0, 1], "k-", lw=1)
        for method in curves:
            pts = [
                (r["true_dice"], r["estimated_dice"])
                for r in dice_rows
                if r["method"] == method and r["structure"] == name
            ]
            if pts:
                t, e = zip(*pts)
                ax.scatter(t, e, s=12, label=method)
        ax.set_xlabel("true Dice")
        ax.set_ylabel("Dice estimated from the heatmap")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = out / ".dice_estimate.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out / "dice_estimate.png")


def evaluate_heatmaps(
    methods: Sequence[Mapping[str, Any]],
    cases: Sequence[Any],
    transform: Callable,
    structures: Sequence[str],
    output_dir: str | os.PathLike,
    device: Any = "cpu",
    prediction_method: str = "seed_ensemble",
    ece_bins: int = 20,
) -> dict[str, Any]:
    """Evaluate the heatmaps of several methods on one set of cases and write the paper's figures.

    Every method is ``{"name", "network", "checkpoint", "num_heads", "coefficients" (L x K), "base_inferer",
    "mc_samples"}``; a method whose checkpoint (or, for the calibrated ensemble, coefficient file) is missing is
    skipped with a log line. For each method ``h = sum_k a_k s_k`` (unclipped; equal weights ``1/K`` give the seed
    ensemble's and dropout's mean of masks). Per structure, pooled over the cases:

    - the Parzen calibration curve against the soft label (node spacing ``1/K``; ``calibration_curves.png``,
      ``parzen_<method>.csv``) and its distance to the diagonal (N1-weighted mean |frequency - node|);
    - ECE of ``clip(h, 0, 1)`` against the soft label (``ece_bins`` equal bins, pooled over voxels);
    - sensitivity of the union and precision of the intersection of the MEMBERS' masks (any member votes / every
      member votes: ``m > 0`` and ``m >= 0.99`` for the equal-weight mean ``m`` of the votes, the reference's choice
      for every method, the calibrated ensemble included) against the majority of the raters (pooled voxel ratios;
      ``union_intersection.csv``);
    - the Dice estimated from ``h`` for the binary prediction ŷ = the majority vote of ``prediction_method``'s members
      (``h > 0.5`` of that method, the paper's choice; the calibrated ensemble's ``h >= 0.5`` when that method is
      not evaluated) vs the true Dice of ŷ against the raters' majority, per case; Pearson r and MAE
      (``dice_estimate.csv``, ``dice_estimate.png``);
    - the prevalence of predicted foreground (ŷ) against ``h``: the Parzen curve with ŷ as the target
      (``prevalence_<method>.csv``);
    - trainee analysis: each rater against the majority of the others, quantiles of ``h`` in its false positives and
      false negatives (``trainee.csv``);
    - inference seconds per case and members (cost).

    Writes ``summary.json`` and ``summary.md`` in ``output_dir`` and returns the summary.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    evaluated = []
    for m in methods:
        missing = [p for p in (m.get("checkpoint"), m.get("coefficients_file")) if p and not Path(p).is_file()]
        if missing:
            logger.info("heatmap evaluation: %s skipped (no %s)", m["name"], ", ".join(map(str, missing)))
            continue
        evaluated.append(m)
    if not evaluated:
        raise FileNotFoundError(
            f"no method to evaluate: none of the checkpoints exists ({[m['name'] for m in methods]})."
        )
    nets = {m["name"]: _load(m["network"], m["checkpoint"], device) for m in evaluated}
    coefs = {}
    for m in evaluated:
        a = m["coefficients"]
        if isinstance(a, (str, os.PathLike)):
            from monai_lexu.inferers.calibrated import load_coefficients

            a = load_coefficients(a, num_heads=m["num_heads"], num_structures=len(structures))
        coefs[m["name"]] = np.asarray(a, dtype=np.float64)
    names = [m["name"] for m in evaluated]
    pred_from = prediction_method if prediction_method in names else names[0]
    curves = {n: {s: None for s in structures} for n in names}
    prevalence = {n: {s: None for s in structures} for n in names}
    bins = {n: {s: np.zeros((3, ece_bins)) for s in structures} for n in names}
    ui = {
        n: {s: {"union_tp": 0.0, "foreground": 0.0, "intersection_tp": 0.0, "intersection": 0.0} for s in structures}
        for n in names
    }
    trainee: dict[str, dict[str, dict[str, list]]] = {n: {s: {"fp": [], "fn": []} for s in structures} for n in names}
    dice_rows: list[dict[str, Any]] = []
    seconds = {n: 0.0 for n in names}
    n_cases = 0
    for batch in _loader(cases, transform):
        n_cases += 1
        image = batch["image"].to(device)
        soft = torch.as_tensor(batch["soft_label"]).float().cpu()
        majority = (soft > 0.5).float()
        raters = torch.as_tensor(batch["raters"]).cpu()
        valid = batch.get("rater_valid")
        valid = torch.ones(raters.shape[:2], dtype=torch.bool) if valid is None else torch.as_tensor(valid).cpu()
        heat, mean_votes = {}, {}
        for m in evaluated:
            start = time.perf_counter()
            votes = predict_votes(nets[m["name"]], image, m["num_heads"], m.get("base_inferer"), m.get("mc_samples", 1))
            seconds[m["name"]] += time.perf_counter() - start
            heat[m["name"]] = calibrated_heatmap(votes.cpu(), coefs[m["name"]]).double()
            mean_votes[m["name"]] = votes.cpu().double().mean(1)  # (B, L, *S): the members' masks, weights 1/K
        yhat = heat[pred_from] > 0.5 if pred_from != "calibrated" else heat[pred_from] >= 0.5
        case_id = str(batch.get("id", [f"case{n_cases - 1}"])[0])
        for n in names:
            h = heat[n]
            k = coefs[n].shape[1]
            for s, name in enumerate(structures):
                hs, ts = h[0, s], soft[0, s]
                c = parzen_calibration_curve(hs, ts, k)
                curves[n][name] = c if curves[n][name] is None else curves[n][name] + c
                p = parzen_calibration_curve(hs, yhat[0, s].double(), k)
                prevalence[n][name] = p if prevalence[n][name] is None else prevalence[n][name] + p
                prob = hs.clamp(0, 1).reshape(-1).numpy()
                idx = np.minimum((prob * ece_bins).astype(int), ece_bins - 1)
                bins[n][name] += np.stack(
                    [
                        np.bincount(idx, prob, ece_bins),
                        np.bincount(idx, ts.reshape(-1).numpy(), ece_bins),
                        np.bincount(idx, minlength=ece_bins),
                    ]
                )
                # Table 1 of the paper: union / intersection of the MEMBERS' masks, i.e. the equal-weight mean of the
                # votes (the reference compute_global_sens_prec_UQ.py uses weights 1/K for the calibrated ensemble
                # too); on the calibrated h, "h >= 0.99" is never reached when sum(a) < 0.99.
                for key, v in union_intersection_counts(mean_votes[n][0, s], majority[0, s]).items():
                    ui[n][name][key] += v
                est = float(estimated_dice(hs.clamp(0, 1)[None, None], yhat[0, s][None, None])[0, 0])
                true = float(binary_dice(yhat[0, s][None], majority[0, s][None])[0])
                if majority[0, s].sum() > 0:  # as the reference: only cases with foreground
                    dice_rows.append(
                        {"case": case_id, "structure": name, "method": n, "estimated_dice": est, "true_dice": true}
                    )
                tv = trainee_error_heatmap_values(raters[0, :, s], valid[0], hs)
                trainee[n][name]["fp"] += tv["fp"]
                trainee[n][name]["fn"] += tv["fn"]
    summary: dict[str, Any] = {"cases": n_cases, "prediction_from": pred_from, "methods": {}}
    ui_rows, trainee_rows, table = [], [], []
    for n in names:
        k = coefs[n].shape[1]
        per: dict[str, Any] = {"members": k, "seconds_per_case": seconds[n] / max(n_cases, 1), "structures": {}}
        for name in structures:
            b = bins[n][name]
            ece = float(pooled_expected_calibration_error(torch.tensor(b[0]), torch.tensor(b[1]), torch.tensor(b[2])))
            sens, prec = union_sensitivity_intersection_precision(ui[n][name])
            agree = dice_estimate_agreement(
                [r["estimated_dice"] for r in dice_rows if r["method"] == n and r["structure"] == name],
                [r["true_dice"] for r in dice_rows if r["method"] == n and r["structure"] == name],
            )
            c = curves[n][name]
            fp, fn = quantile_summary(trainee[n][name]["fp"]), quantile_summary(trainee[n][name]["fn"])
            per["structures"][name] = {
                "ece": ece,
                "parzen_distance": c.distance_to_diagonal(),
                "parzen_distance_from_first_node": c.distance_to_diagonal(min_node=1.0 / k),
                "union_sensitivity": sens,
                "intersection_precision": prec,
                "dice_estimate": agree,
                "prevalence_distance": prevalence[n][name].distance_to_diagonal(),
                "trainee_fp": fp,
                "trainee_fn": fn,
            }
            ui_rows.append({"method": n, "structure": name, "union_sensitivity": sens, "intersection_precision": prec})
            for kind, q in (("fp", fp), ("fn", fn)):
                trainee_rows.append({"method": n, "structure": name, "error": kind, **q})
            table.append([n, name, k, ece, c.distance_to_diagonal(), sens, prec, agree["pearson_r"], agree["mae"]])
            _write_csv(
                out / f"parzen_{n}.csv", [{"structure": s2, **r} for s2 in structures for r in curves[n][s2].rows()]
            )
            _write_csv(
                out / f"prevalence_{n}.csv",
                [{"structure": s2, **r} for s2 in structures for r in prevalence[n][s2].rows()],
            )
        summary["methods"][n] = per
    _write_csv(out / "union_intersection.csv", ui_rows)
    _write_csv(out / "dice_estimate.csv", dice_rows)
    _write_csv(out / "trainee.csv", trainee_rows)
    _plots(out, curves, dice_rows, structures)
    md = _md_table(
        [
            "method",
            "structure",
            "members",
            "ECE",
            "Parzen dist.",
            "sens(union)",
            "prec(intersection)",
            "Dice-est r",
            "Dice-est MAE",
        ],
        table,
    )
    md += f"\nŷ for the Dice estimate: majority vote of {pred_from}; {n_cases} cases.\n"
    tmp = out / ".summary.md.tmp"
    tmp.write_text(md)
    os.replace(tmp, out / "summary.md")
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=4, default=float) + "\n")
    os.replace(tmp, out / "summary.json")
    logger.info("heatmap evaluation written to %s\n%s", out, md)
    return summary
