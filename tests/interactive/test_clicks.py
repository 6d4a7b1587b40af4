"""Each simulated clinician on constructed cases."""

from __future__ import annotations

import numpy as np

from monai_lexu.interactive import (
    candidate_click,
    disagreement_click,
    last_wrong_click,
    random_select_click,
)


def _case():
    target = np.zeros((10, 10))
    target[2:8, 2:8] = 1
    pred = np.zeros((10, 10))
    pred[2:8, 2:5] = 1  # misses columns 5..7 (an 6x3 error region) ...
    pred[0, 0] = 1  # ... and one false-positive pixel
    return pred, target


def test_random_select_clicks_wrong_pixels_uniformly():
    pred, target = _case()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        r, c, lab = random_select_click(pred, target, rng)
        assert pred[r, c] != target[r, c] and lab == target[r, c]
        seen.add((r, c))
    assert len(seen) == 19  # all 18 missed pixels and the false positive
    # nothing wrong: nothing to click; clicked pixels are never clicked again
    assert random_select_click(target, target, rng) is None
    wrong = [(r, c) for r in range(10) for c in range(10) if pred[r, c] != target[r, c]]
    assert random_select_click(pred, target, rng, clicked=wrong[:-1])[:2] == wrong[-1]


def test_last_wrong_clicks_the_centre_of_the_largest_error():
    pred, target = _case()
    # rows 3 and 4 of column 6 are both 2 px from the border of the 6x3 region: the first in raster order
    assert last_wrong_click(pred, target) == (3, 6, 1)
    assert last_wrong_click(pred, target, clicked=[(4, 6)])[2] == 1
    assert last_wrong_click(target, target) is None


def test_disagreement_clicks_where_raters_split_and_labels_by_the_target():
    raters = np.zeros((4, 6, 6))
    raters[:, 1:4, 1:4] = 1
    raters[:2, 4, 1:4] = 1  # row 4: 2 of 4 raters -> the largest disagreement p(1-p) = 1/4
    raters[0, 5, 5] = 1  # 1 of 4 -> 3/16
    target = np.zeros((6, 6))
    target[1:5, 1:4] = 1
    rng = np.random.default_rng(0)
    got = {disagreement_click(raters, target, rng)[:3] for _ in range(100)}
    assert got == {(4, 1, 1), (4, 2, 1), (4, 3, 1)}
    got = disagreement_click(raters, target, rng, clicked=[(4, 1), (4, 2), (4, 3)])
    assert got == (5, 5, 0)
    # unanimous raters: falls back to a random wrong pixel of the prediction
    pred = target.copy()
    pred[0, 0] = 1
    assert disagreement_click(np.stack([target] * 3), target, rng, pred=pred) == (0, 0, 0)


def test_candidate_click_where_the_selected_region_differs_from_the_others():
    target = np.zeros((8, 8))
    target[2:6, 2:6] = 1
    sel = target.copy()
    other = np.zeros((8, 8))
    other[3:5, 3:5] = 1
    regions = np.stack([other, sel])
    pred = other.copy()  # the prediction is the other candidate: the ring of the target is wrong
    rng = np.random.default_rng(0)
    ring = {(r, c) for r in range(2, 6) for c in range(2, 6)} - {(r, c) for r in range(3, 5) for c in range(3, 5)}
    for _ in range(50):
        r, c, lab = candidate_click(regions, 1, pred, target, rng)
        assert (r, c) in ring and lab == 1
    # one candidate only: the last-wrong click
    assert candidate_click(regions[1:], 0, pred, target, rng) == last_wrong_click(pred, target)
