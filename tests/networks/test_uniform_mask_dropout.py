"""UniformMaskDropout: nn.Dropout's element-wise mask and scaling, drawn from torch.rand (cheaper on CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_lexu.networks import UniformMaskDropout


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_mask_is_elementwise_bernoulli_with_inverted_scaling(p):
    torch.manual_seed(0)
    x = torch.rand(8, 16, 64, 64) + 0.5  # no zeros in the input
    out = UniformMaskDropout(p).train()(x)
    dropped = out == 0
    # kept elements scaled exactly as nn.Dropout
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - p), rtol=1e-6, atol=0)
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
    keep = torch.rand_like(x) >= 0.3
    torch.testing.assert_close(a, torch.where(keep, x / 0.7, 0.0))


def test_gradient_is_the_mask():
    torch.manual_seed(2)
    x = torch.rand(4, 5, requires_grad=True)
    out = UniformMaskDropout(0.5).train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * 2.0)
