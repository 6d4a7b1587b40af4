"""Tests of monai_lexu.metrics.correlation: SR, DC (image level) and NCC (pixel level)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_lexu.metrics import (
    DistanceCorrelationMetric,
    NormalizedCrossCorrelationMetric,
    SpearmanCorrelationMetric,
    distance_correlation,
    normalized_cross_correlation,
    spearman_correlation,
)


def _maps_with_sums(sums: list[list[float]], spatial: tuple[int, ...] = (2, 2)) -> torch.Tensor:
    """(N, L, *spatial) maps whose pixel sums are ``sums`` (N, L): constant maps of value sum / n_pixels."""
    s = torch.tensor(sums, dtype=torch.float64)
    n_pix = math.prod(spatial)
    return (s / n_pix).reshape(*s.shape, *([1] * len(spatial))).expand(*s.shape, *spatial).clone()


def _statsmodels_dcor(x: np.ndarray, y: np.ndarray) -> float:
    """The statsmodels / Szekely V-statistic formula, written out in O(n^2) for checking."""
    a = np.abs(x[:, None] - x[None, :])
    b = np.abs(y[:, None] - y[None, :])
    a_c = a - a.mean(0, keepdims=True) - a.mean(1, keepdims=True) + a.mean()
    b_c = b - b.mean(0, keepdims=True) - b.mean(1, keepdims=True) + b.mean()
    dcov = np.sqrt((a_c * b_c).mean())
    dvar_x = np.sqrt((a_c * a_c).mean())
    dvar_y = np.sqrt((b_c * b_c).mean())
    return float(dcov / np.sqrt(dvar_x * dvar_y))


# ---------------------------------------------------------------- Spearman (SR)


def test_spearman_known_answer_from_maps():
    # structure 0: pred sums [1,2,3,4,5], gt sums [2,1,4,3,5]: rank differences d = [-1,1,-1,1,0], sum d^2 = 4,
    #   rho = 1 - 6 * 4 / (5 * (25 - 1)) = 1 - 24/120 = 0.8
    # structure 1: gt sums reversed -> rho = -1
    pred = _maps_with_sums([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]])
    gt = _maps_with_sums([[2, 5], [1, 4], [4, 3], [3, 2], [5, 1]])
    sr = spearman_correlation(pred, gt)
    assert sr.shape == (2,)
    torch.testing.assert_close(sr, torch.tensor([0.8, -1.0]), atol=1e-6, rtol=0)


def test_spearman_scores_input_equals_maps_input_and_numpy():
    pred_scores = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]
    gt_scores = [[2.0, 5.0], [1.0, 4.0], [4.0, 3.0], [3.0, 2.0], [5.0, 1.0]]
    from_maps = spearman_correlation(_maps_with_sums(pred_scores, (3, 2, 2)), _maps_with_sums(gt_scores))
    from_scores = spearman_correlation(np.array(pred_scores), np.array(gt_scores))
    torch.testing.assert_close(from_maps, from_scores)


def test_spearman_invariant_to_monotone_transforms():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(12, 2, generator=g)
    gt = pred + 0.3 * torch.rand(12, 2, generator=g)
    ref = spearman_correlation(pred, gt)
    torch.testing.assert_close(spearman_correlation(torch.exp(5 * pred), gt**3 + 7), ref)
    torch.testing.assert_close(spearman_correlation(gt, pred), ref)  # symmetric
    assert (ref > 0).all() and (ref <= 1).all()


def test_spearman_pvalue():
    # perfectly monotone: rho = 1, p-value 0
    sr, p = spearman_correlation(torch.arange(6.0)[:, None], torch.arange(6.0)[:, None] ** 2, return_pvalue=True)
    assert sr.item() == pytest.approx(1.0)
    assert p.item() == pytest.approx(0.0, abs=1e-6)


def test_spearman_degenerate_inputs():
    pred = torch.tensor([[1.0], [2.0], [3.0]])
    assert torch.isnan(spearman_correlation(pred, torch.zeros(3, 1))).all()  # constant gt (no disagreement)
    assert torch.isnan(spearman_correlation(torch.ones(3, 1), pred)).all()  # constant prediction
    assert torch.isnan(spearman_correlation(pred[:1], pred[:1])).all()  # a single image
    with_nan = torch.tensor([[1.0], [float("nan")], [3.0], [4.0]])
    gt = torch.tensor([[4.0], [1.0], [2.0], [3.0]])
    assert torch.isnan(spearman_correlation(with_nan, gt)).all()  # propagate
    # omit: drop image 1 -> [1,3,4] vs [4,2,3]: ranks [1,2,3] vs [3,1,2], d = [-2,1,1], sum d^2 = 6,
    # rho = 1 - 36 / (3 * 8) = -0.5
    assert spearman_correlation(with_nan, gt, nan_policy="omit").item() == pytest.approx(-0.5)


def test_spearman_bad_inputs():
    with pytest.raises(ValueError, match="same"):
        spearman_correlation(torch.rand(4, 2), torch.rand(5, 2))
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        spearman_correlation(torch.rand(4), torch.rand(4))
    with pytest.raises(ValueError, match="nan_policy"):
        spearman_correlation(torch.rand(4, 2), torch.rand(4, 2), nan_policy="raise")


def test_spearman_metric_accumulates_over_iterations():
    g = torch.Generator().manual_seed(1)
    pred, gt = torch.rand(9, 2, 4, 4, generator=g), torch.rand(9, 2, 4, 4, generator=g)
    metric = SpearmanCorrelationMetric()
    for sl in (slice(0, 2), slice(2, 7), slice(7, 9)):
        out = metric(pred[sl], gt[sl])
        assert out[0].shape == (sl.stop - sl.start, 2)
    torch.testing.assert_close(metric.aggregate(), spearman_correlation(pred, gt))
    metric.reset()
    with pytest.raises(ValueError, match="before any data"):
        metric.aggregate()


# ---------------------------------------------------------------- distance correlation (DC)


def test_distance_correlation_known_answer():
    # x = [0,1,2], y = [0,1,0]. Distance matrices a = |xi-xj|, b = |yi-yj|, double-centred:
    #   A = 1/9 [[-10, 2, 8], [2, -4, 2], [8, 2, -10]],  B = 1/9 [[-2, 4, -2], [4, -8, 4], [-2, 4, -2]]
    #   mean(A*B) = (20 + 32 + 20 + 2*(8 - 16 + 8)) / 81 / 9 = 8/81
    #   mean(A*A) = (100 + 16 + 100 + 2*(4 + 64 + 4)) / 81 / 9 = 40/81
    #   mean(B*B) = (4 + 64 + 4 + 2*(16 + 4 + 16)) / 81 / 9 = 16/81
    #   dCor^2 = (8/81) / sqrt(40/81 * 16/81) = 8 / sqrt(640) = 1/sqrt(10);  dCor = 10**-0.25 = 0.562341
    x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0], [0.0]], dtype=torch.float64)
    assert distance_correlation(x, y).item() == pytest.approx(10**-0.25, abs=1e-6)
    assert _statsmodels_dcor(x[:, 0].numpy(), y[:, 0].numpy()) == pytest.approx(10**-0.25, abs=1e-12)


def test_distance_correlation_equals_statsmodels_formula():
    # dcor's default (exponent 1, fast O(n log n) method) gives the statsmodels V-statistic used by grader_soup
    rng = np.random.default_rng(2)
    x = rng.random((40, 2))
    y = x**2 + 0.2 * rng.random((40, 2))
    dc = distance_correlation(x, y)
    expected = torch.tensor([_statsmodels_dcor(x[:, c], y[:, c]) for c in range(2)], dtype=torch.float32)
    torch.testing.assert_close(dc, expected, atol=1e-6, rtol=0)


def test_distance_correlation_properties_and_degenerate():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.random((15, 1)))
    assert distance_correlation(x, 3 * x - 2).item() == pytest.approx(1.0, abs=1e-6)  # affine dependence
    y = torch.from_numpy(rng.random((15, 1)))
    torch.testing.assert_close(distance_correlation(4 * x + 1, -2 * y), distance_correlation(x, y))  # scale-free
    assert distance_correlation(x, torch.zeros(15, 1)).item() == 0.0  # constant: Szekely/dcor convention
    assert torch.isnan(distance_correlation(x[:1], y[:1])).all()  # one image
    x_nan = x.clone()
    x_nan[0] = float("nan")
    assert torch.isnan(distance_correlation(x_nan, y)).all()
    torch.testing.assert_close(distance_correlation(x_nan, y, nan_policy="omit"), distance_correlation(x[1:], y[1:]))


def test_distance_correlation_metric_accumulates_over_iterations():
    g = torch.Generator().manual_seed(4)
    pred = torch.rand(10, 2, 3, 3, 3, generator=g)  # 3D maps
    gt = pred + 0.5 * torch.rand(10, 2, 3, 3, 3, generator=g)
    metric = DistanceCorrelationMetric()
    metric(pred[:4], gt[:4])
    metric(list(pred[4:]), list(gt[4:]))  # list of channel-first tensors
    torch.testing.assert_close(metric.aggregate(), distance_correlation(pred, gt))


# ---------------------------------------------------------------- NCC


def test_ncc_known_answer():
    # x = [1,2,3,4] -> centred [-1.5,-0.5,0.5,1.5]; y = [2,4,5,9] -> centred [-3,-1,0,4]
    # sum xc*yc = 4.5 + 0.5 + 0 + 6 = 11; sum xc^2 = 5; sum yc^2 = 26; r = 11 / sqrt(130) = 0.9647638
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = torch.tensor([[2.0, 4.0], [5.0, 9.0]])
    ncc = normalized_cross_correlation(torch.stack([x, x])[None], torch.stack([y, -y])[None])
    assert ncc.shape == (1, 2)
    torch.testing.assert_close(ncc, torch.tensor([[11 / math.sqrt(130), -11 / math.sqrt(130)]]))


def test_ncc_equals_grader_soup_z_score_form_and_values_scaling():
    g = torch.Generator().manual_seed(5)
    p, t = torch.rand(3, 2, 6, 5, generator=g, dtype=torch.float64), torch.rand(3, 2, 6, 5, generator=g).double()
    pf, tf = p.flatten(2), t.flatten(2)
    n = pf.shape[-1]
    zp = (pf - pf.mean(-1, keepdim=True)) / pf.std(-1, keepdim=True)  # ddof = 1
    zt = (tf - tf.mean(-1, keepdim=True)) / tf.std(-1, keepdim=True)
    grader_soup = (zp * zt).sum(-1) / (n - 1)
    ncc = normalized_cross_correlation(p, t)
    torch.testing.assert_close(ncc, grader_soup.float())
    values_ncc = (zp * zt).sum(-1) / n  # ValUES divides by N: (N-1)/N times Pearson r
    torch.testing.assert_close(values_ncc.float(), ncc * (n - 1) / n)


@pytest.mark.parametrize("a,b", [(2.0, 5.0), (0.01, -3.0), (-1.5, 0.0)])
def test_ncc_affine_invariance(a, b):
    g = torch.Generator().manual_seed(6)
    p, t = torch.rand(2, 2, 5, 5, generator=g), torch.rand(2, 2, 5, 5, generator=g)
    ref = normalized_cross_correlation(p, t)
    sign = 1.0 if a > 0 else -1.0
    torch.testing.assert_close(normalized_cross_correlation(a * p + b, t), sign * ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized_cross_correlation(p, a * t + b), sign * ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized_cross_correlation(p, p), torch.ones_like(ref))


def test_ncc_degenerate_inputs():
    g = torch.Generator().manual_seed(7)
    p = torch.rand(1, 1, 4, 4, generator=g)
    zeros = torch.zeros(1, 1, 4, 4)
    assert torch.isnan(normalized_cross_correlation(p, zeros)).all()  # constant gt (no disagreement)
    assert torch.isnan(normalized_cross_correlation(zeros, p)).all()  # constant prediction
    assert torch.isnan(normalized_cross_correlation(zeros, zeros)).all()  # both constant & equal: NaN by default
    assert normalized_cross_correlation(zeros, zeros, equal_constant_value=1.0).item() == 1.0
    # constant but different: still undefined
    assert torch.isnan(normalized_cross_correlation(zeros, zeros + 0.1, equal_constant_value=1.0)).all()
    p_nan = p.clone()
    p_nan[0, 0, 0, 0] = float("nan")
    assert torch.isnan(normalized_cross_correlation(p_nan, p)).all()
    with pytest.raises(ValueError, match="same shape"):
        normalized_cross_correlation(p, p[..., :3])
    with pytest.raises(ValueError, match="at least 3 dims"):
        normalized_cross_correlation(p[0, 0], p[0, 0])


def test_ncc_metric_nanmean_and_excluded_count():
    g = torch.Generator().manual_seed(8)
    p, t = torch.rand(5, 2, 4, 4, generator=g), torch.rand(5, 2, 4, 4, generator=g)
    t[1, 0] = 0.0  # image 1, structure 0: no disagreement -> excluded
    t[3, 0] = 0.0
    metric = NormalizedCrossCorrelationMetric(get_not_nans=True)
    metric(p[:3], t[:3])
    metric(p[3:], t[3:])
    value, not_nans = metric.aggregate()
    per_image = normalized_cross_correlation(p, t)
    expected = torch.stack([per_image[[0, 2, 4], 0].mean(), per_image[:, 1].mean()])
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(not_nans, torch.tensor([3.0, 5.0]))
    assert metric.num_excluded().tolist() == [2, 0]
    assert metric.aggregate(reduction="none")[0].shape == (5, 2)
    # a structure where every image is excluded aggregates to NaN (not MONAI's 0)
    all_const = NormalizedCrossCorrelationMetric()
    all_const(p, torch.zeros_like(p))
    assert torch.isnan(all_const.aggregate()).all()
