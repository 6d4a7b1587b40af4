"""Generalised energy distance against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_lexu.metrics import generalized_energy_distance, iou_distance_matrix


def test_iou_distance_matrix_nan_for_two_empty_masks():
    a = np.array([[1, 1, 0, 0], [0, 0, 0, 0]])
    b = np.array([[1, 0, 0, 0], [0, 0, 0, 0]])
    d = iou_distance_matrix(a, b)
    assert d[0, 0] == pytest.approx(0.5)
    assert d[0, 1] == 1.0 and d[1, 0] == 1.0
    assert math.isnan(d[1, 1])


def test_ged_hand_computed():
    # samples (thresholded at 0.5): s1 = {0,1}, s2 = {0}; raters y1 = {0,1}, y2 = {1,2}
    samples = np.array([[0.9, 0.8, 0.1, 0.0], [0.7, 0.2, 0.0, 0.4]])
    raters = np.array([[1, 1, 0, 0], [0, 1, 1, 0]])
    # d(s,y): s1y1 0, s1y2 1 - 1/3, s2y1 1 - 1/2, s2y2 1 -> mean (0 + 2/3 + 1/2 + 1) / 4
    d_sy = (0 + 2 / 3 + 1 / 2 + 1) / 4
    # d(s,s') over all 4 ordered pairs incl. diagonal: 0, 1/2, 1/2, 0
    d_ss = 1 / 4
    # d(y,y'): 0, 2/3, 2/3, 0
    d_yy = 1 / 3
    assert generalized_energy_distance(samples, raters) == pytest.approx(2 * d_sy - d_ss - d_yy)


def test_ged_nan_aware():
    # one empty sample and one empty rater: the empty-empty pairs are left out of each mean
    samples = np.array([[1.0, 0.0], [0.0, 0.0]])
    raters = np.array([[1, 0], [0, 0]])
    # d(s,y): s1y1 0, s1y2 1, s2y1 1, s2y2 NaN -> 2/3; d(s,s'): 0, 1, 1, NaN -> 2/3; same for y
    assert generalized_energy_distance(samples, raters) == pytest.approx(2 * 2 / 3 - 2 / 3 - 2 / 3)
    assert math.isnan(generalized_energy_distance(np.zeros((2, 3)), np.zeros((1, 3))))
    assert generalized_energy_distance(raters.astype(float), raters) == pytest.approx(0.0)
