"""Known answers of the segmentation quality-control curve and its d-AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_lexu.metrics import POOR_DICE_THRESHOLDS, poor_segmentations, qc_curve, qc_d_auc, qc_dice


def test_perfect_ranking_gives_zero():
    scores = [0.9, 0.1, 0.8, 0.2, 0.3]
    poor = [True, False, True, False, False]  # the two highest scores are the poor ones
    x, y, y_ideal = qc_curve(scores, poor)
    np.testing.assert_allclose(x, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(y, [1, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(y_ideal, y)
    assert qc_d_auc(scores, poor) == 0.0


def test_reversed_ranking_is_the_worst_case():
    # every poor image referred last: d-AUC = 1 - N_poor / N
    scores = [5, 4, 3, 2, 1]
    poor = [False, False, False, True, True]
    _, y, _ = qc_curve(scores, poor)
    np.testing.assert_allclose(y, [1, 1, 1, 1, 0.5, 0])
    assert qc_d_auc(scores, poor) == pytest.approx(1 - 2 / 5)


def test_hand_computed_small_case():
    # order: F, T, F, T -> remaining poor 2,2,1,1,0 of 2; area .25*(1 + .75 + .5 + .25) = .625; ideal 1,.5,0,0,0: .25
    scores = [0.9, 0.8, 0.7, 0.1]
    poor = [False, True, False, True]
    x, y, y_ideal = qc_curve(scores, poor)
    np.testing.assert_allclose(y, [1, 1, 0.5, 0.5, 0])
    np.testing.assert_allclose(y_ideal, [1, 0.5, 0, 0, 0])
    assert qc_d_auc(scores, poor) == pytest.approx(0.375)


def test_ties_keep_input_order_and_no_poor_image_is_nan():
    _, y, _ = qc_curve([1.0, 1.0], [False, True])
    np.testing.assert_allclose(y, [1, 1, 0])
    x, y, y_ideal = qc_curve([0.3, 0.2], [False, False])
    np.testing.assert_allclose(y, 0)
    np.testing.assert_allclose(y_ideal, 0)
    assert math.isnan(qc_d_auc([0.3, 0.2], [False, False]))
    with pytest.raises(ValueError, match="finite"):
        qc_d_auc([np.nan, 1.0], [True, False])


def test_qc_dice_and_poor_flags():
    prob = np.zeros((2, 2, 4, 4))
    soft = np.zeros((2, 2, 4, 4))
    prob[0, 0, :2] = 0.9  # 8 pixels
    soft[0, 0, :1] = 0.6  # 4 of them: Dice 2*4 / 12
    soft[1, 1, 0, 0] = 0.4  # below 0.5: both empty -> 1
    d = qc_dice(prob, soft)
    np.testing.assert_allclose(d, [[8 / 12, 1.0], [1.0, 1.0]])
    flags = poor_segmentations(d, ["disc", "cup"])
    np.testing.assert_array_equal(flags, [[True, False], [False, False]])
    assert POOR_DICE_THRESHOLDS["GTVn"] == 0.55
    with pytest.raises(ValueError, match="no poor-segmentation Dice threshold"):
        poor_segmentations(d, ["disc", "lung"])
