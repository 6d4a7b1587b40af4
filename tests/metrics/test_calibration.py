"""Tests of monai_lexu.metrics.calibration: ECE (via MONAI) and reliability-diagram data with soft labels."""

from __future__ import annotations

import math

import pytest
import torch

from monai_lexu.metrics import (
    CalibrationMetric,
    expected_calibration_error,
    pooled_expected_calibration_error,
    reliability_curve,
)

# 4 pixels, 2 bins [0, 0.5), [0.5, 1]:
#   bin 0: p = 0.05, 0.15 (conf 0.1), soft y = 0, 0.5 (freq 0.25) -> gap 0.15, n = 2
#   bin 1: p = 0.85, 0.95 (conf 0.9), soft y = 1, 0.5 (freq 0.75) -> gap 0.15, n = 2
#   ECE = (2 * 0.15 + 2 * 0.15) / 4 = 0.15
#   with target 1[y > 0.5] = [0, 0, 1, 0]: gaps 0.1 and 0.4 -> ECE = (2 * 0.1 + 2 * 0.4) / 4 = 0.25
P = torch.tensor([0.05, 0.15, 0.85, 0.95]).reshape(1, 1, 2, 2)
Y = torch.tensor([0.0, 0.5, 1.0, 0.5]).reshape(1, 1, 2, 2)


def test_ece_known_answer():
    assert expected_calibration_error(P, Y, num_bins=2).item() == pytest.approx(0.15, abs=1e-6)
    assert expected_calibration_error(P, Y, num_bins=2, target_threshold=0.5).item() == pytest.approx(0.25, abs=1e-6)
    # "average" (ACE) = mean of the two gaps; "maximum" (MCE) = largest gap
    assert expected_calibration_error(P, Y, 2, calibration_reduction="average").item() == pytest.approx(0.15)
    assert expected_calibration_error(P, Y, 2, target_threshold=0.5, calibration_reduction="maximum").item() == (
        pytest.approx(0.4)
    )
    assert expected_calibration_error(P.numpy(), Y.numpy(), num_bins=2).shape == (1, 1)


def test_ece_soft_label_equals_pooling_raters():
    # the soft label as target gives the ECE of the prediction against every rater's binary mask pooled
    g = torch.Generator().manual_seed(0)
    raters = (torch.rand(1, 4, 2, 5, 5, generator=g) > 0.5).float()  # (B, R, L, H, W)
    soft = raters.mean(1)
    p = torch.rand(1, 2, 5, 5, generator=g)
    pooled_p = p.flatten(2).repeat(1, 1, 4)  # the same prediction once per rater
    pooled_y = raters[0].permute(1, 0, 2, 3).reshape(1, 2, -1)  # (1, L, R*H*W)
    torch.testing.assert_close(
        expected_calibration_error(p, soft, num_bins=10), expected_calibration_error(pooled_p, pooled_y, num_bins=10)
    )


def test_ece_perfect_calibration_and_errors():
    # every pixel in a bin has the same p and the soft label equals it -> ECE 0
    y = torch.tensor([0.25, 0.25, 0.75, 0.75]).reshape(1, 1, 2, 2)
    assert expected_calibration_error(y, y, num_bins=4).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="NaN"):
        expected_calibration_error(torch.full((1, 1, 2, 2), math.nan), Y)
    with pytest.raises(ValueError, match=r"y_pred.*\[0, 1\]"):
        expected_calibration_error(P * 3, Y)
    with pytest.raises(ValueError, match="same shape"):
        expected_calibration_error(P, Y[..., :1])


