"""Figures a person looks at rather than reads (PNG, matplotlib with the Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_method_comparison", "plot_reliability_diagram", "save_figure"]


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
