"""UniformMaskDropout: nn.Dropout's element-wise mask and scaling from 16 random bits per element (cheaper on CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_lexu.networks import UniformMaskDropout
from monai_lexu.networks.dropout import dropout_scale_mask, quantised_dropout_p


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_mask_is_elementwise_bernoulli_with_inverted_scaling(p):
    torch.manual_seed(0)
    x = torch.rand(8, 16, 64, 64) + 0.5  # no zeros in the input
    out = UniformMaskDropout(p).train()(x)
    dropped = out == 0
    # kept elements scaled as nn.Dropout (1 / (1 - p_q), p_q within 7.6e-6 of p)
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - quantised_dropout_p(p)), rtol=1e-6, atol=0)
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - p), rtol=2e-5, atol=0)
    n = x.numel()
    rate = dropped.float().mean().item()
    assert abs(rate - p) < 5 * (p * (1 - p) / n) ** 0.5  # 5 sigma of a Bernoulli(p) mean
    # element-wise, not channel-wise: every channel map is partly dropped
    per_channel = dropped.float().mean(dim=(2, 3))
    assert per_channel.min() > 0 and per_channel.max() < 1
    # same mean as nn.Dropout (unbiased inverted dropout) within sampling error
    ref = nn.Dropout(p).train()(x)
    assert abs(out.mean().item() - ref.mean().item()) < 0.01


def test_eval_mode_identity_state_dict_and_class_swap():
    x = torch.rand(2, 3, 4, 4)
    d = UniformMaskDropout(0.3).eval()
    assert torch.equal(d(x), x)
    assert d.state_dict() == {} and isinstance(d, nn.Dropout)
    m = nn.Dropout(0.3).train()
    m.__class__ = UniformMaskDropout  # what mc_dropout does
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(1)
    keep = dropout_scale_mask(x, 0.3) != 0  # same global-generator stream
    torch.testing.assert_close(a, torch.where(keep, x / (1 - quantised_dropout_p(0.3)), 0.0))


def test_gradient_is_the_mask():
    torch.manual_seed(2)
    x = torch.rand(4, 5, requires_grad=True)
    out = UniformMaskDropout(0.5).train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * 2.0)


@pytest.mark.parametrize(
    "p, expected",
    [(0.2, 13107 / 65536), (0.25, 0.25), (0.5, 0.5), (0.1, 6554 / 65536), (0.005, 328 / 65536), (0.001, 0.001)],
)
def test_quantised_p_is_stated_exactly(p, expected):
    """p on the 2^-16 grid (|p_q - p| <= 2^-17), unless that is more than 1e-3 relative: then p itself (24-bit)."""
    q = quantised_dropout_p(p)
    assert q == expected
    assert abs(q - p) <= 2**-17 and abs(q - p) <= 1e-3 * p


@pytest.mark.parametrize("p", [0.2, 0.25, 0.001])
def test_keep_rate_and_scale_of_the_mask(p):
    """Empirical drop rate = p_q within 5 sigma over 4M elements; values exactly 0 or 1 / (1 - p_q); unbiased mean."""
    torch.manual_seed(3)
    mask = dropout_scale_mask(torch.empty(4, 1024, 1024), p)
    q = quantised_dropout_p(p)
    scale = torch.tensor(1.0 / (1.0 - q), dtype=torch.float32)
    assert set(mask.unique().tolist()) == {0.0, scale.item()}
    n = mask.numel()
    rate = (mask == 0).double().mean().item()
    assert abs(rate - q) < 5 * (q * (1 - q) / n) ** 0.5
    assert abs(mask.double().mean().item() - 1.0) < 5 * (q / (1 - q) / n) ** 0.5  # E[mask] = 1


def test_mask_elements_are_independent_and_follow_dtype():
    """Neighbouring elements (which share one 64-bit draw) are independent; half precision gets exact 0/scale."""
    torch.manual_seed(4)
    drop = (dropout_scale_mask(torch.empty(1 << 22), 0.5) == 0).view(-1, 4).double()
    both = (drop[:, 0] * drop[:, 1]).mean().item()  # P(drop and drop) = 1/4 for independent elements
    assert abs(both - 0.25) < 5 * (0.25 * 0.75 / drop.shape[0]) ** 0.5
    assert abs(drop.mean().item() - 0.5) < 5 * (0.25 / drop.numel()) ** 0.5
    half = dropout_scale_mask(torch.empty(1000, dtype=torch.float16), 0.2)
    assert half.dtype == torch.float16
    assert set(half.unique().tolist()) <= {0.0, float(torch.tensor(1 / (1 - 13107 / 65536), dtype=torch.float16))}
