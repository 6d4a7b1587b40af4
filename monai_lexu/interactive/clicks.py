"""Simulated clinicians (MedUHIP §3.1): where the next click goes and what it says.

The paper names three behaviours and gives no definition or code; every definition below is ours. A click is
``(row, col, label)`` with label 1 (foreground) or 0 (background); every click is labelled by the simulated
clinician's target mask at that pixel. No strategy clicks a pixel twice (``clicked``).

* ``"random"`` (random select, "limited background knowledge"): a pixel drawn uniformly among the pixels the
  current prediction gets wrong.
* ``"disagreement"`` (clinician disagreement, "assertive"): a pixel drawn uniformly among those where the raters
  disagree most (largest ``p (1 - p)`` of the raters' mean ``p``), whether or not the prediction is wrong there;
  if the raters agree everywhere, a random wrong pixel.
* ``"last_wrong"`` (last wrong, "experienced, self-correcting"): the centre of the largest connected region
  (4-connectivity) of the current prediction's errors, i.e. its pixel farthest from the region's border (largest
  Euclidean distance transform; first in raster order on ties); deterministic.
* ``"meduhip"`` (MedUHIP's own choice of candidate region): the clinician picks the candidate region nearest its
  target (:func:`~monai_lexu.interactive.candidates.select_candidate`); the click goes where that candidate differs
  most from the others, ``|C_sel - mean(C_others)|``, among the pixels where the selected candidate is right, with
  pixels the current prediction gets wrong ranked first; drawn uniformly among the 20 best (as ``ImprintLab/SPA``
  draws from its top 20). With a single candidate or candidates that agree everywhere: the last-wrong click.

Each function returns ``None`` when it has nothing to click (e.g. the prediction is already perfect).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

__all__ = [
    "CLICK_STRATEGIES",
    "Click",
    "candidate_click",
    "disagreement_click",
    "last_wrong_click",
    "random_select_click",
]

Click = tuple[int, int, int]
CLICK_STRATEGIES = ("random", "disagreement", "last_wrong", "meduhip")


def _free(shape: tuple[int, ...], clicked: Collection[tuple[int, int]]) -> np.ndarray:
    free = np.ones(shape, dtype=bool)
    for r, c in clicked:
        free[r, c] = False
    return free


def _click_at(index: int, shape: tuple[int, ...], target: np.ndarray) -> Click:
    r, c = np.unravel_index(index, shape)
    return int(r), int(c), int(target[r, c] >= 0.5)


def random_select_click(
    pred: np.ndarray, target: np.ndarray, rng: np.random.Generator, clicked: Collection[tuple[int, int]] = ()
) -> Click | None:
    """Random select: a uniformly drawn wrongly segmented pixel (``pred (H, W)`` and ``target (H, W)`` binary)."""
    pred, target = np.asarray(pred) >= 0.5, np.asarray(target) >= 0.5
    wrong = (pred != target) & _free(target.shape, clicked)
    idx = np.flatnonzero(wrong)
    if idx.size == 0:
        return None
    return _click_at(int(rng.choice(idx)), target.shape, target)


def disagreement_click(
    raters: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    clicked: Collection[tuple[int, int]] = (),
    pred: np.ndarray | None = None,
) -> Click | None:
    """Clinician disagreement: a uniformly drawn pixel of largest rater disagreement ``p (1 - p)``.

    Args:
        raters: ``(R, H, W)`` the raters' binary masks.
        target: ``(H, W)`` the clinician's target (the click's label).
        rng: random generator.
        clicked: pixels already clicked.
        pred: the current prediction, used only for the fallback when the raters agree everywhere.
    """
    p = np.asarray(raters, dtype=np.float64).mean(0)
    dis = p * (1.0 - p)
    free = _free(dis.shape, clicked)
    if not np.any(free & (dis > 0)):
        return None if pred is None else random_select_click(pred, target, rng, clicked)
    best = dis[free].max()
    idx = np.flatnonzero(free & (dis >= best - 1e-12))
    return _click_at(int(rng.choice(idx)), dis.shape, np.asarray(target))


def last_wrong_click(pred: np.ndarray, target: np.ndarray, clicked: Collection[tuple[int, int]] = ()) -> Click | None:
    """Last wrong: the centre (largest distance to the border) of the largest connected error region."""
    from scipy.ndimage import distance_transform_edt, label

    pred, target = np.asarray(pred) >= 0.5, np.asarray(target) >= 0.5
    wrong = (pred != target) & _free(target.shape, clicked)
    regions, n = label(wrong)
    if n == 0:
        return None
    sizes = np.bincount(regions.ravel())[1:]
    biggest = regions == (int(np.argmax(sizes)) + 1)
    dist = distance_transform_edt(np.pad(biggest, 1))[1:-1, 1:-1]
    return _click_at(int(np.argmax(dist)), target.shape, target)


def candidate_click(
    regions: np.ndarray,
    selected: int,
    pred: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    clicked: Collection[tuple[int, int]] = (),
    top: int = 20,
) -> Click | None:
    """MedUHIP's choice: a click where the selected candidate region differs most from the others (see module).

    Args:
        regions: ``(K, H, W)`` candidate regions (probability maps).
        selected: index of the clinician's candidate.
        pred: ``(H, W)`` the current prediction ``P_soft``.
        target: ``(H, W)`` the clinician's target.
        rng: random generator.
        clicked: pixels already clicked.
        top: the click is drawn among this many best pixels.
    """
    regions = np.asarray(regions, dtype=np.float64)
    target_b = np.asarray(target) >= 0.5
    if regions.shape[0] < 2:
        return last_wrong_click(pred, target, clicked)
    sel = regions[selected]
    others = np.delete(regions, selected, axis=0).mean(0)
    diff = np.abs(sel - others)
    right = ((sel >= 0.5) == target_b) & _free(target_b.shape, clicked) & (diff > 1e-9)
    if not np.any(right):
        return last_wrong_click(pred, target, clicked)
    wrong_now = (np.asarray(pred) >= 0.5) != target_b
    score = np.where(right, diff + 2.0 * wrong_now, -np.inf).ravel()
    k = int(min(top, np.count_nonzero(right)))
    best = np.argpartition(-score, k - 1)[:k]
    return _click_at(int(rng.choice(best)), target_b.shape, target_b)
