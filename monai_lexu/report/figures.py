"""Figures a person looks at rather than reads (PNG, matplotlib with the Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_case", "plot_method_comparison", "plot_reliability_diagram", "save_figure"]


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG (creating the folder) and close it; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_reliability_diagram(
    confidence: np.ndarray,
    frequency: np.ndarray,
    counts: np.ndarray,
    structures: Sequence[str],
    path: str | Path,
    title: str = "Reliability diagram",
) -> Path:
    """One reliability diagram per structure: observed frequency against mean confidence per bin, plus pixel counts.

    Each panel's title gives the structure's pooled ECE
    (:func:`monai_lexu.metrics.calibration.pooled_expected_calibration_error`; NaN when it has no pixel).

    Args:
        confidence: mean predicted probability per bin (L, M); NaN for empty bins.
        frequency: observed frequency per bin (L, M), i.e. the mean soft label of the bin's pixels.
        counts: pixels per bin (L, M).
        structures: the L structure names.
        path: output PNG.
        title: figure title.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from monai_lexu.metrics.calibration import pooled_expected_calibration_error

    confidence, frequency, counts = (np.asarray(a, dtype=float) for a in (confidence, frequency, counts))
    eces = pooled_expected_calibration_error(
        *(torch.as_tensor(np.nan_to_num(a) * counts) for a in (confidence, frequency)), torch.as_tensor(counts)
    )
    n = len(structures)
    fig, axes = plt.subplots(2, n, figsize=(4 * n, 5.5), gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    edges = np.linspace(0, 1, confidence.shape[1] + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for i, name in enumerate(structures):
        ax, hist = axes[0, i], axes[1, i]
        ok = counts[i] > 0
        ece = float(eces[i])
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.bar(centres[ok], frequency[i][ok], width=edges[1] - edges[0], alpha=0.4, edgecolor="C0", label="frequency")
        ax.plot(confidence[i][ok], frequency[i][ok], "o-", color="C3", label="mean confidence vs frequency")
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f"{name} (ECE {ece:.3f})", xlabel="confidence", ylabel="frequency")
        ax.legend(loc="upper left", fontsize=7)
        hist.bar(centres, counts[i], width=edges[1] - edges[0], color="grey")
        hist.set(yscale="log", xlim=(0, 1), xlabel="confidence", ylabel="pixels")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _display_image(image: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """(C, H, W) network input -> (H, W) grey or (H, W, 3) RGB in [0, 1] (per-channel min-max)."""
    if image is None:
        return np.zeros(shape)
    img = np.asarray(image, dtype=float)
    lo = img.reshape(img.shape[0], -1).min(1)[:, None, None]
    hi = img.reshape(img.shape[0], -1).max(1)[:, None, None]
    img = (img - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.moveaxis(img, 0, -1) if img.shape[0] == 3 else img[0]


def plot_method_comparison(
    maps: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    structures: Sequence[str],
    title: str = "",
) -> Path:
    """LEXU Fig. 3 for one image: rater contours, ground-truth variance and every method's variance map.

    Layout: one row per structure ``l`` with [input + every rater's contour of ``l``, ground-truth variance
    (unbiased variance of the raters), each method's uncertainty map], each titled with its sum of variances (SV),
    and a last row with [input + the soft majority's contour (soft label >= 0.5) per structure, the ground-truth
    mask (soft label >= 0.5), each method's predicted mask (prob >= 0.5)]. Deliberate difference from the paper:
    every heat map has its own colour scale (0 to its maximum, with a colour bar), since the methods' variances
    differ by orders of magnitude; the SV in the title carries the scale.

    Args:
        maps: method -> the case's maps (:func:`load_case_maps`), all of the SAME image; the first method's
            ``image``, ``raters``, ``soft_label`` and ``rater_var`` are drawn as the input and ground truth.
        path: output PNG.
        structures: the L structure names.
        title: figure title.

    Returns:
        the written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not maps:
        raise ValueError("plot_method_comparison needs the maps of at least one method.")
    ref = next(iter(maps.values()))
    var = np.asarray(ref["rater_var"], dtype=float)
    soft = np.asarray(ref["soft_label"], dtype=float)
    if var.ndim != 3 or var.shape[0] != len(structures):
        raise ValueError(f"expected (L={len(structures)}, H, W) maps, got rater_var {var.shape}")
    for name, m in maps.items():
        if np.asarray(m["unc"]).shape != var.shape:
            raise ValueError(f"{name}: unc {np.asarray(m['unc']).shape} is not the reference shape {var.shape}")
    image = _display_image(ref.get("image"), var.shape[1:])
    raters = np.asarray(ref["raters"], dtype=float) if "raters" in ref else None
    n_cols = 2 + len(maps)
    n_rows = len(structures) + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 2.6 * n_rows), squeeze=False)
    cmap = plt.get_cmap("tab10")

    def _heat(ax: Any, data: np.ndarray, label: str) -> None:
        im = ax.imshow(data, cmap="magma", vmin=0.0, vmax=max(float(data.max()), 1e-12))
        ax.set_title(f"{label}\nSV {data.sum():.1f}", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)

    for row, s in enumerate(structures):
        ax = axes[row, 0]
        ax.imshow(image, cmap="gray")
        if raters is not None:
            for r in range(raters.shape[0]):
                if raters[r, row].any() and not raters[r, row].all():
                    ax.contour(raters[r, row], levels=[0.5], colors=[cmap(r % 10)], linewidths=0.7)
        ax.set_title(f"{s}: {0 if raters is None else raters.shape[0]} raters", fontsize=8)
        _heat(axes[row, 1], var[row], "ground-truth variance")
        for col, (name, m) in enumerate(maps.items(), start=2):
            _heat(axes[row, col], np.asarray(m["unc"], dtype=float)[row], name)
    last = axes[-1]
    last[0].imshow(image, cmap="gray")
    for i in range(len(structures)):
        if (soft[i] >= 0.5).any() and not (soft[i] >= 0.5).all():
            last[0].contour(soft[i] >= 0.5, levels=[0.5], colors=[cmap(i % 10)], linewidths=1.0)
    last[0].set_title("soft majority (>= 0.5)", fontsize=8)

    def _labels(p: np.ndarray) -> np.ndarray:
        out = np.zeros(p.shape[1:], dtype=int)
        for i in range(p.shape[0]):
            out[p[i] >= 0.5] = i + 1
        return out

    last[1].imshow(_labels(soft), cmap="viridis", vmin=0, vmax=len(structures), interpolation="nearest")
    last[1].set_title("ground truth mask", fontsize=8)
    for col, (name, m) in enumerate(maps.items(), start=2):
        last[col].imshow(_labels(np.asarray(m["prob"], dtype=float)), cmap="viridis", vmin=0, vmax=len(structures))
        last[col].set_title(f"{name} mask", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def _radiological(a: np.ndarray) -> np.ndarray:
    """An axial RAS slice ``(X, Y)`` as shown in a viewer: anterior up, the patient's right on the left."""
    return np.asarray(a).T[::-1, ::-1]


def plot_case(
    record: Mapping[str, Any],
    path: str | Path,
    structures: Sequence[str],
    title: str = "",
    channel_names: Sequence[str] = ("CT", "PET"),
) -> Path:
    """One case at a glance: CT and PET with every rater's contours, probability and per-structure uncertainty.

    Panels (one axial slice of a RAS volume, shown as in a viewer: anterior up, the patient's right on the left):
    the image channels (``channel_names``; e.g. CT and PET) with every valid rater's contour of every structure
    (one colour family per structure, one shade per rater); the probability of every structure (``prob``, colour per
    structure) with the soft majority's contour (soft label >= 0.5) and the prediction's contour (prob >= 0.5,
    dashed); then one uncertainty map per structure (``unc``, 0 to its maximum) with the raters' disagreement band
    outlined (0 < soft label < 1) and, in its title, the slice's band/core ratio
    (:func:`monai_lexu.metrics.band_core.band_core_ratio`).

    Args:
        record: one case's maps as kept by :meth:`monai_lexu.handlers.UncertaintyReport.keep_maps` (or read back
            from ``<prefix>_maps/<id>.npz``): ``image`` (C, H, W) as the network saw it, ``raters`` (R, L, H, W),
            ``prob``, ``unc``, ``soft_label`` (L, H, W), ``id`` and ``slice``.
        path: output PNG.
        structures: the L structure names.
        title: figure title (the case id and slice are added).
        channel_names: names of the image channels drawn (the first ``len(channel_names)`` channels).

    Returns:
        the written path.

    Raises:
        ValueError: if the maps are not (L, H, W) with L = ``len(structures)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from monai_lexu.metrics.band_core import band_core_ratio

    prob = np.asarray(record["prob"], dtype=float)
    unc = np.asarray(record["unc"], dtype=float)
    soft = np.asarray(record["soft_label"], dtype=float)
    if prob.ndim != 3 or prob.shape[0] != len(structures) or unc.shape != prob.shape or soft.shape != prob.shape:
        raise ValueError(
            f"plot_case expects (L={len(structures)}, H, W) prob/unc/soft_label, got {prob.shape}, {unc.shape}, "
            f"{soft.shape}."
        )
    image = np.asarray(record["image"], dtype=float) if "image" in record else np.zeros((1, *prob.shape[1:]))
    raters = np.asarray(record["raters"], dtype=float) if "raters" in record else np.zeros((0, *prob.shape))
    names = list(channel_names)[: image.shape[0]]
    families = ["Reds", "Blues", "Greens", "Purples", "Oranges"]
    solid = ["red", "deepskyblue", "lime", "magenta", "orange"]
    n_struct = len(structures)
    n_cols = len(names) + 1 + n_struct
    fig, axes = plt.subplots(1, n_cols, figsize=(3.2 * n_cols, 3.6), squeeze=False)
    axes = axes[0]

    def contours(ax: Any, mask: np.ndarray, color: Any, **kwargs: Any) -> None:
        m = _radiological(mask).astype(float)
        if m.max() > 0 and m.min() < 1:
            ax.contour(m, levels=[0.5], colors=[color], **kwargs)

    for c, name in enumerate(names):
        ax = axes[c]
        ax.imshow(_radiological(image[c]), cmap="gray" if c == 0 else "hot")
        for k in range(n_struct):
            cmap = plt.get_cmap(families[k % len(families)])
            for r in range(raters.shape[0]):
                contours(ax, raters[r, k] > 0.5, cmap(0.45 + 0.5 * r / max(raters.shape[0] - 1, 1)), linewidths=0.8)
        ax.set_title(f"{name} + {raters.shape[0]} raters", fontsize=9)
    ax = axes[len(names)]
    rgb = np.zeros((*_radiological(prob[0]).shape, 3))
    for k in range(n_struct):
        rgb += _radiological(prob[k])[..., None] * np.asarray(matplotlib.colors.to_rgb(solid[k % len(solid)]))
    ax.imshow(np.clip(rgb, 0, 1))
    for k in range(n_struct):
        contours(ax, soft[k] >= 0.5, "white", linewidths=0.8)
        contours(ax, prob[k] >= 0.5, solid[k % len(solid)], linewidths=1.0, linestyles="dashed")
    ax.set_title(
        "probability (" + ", ".join(f"{s} {solid[i % len(solid)]}" for i, s in enumerate(structures)) + ")\n"
        "white: soft majority, dashed: prob >= 0.5",
        fontsize=8,
    )
    ratios = band_core_ratio(torch.as_tensor(unc[None]), torch.as_tensor(soft[None]))[0].tolist()
    for k, s in enumerate(structures):
        ax = axes[len(names) + 1 + k]
        im = ax.imshow(_radiological(unc[k]), cmap="magma", vmin=0.0, vmax=max(float(unc[k].max()), 1e-12))
        contours(ax, (soft[k] > 0) & (soft[k] < 1), "cyan", linewidths=0.6)
        contours(ax, soft[k] >= 1, "lime", linewidths=0.6, linestyles="dotted")
        ax.set_title(f"{s} uncertainty\ncyan: band, green: core; band/core {ratios[k]:.2f}", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    where = f"{record.get('id', '')}" + (
        f", axial slice {int(record['slice'])}" if int(record.get("slice", -1)) >= 0 else ""
    )
    fig.suptitle(f"{title}: {where}" if title else where, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
