"""Tests of monai_lexu.metrics.nll: binary per-structure NLL and the reference-code (softmax) NLL."""

from __future__ import annotations

import math

import pytest
import torch

from monai_lexu.metrics import (
    NegativeLogLikelihoodMetric,
    NegativeLogLikelihoodReferenceMetric,
    negative_log_likelihood,
    negative_log_likelihood_reference,
)


def test_nll_known_answer():
    # pixel 1: p=0.5, y=1   -> -log 0.5 = 0.6931472
    # pixel 2: p=0.9, y=0.5 -> -(0.5 log 0.9 + 0.5 log 0.1) = 0.0526803 + 1.1512925 = 1.2039728
    # mean = 0.9485600
    p = torch.tensor([0.5, 0.9]).reshape(1, 1, 2, 1)
    y = torch.tensor([1.0, 0.5]).reshape(1, 1, 2, 1)
    expected = (math.log(2) - 0.5 * math.log(0.9) - 0.5 * math.log(0.1)) / 2
    out = negative_log_likelihood(p, y)
    assert out.shape == (1, 1)
    assert out.item() == pytest.approx(expected, abs=1e-6)


def test_nll_minimal_at_p_equal_y():
    # proper scoring rule: for each soft target y, the NLL over a grid of p is smallest at p = y
    grid = torch.linspace(0.05, 0.95, 19)  # step 0.05
    for y in (0.1, 0.35, 0.5, 0.8):
        p = grid.reshape(19, 1, 1, 1)
        nll = negative_log_likelihood(p, torch.full_like(p, y))[:, 0]
        assert grid[nll.argmin()].item() == pytest.approx(y, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(2, 2, 5, 5, generator=g)
    assert (negative_log_likelihood(soft, soft) <= negative_log_likelihood(soft.sqrt(), soft)).all()


def test_nll_clamping_range_and_nan():
    # p = 0 where y = 1 costs -log(eps)
    out = negative_log_likelihood(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1), eps=1e-5)
    assert out.item() == pytest.approx(-math.log(1e-5), rel=1e-6)
    assert negative_log_likelihood(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).item() < 2e-5
    with pytest.raises(ValueError, match="y_pred.*sigmoid"):
        negative_log_likelihood(torch.tensor([-2.0, 3.0]).reshape(1, 1, 2), torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match="`y`"):
        negative_log_likelihood(torch.zeros(1, 1, 2), torch.full((1, 1, 2), 2.0))
    p = torch.full((1, 2, 2, 2), 0.5)
    p[0, 0, 0, 0] = float("nan")
    out = negative_log_likelihood(p, torch.ones_like(p))
    assert torch.isnan(out[0, 0]) and out[0, 1].item() == pytest.approx(math.log(2), abs=1e-6)


def test_nll_reference_known_answer_head_major():
    # K=2 heads, L=2 structures, one pixel; head-major channels [h0s0, h0s1, h1s0, h1s1]
    #   head 0 logits (0, 0)      -> softmax (0.5, 0.5)
    #   head 1 logits (log 3, 0)  -> softmax (0.75, 0.25)
    #   mean over heads q = (0.625, 0.375); y = (1, 0.5)
    #   NLL = -(1 * log(0.625) + 0.5 * log(0.375)) = 0.4700036 + 0.4904146 = 0.9604182   (eps = 0)
    #   skip_first=1: q = (0.75, 0.25): -(log 0.75 + 0.5 log 0.25) = 0.2876821 + 0.6931472 = 0.9808293
    logits = torch.tensor([0.0, 0.0, math.log(3), 0.0]).reshape(1, 4, 1, 1)
    y = torch.tensor([1.0, 0.5]).reshape(1, 2, 1, 1)
    out = negative_log_likelihood_reference(logits, y, eps=0.0)
    assert out.shape == (1,)
    assert out.item() == pytest.approx(-(math.log(0.625) + 0.5 * math.log(0.375)), abs=1e-6)
    skip = negative_log_likelihood_reference(logits, y, skip_first=1, eps=0.0)
    assert skip.item() == pytest.approx(-(math.log(0.75) + 0.5 * math.log(0.25)), abs=1e-6)
    # (B, K, L, *S) layout gives the same
    split = negative_log_likelihood_reference(logits.reshape(1, 2, 2, 1, 1), y, eps=0.0)
    torch.testing.assert_close(split, out)
    # default eps = 1e-5 is added inside the log
    eps_out = negative_log_likelihood_reference(logits, y)
    assert eps_out.item() == pytest.approx(-(math.log(0.625 + 1e-5) + 0.5 * math.log(0.375 + 1e-5)), abs=1e-6)


def test_nll_reference_differs_from_binary():
    # with one structure the softmax is identically 1 -> reference NLL is 0 whatever the logits;
    # the binary NLL of the same heads' mean sigmoid is not.
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, 4, generator=g)  # K=3 heads, L=1
    y = torch.rand(2, 1, 4, 4, generator=g)
    torch.testing.assert_close(negative_log_likelihood_reference(logits, y), torch.zeros(2))
    prob = torch.sigmoid(logits).mean(1, keepdim=True)
    assert (negative_log_likelihood(prob, y) > 0.1).all()


def test_nll_reference_bad_inputs():
    y = torch.rand(1, 2, 4, 4)
    with pytest.raises(ValueError, match="K\\*L"):
        negative_log_likelihood_reference(torch.randn(1, 5, 4, 4), y)
    with pytest.raises(ValueError, match="skip_first"):
        negative_log_likelihood_reference(torch.randn(1, 4, 4, 4), y, skip_first=2)
    with pytest.raises(ValueError, match="head_logits"):
        negative_log_likelihood_reference(torch.randn(1, 2, 2, 3, 4), y)


def test_nll_metrics_accumulate_over_iterations():
    g = torch.Generator().manual_seed(2)
    p, y = torch.rand(6, 2, 5, 5, generator=g), torch.rand(6, 2, 5, 5, generator=g)
    metric = NegativeLogLikelihoodMetric()
    metric(p[:2], y[:2])
    metric(p[2:], y[2:])
    torch.testing.assert_close(metric.aggregate(), negative_log_likelihood(p, y).mean(0))
    logits = torch.randn(6, 10, 5, 5, generator=g)  # K=5, L=2
    ref_metric = NegativeLogLikelihoodReferenceMetric(skip_first=1)
    ref_metric(logits[:4], y[:4])
    ref_metric(logits[4:], y[4:])
    expected = negative_log_likelihood_reference(logits, y, skip_first=1).mean()
    torch.testing.assert_close(ref_metric.aggregate(), expected.reshape(1))
