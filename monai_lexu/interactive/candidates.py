"""K candidate regions from the N predicted masks (MedUHIP §3.2/§3.4): K-means over the masks.

Our definitions (the paper says only "cluster them into K groups by K-means"): the points are the ``N`` masks
flattened to vectors (squared Euclidean distance = number of differing pixels for binary masks); the
initialisation is deterministic farthest-point (first centre: the mask nearest the mean of all; then, repeatedly,
the mask farthest from its nearest centre), so the clustering of one set of masks never changes; Lloyd iterations
until the assignment is stable (at most ``max_iter``); empty clusters are dropped, and with fewer distinct masks
than ``K`` there are fewer candidates. A candidate region ``C_k`` is the mean of its cluster's masks (a probability
map); candidates are ordered by cluster size (largest first), ties by first member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CandidateRegions", "kmeans_candidates", "select_candidate"]


@dataclass
class CandidateRegions:
    """Result of :func:`kmeans_candidates`.

    Attributes:
        regions: ``(K', *S)`` float, the mean mask of each cluster (``K' <= K``).
        assignment: ``(N,)`` int, the candidate index of each input mask.
        sizes: ``(K',)`` int, the number of masks per candidate.
    """

    regions: np.ndarray
    assignment: np.ndarray
    sizes: np.ndarray


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(len(a), len(b))`` of row vectors (clipped at 0 against rounding)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def kmeans_candidates(masks: np.ndarray, k: int, max_iter: int = 50) -> CandidateRegions:
    """Cluster ``N`` masks into at most ``k`` candidate regions (see the module docstring).

    Args:
        masks: ``(N, *S)`` binary or probability masks.
        k: the number of clusters ``K`` (>= 1).
        max_iter: Lloyd iterations at most.

    Returns:
        :class:`CandidateRegions`.

    Raises:
        ValueError: if ``k < 1`` or there is no mask.
    """
    masks = np.asarray(masks, dtype=np.float64)
    if k < 1:
        raise ValueError(f"kmeans_candidates: k must be >= 1, got {k}.")
    if masks.ndim < 2 or masks.shape[0] == 0:
        raise ValueError(f"kmeans_candidates: masks must be (N, *S) with N >= 1, got shape {masks.shape}.")
    n = masks.shape[0]
    x = masks.reshape(n, -1)
    pair = _sq_dist(x, x)
    distinct = sum(1 for i in range(n) if not any(np.array_equal(x[i], x[j]) for j in range(i) if pair[i, j] < 0.5))
    k = min(k, distinct)
    first = int(np.argmin(_sq_dist(x, x.mean(0, keepdims=True))[:, 0]))
    centres = [first]
    nearest = pair[:, first].copy()
    while len(centres) < k:
        nxt = int(np.argmax(nearest))
        centres.append(nxt)
        nearest = np.minimum(nearest, pair[:, nxt])
    c = x[centres]
    assign = np.full(n, -1)
    for _ in range(max_iter):
        dist = _sq_dist(x, c)
        new = dist.argmin(1)
        if np.array_equal(new, assign):
            break
        assign = new
        c = np.stack([x[assign == j].mean(0) if np.any(assign == j) else c[j] for j in range(c.shape[0])])
    used = [j for j in range(c.shape[0]) if np.any(assign == j)]
    order = sorted(used, key=lambda j: (-int(np.sum(assign == j)), int(np.flatnonzero(assign == j)[0])))
    remap = {j: i for i, j in enumerate(order)}
    regions = np.stack([x[assign == j].mean(0) for j in order]).reshape(len(order), *masks.shape[1:])
    assignment = np.array([remap[int(a)] for a in assign])
    sizes = np.array([int(np.sum(assign == j)) for j in order])
    return CandidateRegions(regions=regions, assignment=assignment, sizes=sizes)


def select_candidate(regions: np.ndarray, target: np.ndarray) -> int:
    """The simulated clinician's choice (ours): the candidate nearest its target mask (squared Euclidean distance,
    i.e. K-means' ``predict`` of the target); ties go to the first (largest) candidate.

    Args:
        regions: ``(K, *S)`` candidate regions.
        target: ``(*S)`` the clinician's (binary) target.
    """
    regions = np.asarray(regions, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64).reshape(1, -1)
    return int(np.argmin(((regions.reshape(regions.shape[0], -1) - t) ** 2).sum(1)))
