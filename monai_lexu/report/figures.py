"""Figures a person looks at rather than reads (PNG, matplotlib with the Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_reliability_diagram"]


def plot_reliability_diagram(
    confidence: np.ndarray,
    frequency: np.ndarray,
    counts: np.ndarray,
    structures: Sequence[str],
    path: str | Path,
    title: str = "Reliability diagram",
) -> Path:
    """One reliability diagram per structure: observed frequency against mean confidence per bin, plus pixel counts.

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

    confidence, frequency, counts = (np.asarray(a, dtype=float) for a in (confidence, frequency, counts))
    n = len(structures)
    fig, axes = plt.subplots(2, n, figsize=(4 * n, 5.5), gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    edges = np.linspace(0, 1, confidence.shape[1] + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for i, name in enumerate(structures):
        ax, hist = axes[0, i], axes[1, i]
        ok = counts[i] > 0
        ece = float(np.nansum(np.abs(confidence[i] - frequency[i]) * counts[i]) / max(counts[i].sum(), 1))
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.bar(centres[ok], frequency[i][ok], width=edges[1] - edges[0], alpha=0.4, edgecolor="C0", label="frequency")
        ax.plot(confidence[i][ok], frequency[i][ok], "o-", color="C3", label="mean confidence vs frequency")
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f"{name} (ECE {ece:.3f})", xlabel="confidence", ylabel="frequency")
        ax.legend(loc="upper left", fontsize=7)
        hist.bar(centres, counts[i], width=edges[1] - edges[0], color="grey")
        hist.set(yscale="log", xlim=(0, 1), xlabel="confidence", ylabel="pixels")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
