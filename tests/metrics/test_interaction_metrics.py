"""NoC (10 when not reached) and Dice after k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_lexu.metrics.interaction import dice_after_k, number_of_clicks


def test_noc_rule():
    assert number_of_clicks([0.5, 0.7, 0.85, 0.95], 0.8) == 2.0
    assert number_of_clicks([0.9, 0.1], 0.8) == 0.0  # k = 0 counts
    assert number_of_clicks([0.5] * 7, 0.8) == 10.0  # never reached within 6: 10
    # reached only at k = 7: beyond the 6 interactions that count
    assert number_of_clicks([0.5] * 7 + [0.99], 0.8) == 10.0
    assert number_of_clicks([0.5, 0.8], 0.8) == 1.0  # >= threshold
    assert number_of_clicks([math.nan, 0.9], 0.8) == 1.0
    assert number_of_clicks([0.5, 0.6, 0.9], 0.8, max_interactions=1, not_reached=7) == 7.0


def test_dice_after_k():
    out = dice_after_k([[0.5, 0.7], [0.7, math.nan]])
    assert out["mean"] == pytest.approx([0.6, 0.7]) and out["std"] == pytest.approx([0.1, 0.0])
    assert out["n"] == [2, 1]
    with pytest.raises(ValueError, match="cases"):
        dice_after_k(np.zeros(3))
