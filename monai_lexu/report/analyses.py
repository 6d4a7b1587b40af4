"""The analyses behind LEXU Fig. 2 and EDUE's OOD figure, from evaluations that kept every image's per-head maps.

Input: for one trained run, the evaluation folders of its test set at each distortion level (0 %, 50 %, 100 % of
the images distorted by :mod:`monai_lexu.transforms.distortions`), each written with ``--keep_head_maps true``
(``metrics_test_maps/<id>.npz`` with ``prob``, ``unc``, ``soft_label``, ``raters``, ``heads``). Output: one record
per (image, structure, level) with

- ``dice``: Dice of ``prob >= 0.5`` against the soft-majority label (:func:`monai_lexu.metrics.qc_dice`),
  ``poor``: below the structure's threshold (:data:`monai_lexu.metrics.POOR_DICE_THRESHOLDS`);
- ``unc_sum``: the sum of the uncertainty map (the quality-control score), ``est_dice``: the Dice estimated from
  the probability map (:func:`monai_lexu.metrics.estimated_dice`, the second score; referred lowest first),
  ``pred_frac``: the fraction of the image predicted as the structure;
- ``agree_mean`` / ``agree_var``: mean / variance of the pairwise soft Dice between the heads
  (:func:`monai_lexu.metrics.head_agreement`), ``aula``: area under the consecutive-head agreement curve at 0.5;
- ``ged``: :func:`monai_lexu.metrics.generalized_energy_distance` between the heads (>= 0.5) and the raters;

and per run and structure: the quality-control curves and d-AUC (clean test set), the agreement scores by level and
the AUROC of telling distorted from clean images by each score. :func:`write_distorted_dataset` writes the
distorted copies of a data set; the plots are :func:`plot_qc_curves` and :func:`plot_agreement_by_level`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.metrics import (
    POOR_DICE_THRESHOLDS,
    auroc,
    consecutive_head_agreement,
    estimated_dice,
    generalized_energy_distance,
    head_agreement,
    poor_segmentations,
    qc_curve,
    qc_d_auc,
    qc_dice,
)
from monai_lexu.report.compare import load_case_maps
from monai_lexu.report.figures import save_figure

__all__ = [
    "DISTORTION_LEVELS",
    "OOD_SCORES",
    "analyse_run",
    "level_name",
    "plot_agreement_by_level",
    "plot_qc_curves",
    "summarize_run",
    "write_distorted_dataset",
]

DISTORTION_LEVELS: tuple[float, ...] = (0.0, 0.5, 1.0)
"""Fractions of the test images distorted (the paper's 0 %, 50 %, 100 %)."""

OOD_SCORES: dict[str, tuple[str, float]] = {
    "1 - agreement": ("agree_mean", -1.0),
    "agreement variance": ("agree_var", 1.0),
    "-AULA": ("aula", -1.0),
    "uncertainty sum": ("unc_sum", 1.0),
}
"""Scores of the distorted-vs-clean AUROC: name -> (record field, sign); sign * field is larger for distorted."""


def level_name(fraction: float) -> str:
    """Folder name of a distortion level: ``level000``, ``level050``, ``level100``."""
    return f"level{round(100 * fraction):03d}"


def write_distorted_dataset(
    dataset_dir: str | Path,
    out_dir: str | Path,
    fraction: float,
    seed: int = 0,
    section: str = "test",
    distortion: str | Any = "fundus",
) -> dict[str, Any]:
    """Copy a 2D data set (``datalist.json`` + PNG images) with ``fraction`` of its ``section`` images distorted.

    Every file is linked (symbolic link) into ``out_dir`` except the chosen images, which are written distorted
    (:func:`monai_lexu.transforms.choose_distorted` picks them, :class:`monai_lexu.transforms.Distortd` distorts
    them: both deterministic under ``seed``). ``out_dir/distortion.json`` records the fraction, seed and ids. An
    existing complete copy (its ``distortion.json`` with the same settings) is kept.

    Args:
        dataset_dir: folder of the converted data set (``datalist.json`` with relative paths).
        out_dir: folder of the copy (written atomically: a temporary folder renamed when complete).
        fraction: fraction of the ``section`` images to distort.
        seed: seed of the choice and of the distortions.
        section: datalist section whose images are distorted.
        distortion: ``"fundus"`` (RGB on 0-255) or a :class:`monai_lexu.transforms.FundusDistortion` (e.g. one
            corruption alone); its parameters are recorded.

    Returns:
        The contents of ``distortion.json``.
    """
    from PIL import Image

    from monai_lexu.transforms import Distortd, choose_distorted

    src, out = Path(dataset_dir), Path(out_dir)
    datalist = json.loads((src / "datalist.json").read_text())
    cases = datalist.get(section) or []
    if not cases:
        raise ValueError(f"{src / 'datalist.json'} has no {section!r} images.")
    selected = choose_distorted([c["id"] for c in cases], fraction, seed)
    kind = distortion if isinstance(distortion, str) else {type(distortion).__name__: vars(distortion)}
    info = {"fraction": fraction, "seed": seed, "section": section, "distortion": kind, "distorted": selected}
    info = json.loads(json.dumps(info))  # tuples -> lists, as read back from the file
    marker = out / "distortion.json"
    if marker.is_file() and json.loads(marker.read_text()) == info:
        return info
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in src.rglob("*"):
        if path.is_file():
            rel = path.relative_to(src)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            if rel.name == "datalist.json":
                shutil.copyfile(path, tmp / rel)
            else:
                os.symlink(path.resolve(), tmp / rel)
    transform = Distortd(keys="image", distortion=distortion, seed=seed, selected=selected)
    by_id = {c["id"]: c for c in cases}
    for case_id in selected:
        rel = Path(by_id[case_id]["image"])
        if rel.suffix.lower() != ".png":
            raise ValueError(f"{case_id}: write_distorted_dataset handles PNG images only, got {rel}.")
        img = np.asarray(Image.open(src / rel).convert("RGB"), dtype=np.float64)  # (H, W, 3)
        out_img = transform({"id": case_id, "image": np.moveaxis(img, -1, 0)})["image"]
        (tmp / rel).unlink()
        Image.fromarray(np.round(np.moveaxis(out_img, 0, -1)).astype(np.uint8)).save(tmp / rel)
    (tmp / "distortion.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return info


def _image_records(maps: Mapping[str, Any], structures: Sequence[str], thresholds: Mapping[str, float]) -> list[dict]:
    prob, unc, soft = (np.asarray(maps[k], dtype=np.float64) for k in ("prob", "unc", "soft_label"))
    if "heads" not in maps:
        raise ValueError(f"case {maps.get('id')}: no 'heads' in its maps (evaluate with --keep_head_maps true).")
    heads = np.asarray(maps["heads"], dtype=np.float64)
    dice = qc_dice(prob[None], soft[None])[0]
    poor = poor_segmentations(dice[None], structures, thresholds)[0]
    est = estimated_dice(prob[None], prob[None] >= 0.5).numpy()[0]
    agree = head_agreement(heads) if heads.shape[0] >= 2 else None
    aula = consecutive_head_agreement(heads)["area"] if heads.shape[0] >= 2 else None
    raters = np.asarray(maps.get("raters", np.zeros((0,) + prob.shape)))
    out = []
    for li, name in enumerate(structures):
        out.append(
            {
                "id": str(maps.get("id")),
                "structure": name,
                "dice": float(dice[li]),
                "poor": bool(poor[li]),
                "unc_sum": float(unc[li].sum()),
                "pred_frac": float((prob[li] >= 0.5).mean()),
                "est_dice": float(est[li]),
                "agree_mean": float(agree["mean"][li]) if agree else float("nan"),
                "agree_var": float(agree["var"][li]) if agree else float("nan"),
                "aula": float(aula[li]) if aula is not None else float("nan"),
                "ged": generalized_energy_distance(heads[:, li], raters[:, li]) if raters.size else float("nan"),
                "heads": int(heads.shape[0]),
            }
        )
    return out


def analyse_run(
    level_dirs: Mapping[float, str | Path],
    structures: Sequence[str],
    thresholds: Mapping[str, float] | None = None,
    prefix: str = "metrics_test",
) -> list[dict[str, Any]]:
    """Per-image records of one run at every distortion level (see the module docstring for the fields).

    Args:
        level_dirs: distortion fraction -> evaluation output folder holding ``<prefix>_maps/`` and, for a distorted
            level, a copy of the data copy's ``distortion.json`` (which images were distorted).
        structures: structure names, in channel order.
        thresholds: poor-segmentation Dice thresholds (default :data:`POOR_DICE_THRESHOLDS`).
        prefix: the evaluation's file prefix.

    Returns:
        Records with ``level`` and ``distorted`` added.
    """
    table = dict(POOR_DICE_THRESHOLDS if thresholds is None else thresholds)
    records: list[dict[str, Any]] = []
    for level, folder in sorted(level_dirs.items()):
        folder = Path(folder)
        maps_dir = folder / f"{prefix}_maps"
        files = sorted(maps_dir.glob("*.npz"))
        if not files:
            raise FileNotFoundError(f"no case maps in {maps_dir}")
        info_path = folder / "distortion.json"
        distorted = set(json.loads(info_path.read_text())["distorted"]) if info_path.is_file() else set()
        if level > 0 and not info_path.is_file():
            raise FileNotFoundError(f"{info_path} is missing: which images of level {level} were distorted?")
        for f in files:
            maps = load_case_maps(f)
            for rec in _image_records(maps, structures, table):
                rec.update(level=float(level), distorted=rec["id"] in distorted)
                records.append(rec)
    return records


def summarize_run(records: Sequence[Mapping[str, Any]], structures: Sequence[str]) -> dict[str, Any]:
    """Per structure: QC curves and d-AUC on the clean set, agreement by level, AUROC distorted vs clean, GED.

    QC uses the level-0 images: scores ``unc_sum`` (refer the most uncertain first) and ``-est_dice`` (refer the
    lowest estimated Dice first). The AUROC compares the level-0 images (clean) with the level-100 images (all
    distorted), the same images clean and distorted; ``at 50 %`` compares the distorted and clean images of the
    50 % level.

    Returns:
        ``{structure: {"n", "n_poor", "d_auc": {score: value}, "curves": {score: [x, y, y_ideal]},
        "agreement": {level: {field: {"mean", "median", "q25", "q75"}}}, "auroc": {score: value},
        "auroc_50": {score: value}, "ged": mean GED at level 0, "dice": mean Dice at level 0}}``.
    """
    out: dict[str, Any] = {}
    for s in structures:
        rs = [r for r in records if r["structure"] == s]
        clean = [r for r in rs if r["level"] == 0.0]
        if not clean:
            continue
        poor = np.array([r["poor"] for r in clean])
        qc_scores = {
            "uncertainty sum": np.array([r["unc_sum"] for r in clean]),
            "estimated Dice": -np.array([r["est_dice"] for r in clean]),
        }
        summary: dict[str, Any] = {
            "n": len(clean),
            "n_poor": int(poor.sum()),
            "d_auc": {k: qc_d_auc(v, poor) for k, v in qc_scores.items()},
            "curves": {k: [a.tolist() for a in qc_curve(v, poor)] for k, v in qc_scores.items()},
            "ged": float(np.nanmean([r["ged"] for r in clean])) if clean else float("nan"),
            "dice": float(np.mean([r["dice"] for r in clean])),
            "agreement": {},
            "auroc": {},
            "auroc_50": {},
        }
        for level in sorted({r["level"] for r in rs}):
            at = [r for r in rs if r["level"] == level]
            summary["agreement"][str(level)] = {
                field: _quartiles([r[field] for r in at])
                for field in ("agree_mean", "agree_var", "aula", "unc_sum", "pred_frac", "dice")
            }
        full = [r for r in rs if r["level"] == 1.0]
        half = [r for r in rs if r["level"] == 0.5]
        for name, (field, sign) in OOD_SCORES.items():
            if full:
                pair = clean + full
                summary["auroc"][name] = auroc([sign * r[field] for r in pair], [r["level"] == 1.0 for r in pair])
            if half:
                summary["auroc_50"][name] = auroc([sign * r[field] for r in half], [r["distorted"] for r in half])
        out[s] = summary
    return out


def _quartiles(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "q25": float("nan"), "q75": float("nan"), "n": 0}
    q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {"mean": float(v.mean()), "median": float(med), "q25": float(q25), "q75": float(q75), "n": int(v.size)}


def plot_qc_curves(
    summaries: Mapping[str, Mapping[str, Any]],
    structures: Sequence[str],
    path: str | Path,
    score: str = "uncertainty sum",
    title: str | None = None,
) -> Path:
    """Fig. 2a/b: remaining poor fraction vs referred fraction per method, ideal lines dashed, d-AUC in the legend.

    Args:
        summaries: method -> :func:`summarize_run` output (one run, e.g. the first seed).
        structures: one panel each.
        path: PNG to write.
        score: which QC score's curve.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(structures), figsize=(4.6 * len(structures), 4.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, s in zip(axes[0], structures):
        for i, (method, summary) in enumerate(summaries.items()):
            if s not in summary:
                continue
            x, y, y_ideal = (np.asarray(a) for a in summary[s]["curves"][score])
            d = summary[s]["d_auc"][score]
            c = colors[i % len(colors)]
            n_poor = summary[s]["n_poor"]
            label = f"{method} (d-AUC {d:.3f}, {n_poor} poor)" if np.isfinite(d) else f"{method} (no poor image)"
            ax.plot(x, y, color=c, label=label)
            ax.plot(x, y_ideal, color=c, linestyle="--", linewidth=1)
        n = next((v[s]["n"] for v in summaries.values() if s in v), 0)
        ax.set_title(f"{s}: poor = Dice < {POOR_DICE_THRESHOLDS.get(s, float('nan')):.2f} ({n} images)")
        ax.set_xlabel("fraction of images referred (by decreasing " + score + ")")
        ax.set_ylabel("fraction of poor segmentations remaining")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_agreement_by_level(
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    structures: Sequence[str],
    path: str | Path,
    field: str = "agree_mean",
    title: str | None = None,
) -> Path:
    """Fig. 2c: box plots of an agreement score per method at each distortion level, one panel per structure.

    Args:
        records: method -> :func:`analyse_run` records (one run).
        structures: one panel each.
        path: PNG to write.
        field: the record field plotted (``agree_mean``, ``agree_var``, ``aula``).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"agree_mean": "mean pairwise soft Dice of the heads", "agree_var": "variance of pairwise soft Dice"}
    fig, axes = plt.subplots(1, len(structures), figsize=(4.8 * len(structures), 4.0), squeeze=False)
    colors = ["#4c72b0", "#dd8452", "#c44e52"]
    methods = list(records)
    for ax, s in zip(axes[0], structures):
        for mi, method in enumerate(methods):
            for li, level in enumerate(DISTORTION_LEVELS):
                v = [r[field] for r in records[method] if r["structure"] == s and r["level"] == level]
                v = [x for x in v if np.isfinite(x)]
                if not v:
                    continue
                pos = mi * (len(DISTORTION_LEVELS) + 1) + li
                bp = ax.boxplot([v], positions=[pos], widths=0.8, patch_artist=True, medianprops={"color": "black"})
                bp["boxes"][0].set_facecolor(colors[li % len(colors)])
        width = len(DISTORTION_LEVELS) + 1
        ax.set_xticks([mi * width + (len(DISTORTION_LEVELS) - 1) / 2 for mi in range(len(methods))], methods)
        ax.set_title(s)
        ax.set_ylabel(labels.get(field, field))
        ax.grid(alpha=0.3, axis="y")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors[: len(DISTORTION_LEVELS)]]
    fig.legend(handles, [f"{round(100 * f)} % distorted" for f in DISTORTION_LEVELS], loc="lower center", ncol=3)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, path)
