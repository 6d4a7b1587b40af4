"""K-means candidate regions on constructed sets of masks."""

from __future__ import annotations

import numpy as np
import pytest

from monai_lexu.interactive import kmeans_candidates, select_candidate


def _groups():
    small = np.zeros((12, 12))
    small[4:8, 4:8] = 1
    big = np.zeros((12, 12))
    big[2:10, 2:10] = 1
    shifted = np.zeros((12, 12))
    shifted[0:4, 6:12] = 1
    masks = [small] * 4 + [big] * 3 + [shifted] * 1
    noisy = []
    for i, m in enumerate(masks):
        m = m.copy()
        m[11, i] = 1 - m[11, i]  # one pixel of noise per mask
        noisy.append(m)
    return np.stack(noisy), np.array([0] * 4 + [1] * 3 + [2])


def test_kmeans_recovers_the_constructed_groups():
    masks, groups = _groups()
    cands = kmeans_candidates(masks, 3)
    assert cands.sizes.tolist() == [4, 3, 1]  # ordered by size
    assert cands.assignment.tolist() == groups.tolist()
    # each candidate region is the mean of its masks: the group's mask plus the averaged noise pixels
    assert np.allclose(cands.regions[0][4:8, 4:8], 1.0) and cands.regions[0][0:4].sum() == 0
    assert np.allclose(cands.regions[0][11, :4], 0.25)
    assert np.allclose(cands.regions[1][2:10, 2:10], 1.0)
    assert np.allclose(cands.regions[2][0:4, 6:12], 1.0)


def test_kmeans_fewer_distinct_masks_than_k_and_determinism():
    masks, _ = _groups()
    same = np.stack([masks[0]] * 5)
    cands = kmeans_candidates(same, 4)
    assert cands.regions.shape == (1, 12, 12) and cands.sizes.tolist() == [5]
    a, b = kmeans_candidates(masks, 2), kmeans_candidates(masks, 2)
    assert np.array_equal(a.assignment, b.assignment)
    # with K = 2 the shifted mask (42 px from the small one, 74 from the big one) joins the small group
    assert a.assignment.tolist() == [0] * 4 + [1] * 3 + [0] and a.sizes.tolist() == [5, 3]
    with pytest.raises(ValueError, match="k must be"):
        kmeans_candidates(masks, 0)


def test_select_candidate_nearest_to_the_target():
    masks, _ = _groups()
    cands = kmeans_candidates(masks, 3)
    big = np.zeros((12, 12))
    big[2:10, 1:10] = 1
    assert select_candidate(cands.regions, big) == 1
    assert select_candidate(cands.regions, np.zeros((12, 12))) == 0  # the small one is nearest to empty