def test_reliability_curve_known_answer():
    rc = reliability_curve(P, Y, num_bins=2)
    torch.testing.assert_close(rc.confidence, torch.tensor([[0.1, 0.9]]))
    torch.testing.assert_close(rc.frequency, torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(rc.counts, torch.tensor([[2.0, 2.0]]))
    torch.testing.assert_close(rc.bin_edges, torch.tensor([0.0, 0.5, 1.0]))
    assert rc.expected_calibration_error().item() == pytest.approx(0.15, abs=1e-6)
    # 4 bins: the middle bins [0.25, 0.5) and [0.5, 0.75) are empty -> NaN, count 0
    rc4 = reliability_curve(P, Y, num_bins=4)
    assert torch.isnan(rc4.confidence[0, 1:3]).all() and rc4.counts[0].tolist() == [2.0, 0.0, 0.0, 2.0]
    # pooled over images: the two halves as two images give the same curve
    two = reliability_curve(P.reshape(2, 1, 1, 2), Y.reshape(2, 1, 1, 2), num_bins=2)
    torch.testing.assert_close(two.frequency, rc.frequency)


def test_calibration_metric_accumulates_over_iterations():
    g = torch.Generator().manual_seed(1)
    p, y = torch.rand(6, 2, 4, 4, generator=g), torch.rand(6, 2, 4, 4, generator=g)
    metric = CalibrationMetric(num_bins=5)
    metric(p[:2], y[:2])
    metric(p[2:], y[2:])
    torch.testing.assert_close(metric.aggregate(), expected_calibration_error(p, y, num_bins=5).mean(0))
    rc, ref = metric.reliability(), reliability_curve(p, y, num_bins=5)
    torch.testing.assert_close(rc.counts, ref.counts)
    torch.testing.assert_close(rc.confidence, ref.confidence)
    torch.testing.assert_close(rc.frequency, ref.frequency)
    thr = CalibrationMetric(num_bins=5, target_threshold=0.5)
    thr(p, y)
    torch.testing.assert_close(thr.aggregate(), expected_calibration_error(p, (y > 0.5).float(), 5).mean(0))


def test_pooled_expected_calibration_error_known_answer_and_empty_policy():
    # structure 0, 3 bins: bin 0 has 2 pixels with confidences summing to 0.2 and targets to 0.5 (gap 0.3),
    # bin 1 is empty, bin 2 has 2 pixels: confidences 1.8, targets 1.5 (gap 0.3) -> ECE = (0.3 + 0.3) / 4 = 0.15
    # structure 1: no pixel in any bin -> NaN (the documented empty policy)
    sum_conf = torch.tensor([[0.2, 0.0, 1.8], [0.0, 0.0, 0.0]])
    sum_freq = torch.tensor([[0.5, 0.0, 1.5], [0.0, 0.0, 0.0]])
    counts = torch.tensor([[2.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    ece = pooled_expected_calibration_error(sum_conf, sum_freq, counts)
    assert ece[0].item() == pytest.approx(0.15) and math.isnan(ece[1].item())
    # the same numbers as the curve of P, Y above, pooled per bin
    assert pooled_expected_calibration_error(*reliability_curve(P, Y, num_bins=2).bin_sums()).item() == pytest.approx(
        0.15, abs=1e-6
    )
    with pytest.raises(ValueError, match="same shape"):
        pooled_expected_calibration_error(sum_conf, sum_freq, counts[:, :2])


def test_every_pooled_ece_is_the_same_function():
    g = torch.Generator().manual_seed(3)
    p, y = torch.rand(3, 2, 6, 6, generator=g), torch.rand(3, 2, 6, 6, generator=g)
    metric = CalibrationMetric(num_bins=7)
    metric(p, y)
    pooled = pooled_expected_calibration_error(*metric.bin_sums())
    torch.testing.assert_close(metric.pooled_ece(), pooled)
    torch.testing.assert_close(metric.reliability().expected_calibration_error(), pooled)
    torch.testing.assert_close(reliability_curve(p, y, num_bins=7).expected_calibration_error(), pooled)
    # an empty curve: NaN everywhere (the report, the metric and the figure share this policy)
    empty = reliability_curve(torch.zeros(1, 2, 0), torch.zeros(1, 2, 0), num_bins=4)
    assert torch.isnan(empty.expected_calibration_error()).all()
