"""Tests for monai_lexu.metrics.band_core: the band/core uncertainty ratio (known answers, degenerate inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_lexu.metrics import BandCoreRatioMetric, band_core_ratio


def _maps() -> tuple[torch.Tensor, torch.Tensor]:
    """One image, two structures, 6 pixels: soft labels from 3 raters."""
    soft = torch.tensor([[[1.0, 1.0, 2 / 3, 1 / 3, 0.0, 0.0], [1.0, 0.5, 0.5, 0.0, 0.0, 0.0]]])  # (1, 2, 6)
    unc = torch.tensor([[[0.1, 0.3, 0.6, 0.4, 0.9, 0.0], [0.2, 0.4, 0.8, 0.0, 0.0, 0.0]]])
    return unc, soft


def test_known_answer():
    unc, soft = _maps()
    ratio = band_core_ratio(unc, soft)
    # GTVp-like: band (2/3, 1/3) mean 0.5; core (1, 1) mean 0.2 -> 2.5; outside (0.9) ignored
    # second: band (0.5, 0.5) mean 0.6; core 0.2 -> 3.0
    assert ratio.shape == (1, 2) and ratio.dtype == torch.float32
    np.testing.assert_allclose(ratio.numpy(), [[2.5, 3.0]], rtol=1e-6)


def test_spatial_shape_and_numpy_input():
    unc, soft = _maps()
    ratio = band_core_ratio(unc.reshape(1, 2, 2, 3).numpy(), soft.reshape(1, 2, 2, 3).numpy())
    np.testing.assert_allclose(ratio.numpy(), [[2.5, 3.0]], rtol=1e-6)


def test_uniform_uncertainty_gives_one():
    _, soft = _maps()
    np.testing.assert_allclose(band_core_ratio(torch.full_like(soft, 0.3), soft).numpy(), [[1.0, 1.0]])


def test_degenerate_inputs_give_nan():
    unc = torch.tensor([[[0.5, 0.5, 0.5]], [[0.5, 0.5, 0.5]], [[0.0, 0.3, 0.0]], [[0.5, float("nan"), 0.5]]])
    soft = torch.tensor([[[1.0, 1.0, 0.0]], [[0.5, 0.5, 0.0]], [[1.0, 0.5, 0.0]], [[1.0, 0.5, 0.0]]])
    ratio = band_core_ratio(unc, soft)  # (4, 1)
    # no band (one rater / full agreement), no core, zero core uncertainty, a NaN in the map
    assert all(math.isnan(v) for v in ratio[:, 0].tolist())


def test_soft_label_rounding_tolerance():
    # a mean of three raters is not exactly 1 in float32 arithmetic on every path: 1 - 1e-7 still counts as core
    soft = torch.tensor([[[1.0 - 1e-7, 1e-7, 0.5]]])
    unc = torch.tensor([[[0.2, 0.9, 0.4]]])
    assert band_core_ratio(unc, soft).item() == pytest.approx(2.0)  # band: only 0.5; 1e-7 is "outside"


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        band_core_ratio(torch.zeros(1, 2, 4), torch.zeros(1, 1, 4))


def test_cumulative_class_mean_skips_undefined_images():
    unc, soft = _maps()
    metric = BandCoreRatioMetric()
    metric(unc, soft)
    metric(torch.full_like(soft, 0.3), soft)  # 1.0 for both
    metric(unc, torch.zeros_like(soft))  # no band, no core: NaN, left out
    np.testing.assert_allclose(metric.aggregate().numpy(), [1.75, 2.0], rtol=1e-6)
    assert metric.num_excluded().tolist() == [1, 1]
    with pytest.raises(ValueError, match="soft label"):
        BandCoreRatioMetric()(unc)
