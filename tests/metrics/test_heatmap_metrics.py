"""Figures of ensemble heatmaps: Parzen calibration curve, union/intersection, Dice-estimate agreement, trainee."""

from __future__ import annotations

import numpy as np
import pytest

from monai_lexu.metrics.heatmap import (
    binary_dice,
    dice_estimate_agreement,
    parzen_calibration_curve,
    quantile_summary,
    trainee_error_heatmap_values,
    union_intersection_counts,
    union_sensitivity_intersection_precision,
)


def test_parzen_perfectly_calibrated_grid_heatmap_on_diagonal():
    g = np.random.default_rng(0)
    k = 7
    h = g.integers(0, k + 1, 400_000) / k  # heatmap values on the nodes
    gt = (g.random(h.size) < h).astype(float)  # foreground with probability h: perfectly calibrated
    curve = parzen_calibration_curve(h, gt, k)
    np.testing.assert_allclose(curve.nodes[: k + 1], np.arange(k + 1) / k)
    np.testing.assert_allclose(curve.frequency[: k + 1], curve.nodes[: k + 1], atol=0.01)
    assert curve.distance_to_diagonal() < 0.005


def test_parzen_perfectly_calibrated_continuous_heatmap():
    g = np.random.default_rng(1)
    h = g.random(400_000)
    gt = (g.random(h.size) < h).astype(float)
    curve = parzen_calibration_curve(h, gt, 7)
    inner = slice(1, 7)  # the interior nodes see a symmetric kernel: on the diagonal
    np.testing.assert_allclose(curve.frequency[inner], curve.nodes[inner], atol=0.01)
    # every node, edges included, matches the kernel-weighted confidence
    ok = curve.weight > 0
    np.testing.assert_allclose(curve.frequency[ok], curve.mean_confidence[ok], atol=0.01)
    assert curve.distance_to_diagonal(against="confidence") < 0.005


def test_parzen_kernel_and_edges():
    # K = 2, nodes 0, 0.5, 1, (1.5): v = 0.25 -> half to 0 and 0.5; v = 0.5 exactly on a node; v = -0.2 -> node 0;
    # v = 1.3 -> extends the grid (0.4 to node 1, 0.6 to node 1.5)
    h = np.array([0.25, 0.5, -0.2, 1.3])
    t = np.array([1.0, 0.0, 0.0, 1.0])
    c = parzen_calibration_curve(h, t, 2)
    np.testing.assert_allclose(c.nodes, [0.0, 0.5, 1.0, 1.5, 2.0][: len(c.nodes)])
    np.testing.assert_allclose(c.weight[:4], [1.5, 1.5, 0.4, 0.6], atol=1e-12)
    np.testing.assert_allclose(c.target[:4], [0.5, 0.5, 0.4, 0.6], atol=1e-12)
    assert np.isnan(parzen_calibration_curve(np.array([0.0]), np.array([0.0]), 2).frequency[1])
    pooled = c + parzen_calibration_curve(np.array([0.0]), np.array([1.0]), 2)
    assert pooled.weight[0] == pytest.approx(2.5)
    assert not np.isnan(parzen_calibration_curve(np.array([np.nan, 0.5]), np.array([1.0, 1.0]), 2).weight).any()


def test_union_intersection():
    h = np.array([0.0, 0.2, 1.0, 0.995, 0.5])
    gt = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    counts = union_intersection_counts(h, gt)
    assert counts == {"union_tp": 2.0, "foreground": 3.0, "intersection_tp": 1.0, "intersection": 2.0}
    sens, prec = union_sensitivity_intersection_precision(counts)
    assert (sens, prec) == (pytest.approx(2 / 3), pytest.approx(0.5))
    assert np.isnan(union_sensitivity_intersection_precision(union_intersection_counts(h * 0, gt * 0))[0])


def test_dice_agreement_and_binary_dice():
    assert binary_dice(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]))[0] == pytest.approx(2 / 3)
    assert binary_dice(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 1.0
    agree = dice_estimate_agreement([0.5, 0.7, np.nan, 0.9], [0.4, 0.8, 0.1, 0.9])
    assert agree["n"] == 3 and agree["mae"] == pytest.approx(0.2 / 3)
    assert agree["pearson_r"] == pytest.approx(np.corrcoef([0.5, 0.7, 0.9], [0.4, 0.8, 0.9])[0, 1])


def test_trainee_errors():
    raters = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0]], dtype=bool)
    h = np.array([0.9, 0.2, 0.3, 0.0])
    out = trainee_error_heatmap_values(raters, None, h)
    # rater 0 vs majority of {1, 2} = [1, 0, 0, 0] (tie at voxel 2 counts as background): FP at voxel 1
    np.testing.assert_array_equal(out["fp"][0], [0.2])
    # rater 1 vs majority of {0, 2} = [1, 0, 0, 0]: no error; rater 2: FP at voxel 2
    assert out["fp"][1].size == 0 and out["fn"][1].size == 0
    np.testing.assert_array_equal(out["fp"][2], [0.3])
    assert trainee_error_heatmap_values(raters, [True, False, False], h) == {"fp": [], "fn": []}
    summary = quantile_summary(out["fp"])
    assert summary["n"] == 2 and summary["q50"] == pytest.approx(0.25)
