"""Tests of monai_lexu.metrics.utils."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_lexu.metrics import as_float_tensor, check_same_shape, image_scores, nan_aware_reduction


def test_as_float_tensor_and_image_scores():
    t = as_float_tensor(np.array([[1, 2]]), "x")
    assert t.dtype == torch.float64 and t.tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="`x`"):
        as_float_tensor("abc", "x")
    # (N, L, 2, 2) maps -> pixel sums; (N, L) passes through
    maps = torch.arange(16.0).reshape(2, 2, 2, 2)  # sums: 0+1+2+3=6, 4..7=22, 8..11=38, 12..15=54
    assert image_scores(maps, "y").tolist() == [[6.0, 22.0], [38.0, 54.0]]
    assert image_scores([[1.0, 2.0]], "y").tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="`y`"):
        image_scores(torch.zeros(3), "y")


def test_check_same_shape_messages():
    with pytest.raises(ValueError, match=r"`a` and `b` must have the same shape, got \(1, 2, 3\) and \(1, 2, 4\)"):
        check_same_shape(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4), names="a, b")
    with pytest.raises(ValueError, match="at least 3 dims"):
        check_same_shape(torch.zeros(1, 2), torch.zeros(1, 2))


def test_nan_aware_reduction():
    # column 0: [1, NaN, 3] -> mean 2 over 2 values; column 1: all NaN -> NaN (MONAI alone would give 0)
    f = torch.tensor([[1.0, math.nan], [math.nan, math.nan], [3.0, math.nan]])
    red, not_nans = nan_aware_reduction(f, "mean_batch")
    assert red[0].item() == 2.0 and math.isnan(red[1].item())
    assert not_nans.tolist() == [2.0, 0.0]
    assert torch.isnan(f).sum().item() == 4  # input untouched
    none, _ = nan_aware_reduction(f, "none")
    assert torch.isnan(none).sum().item() == 4
